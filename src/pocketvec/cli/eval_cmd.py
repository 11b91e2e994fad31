"""`pocketvec eval` and `pocketvec calibrate`: not built yet (issue #5)."""

from __future__ import annotations

from pocketvec.cli._common import not_built


def eval_command() -> None:
    """Not built yet. Example: pocketvec eval --help"""
    not_built("eval", "issue #5")


def calibrate() -> None:
    """Not built yet. Example: pocketvec calibrate --help"""
    not_built("calibrate", "issue #5")
