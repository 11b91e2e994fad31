"""`pocketvec demo`: not built yet (issue #5)."""

from __future__ import annotations

from pocketvec.cli._common import not_built


def demo() -> None:
    """Not built yet. Example: pocketvec demo --help"""
    not_built("demo", "issue #5")
