"""Where the embedded demo items and background photos live inside the installed package."""

from __future__ import annotations

from pathlib import Path

_ASSETS = Path(__file__).resolve().parent / "assets"


def demo_items_dir() -> Path:
    """Folder of the embedded demo items (one image = one item; see its LICENSES.md)."""
    return _ASSETS / "demo_items"


def backgrounds_dir() -> Path:
    """Folder of the embedded real background photos for phone-photo compositing."""
    return _ASSETS / "backgrounds"
