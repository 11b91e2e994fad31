"""`pocketvec match`: not built yet (issue #5)."""

from __future__ import annotations

from pocketvec.cli._common import not_built


def match() -> None:
    """Not built yet. Example: pocketvec match --help"""
    not_built("match", "issue #5")
