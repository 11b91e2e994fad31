"""CLI options for numbers with a documented range (pocketvec.ranges): the range is written into --help and
checked while the command line is parsed, so a bad value is one line naming the option, before any work."""

from __future__ import annotations

from typing import Any

import typer

from pocketvec.ranges import RANGES


def option(default: int | float | None, *names: str, key: str, help: str) -> Any:
    """A typer option whose value (when given) must lie in RANGES[key]; None passes through."""
    numbers = RANGES[key]

    def check(value: int | float | None) -> int | float | None:
        if value is not None:
            numbers.check(names[0], value)
        return value

    return typer.Option(default, *names, help=f"{help.rstrip('.')}: {numbers}.", callback=check)
