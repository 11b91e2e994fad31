"""`pocketvec bench`: not built yet (issue #7)."""

from __future__ import annotations

from pocketvec.cli._common import not_built


def bench() -> None:
    """Not built yet. Example: pocketvec bench --help"""
    not_built("bench", "issue #7")
