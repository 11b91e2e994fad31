"""Type and range checks for values read from files or typed by the user: one line naming the
value, what it holds and what is expected. NaN, infinities and booleans-as-numbers are refused."""

from __future__ import annotations

import math
from typing import Any

from pocketvec.errors import ConfigError, PocketvecError


def check_number(name: str, value: Any, low: float, high: float, integer: bool = False,
                 error: type[PocketvecError] = ConfigError) -> None:
    """`value` is a finite number (an int when `integer`) in [low, high]."""
    kinds = (int,) if integer else (int, float)
    what = "an integer" if integer else "a finite number"
    if (isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value)
            or not low <= value <= high):
        raise error(f"{name} must be {what} in [{_number(low)}, {_number(high)}]. Got {value!r}.")


def check_text(name: str, value: Any, max_length: int, empty: bool = False,
               error: type[PocketvecError] = ConfigError) -> None:
    """`value` is a string of at most `max_length` characters (non-blank unless `empty`)."""
    if not isinstance(value, str):
        raise error(f"{name} must be a string. Got {type(value).__name__} {_short(value)}.")
    if len(value) > max_length:
        raise error(f"{name} must be at most {max_length} characters. Got {len(value)}.")
    if not empty and not value.strip():
        raise error(f"{name} must not be empty. Got {value!r}.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise error(f"{name} is not valid Unicode text. Got {_short(value)}.") from None


def _number(x: float) -> str:
    """As JavaScript prints a number: 2147483648, -1, 0.5."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
