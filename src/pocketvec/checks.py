"""Type and range checks for values read from files or typed by the user: one line naming the
value, what it holds and what is expected. NaN, infinities and booleans-as-numbers are refused."""

from __future__ import annotations

import math
import re
import sys
from typing import Any

from pocketvec.errors import ConfigError, PocketvecError


def check_number(name: str, value: Any, low: float, high: float, integer: bool = False,
                 error: type[PocketvecError] = ConfigError) -> None:
    """`value` is a finite number (an int when `integer`) in [low, high]. An int is compared exactly, never
    converted to float (a 400-digit int overflows one): it gets the same range error as any other value."""
    kinds = (int,) if integer else (int, float)
    what = "an integer" if integer else "a finite number"
    if (isinstance(value, bool) or not isinstance(value, kinds)
            or (isinstance(value, float) and not math.isfinite(value)) or not low <= value <= high):
        raise error(f"{name} must be {what} in [{number_text(low)}, {number_text(high)}]. Got {_short(value)}.")


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


def check_pattern(name: str, value: Any, pattern: re.Pattern[str], what: str,
                  error: type[PocketvecError] = ConfigError) -> None:
    """`value` is a string that `pattern` matches whole (`what` says in words what that is)."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise error(f"{name} must be {what}. Got {_short(value)}.")


def number_text(x: float) -> str:
    """As JavaScript prints a number: 2147483648, -1, 0.5."""
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _short(value: Any) -> str:
    """repr(value) cut to 60 characters; a long number says how many digits it has."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's int-to-text limit
        return f"an integer of more than {sys.get_int_max_str_digits()} digits"
    if len(text) <= 60:
        return text
    return f"{text[:40]}... ({len(text)} digits)" if isinstance(value, int) else text[:57] + "..."
