"""pocketvec: train, export, verify and run small on-device image-recognition encoders.

`import pocketvec` is light; `pocketvec.Recognizer` (numpy, Pillow, onnxruntime, never torch) is
loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pocketvec.version import __version__

__all__ = ["Candidate", "Recognition", "Recognizer", "__version__"]

if TYPE_CHECKING:
    from pocketvec.recognizer import Candidate, Recognition, Recognizer


def __getattr__(name: str) -> Any:
    if name in ("Candidate", "Recognition", "Recognizer"):
        from pocketvec import recognizer

        return getattr(recognizer, name)
    raise AttributeError(f"module 'pocketvec' has no attribute {name!r}")
