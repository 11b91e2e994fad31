"""Moved to pocketvec.runtime.mil.ops (the runtime runs Core ML files with it; export verifies with it
from there); kept here for old imports."""

from pocketvec.runtime.mil.ops import (
    OPS,
    Op,
    op,
)

__all__ = ["OPS", "Op", "op"]
