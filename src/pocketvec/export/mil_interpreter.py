"""Moved to pocketvec.runtime.mil.interpreter (the runtime runs Core ML files with it; export verifies with it
from there); kept here for old imports."""

from pocketvec.runtime.mil.interpreter import (
    PRECISIONS,
    MILOperation,
    MILProgram,
)

__all__ = ["PRECISIONS", "MILOperation", "MILProgram"]
