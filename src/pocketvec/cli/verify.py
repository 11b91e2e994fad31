"""`pocketvec verify`: not built yet (issue #4)."""

from __future__ import annotations

from pocketvec.cli._common import not_built


def verify() -> None:
    """Not built yet. Example: pocketvec verify --help"""
    not_built("verify", "issue #4")
