"""Small helpers shared by the command modules."""

from __future__ import annotations

from pocketvec.errors import NotBuiltYet


def not_built(command: str, issue: str) -> None:
    raise NotBuiltYet(f"`pocketvec {command}` is not built yet ({issue}).")
