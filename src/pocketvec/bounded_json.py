"""JSON from files the user hands us: bounded in size and nesting before the parser sees it.

Python's json recursion ends in RecursionError on deep nesting and NaN/Infinity are accepted by
default; here both are refused as the caller's error class, naming the file.

`read_json` reads a JSON file from disk (a run's config, a manifest, a cache stamp) as Python's json does,
unbounded; a file that cannot be read or is not JSON raises the caller's error class naming the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.errors import DatasetError, PocketvecError

MAX_DEPTH = 16
OPENERS, CLOSERS = np.frombuffer(b"[{", np.uint8), np.frombuffer(b"]}", np.uint8)
STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


def nesting_depth(text: bytes) -> int:
    """The deepest nesting of [ and { outside strings (no recursion; numpy, fast on large headers)."""
    bare = np.frombuffer(STRING.sub(b"", text), dtype=np.uint8)
    step = np.isin(bare, OPENERS).astype(np.int64) - np.isin(bare, CLOSERS).astype(np.int64)
    return int(np.cumsum(step).max(initial=0))


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads_bounded(raw: bytes | str, source: str, what: str, error: type[PocketvecError],
                  max_bytes: int, max_depth: int = MAX_DEPTH) -> Any:
    """Parse `raw` as strict JSON (no NaN/Infinity), at most `max_bytes` long and `max_depth` deep."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else bytes(raw)
    if len(data) > max_bytes:
        raise error(f"{source}: {what} is {len(data):,} bytes, more than the {max_bytes:,} allowed")
    depth = nesting_depth(data)
    if depth > max_depth:
        raise error(f"{source}: {what} is nested {depth} deep, more than the {max_depth} allowed")
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        raise error(f"{source}: {what} is not valid JSON ({e})") from e


def read_json(path: str | Path, what: str = "JSON", error: type[PocketvecError] = DatasetError,
              advice: str = "") -> Any:
    """The JSON value in the file `path`. A file that cannot be read or is not JSON raises
    `error("PATH: unreadable WHAT (problem)")`, with "; ADVICE" after it when given."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:  # ValueError: JSONDecodeError, UnicodeDecodeError
        raise error(f"{path}: unreadable {what} ({e})" + (f"; {advice}" if advice else "")) from e
