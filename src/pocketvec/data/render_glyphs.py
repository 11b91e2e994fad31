"""Glyph sheets: the characters of a font drawn in a grid, black on white (one sheet = one item).

A font's characters come from its cmap (fontTools); letters, digits, symbols and punctuation are
kept, spaces, controls and lone combining marks are not. Script fonts also carry Basic Latin and
Latin-1 (the same shapes in every Noto font): those are dropped when the font has a sheet of its own.
Colour bitmap fonts (Noto Color Emoji) draw with their embedded colours at their one bitmap size.
"""

from __future__ import annotations

import math
import unicodedata
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pocketvec.atomic import atomic_output
from pocketvec.errors import DatasetError

_SKIPPED_CATEGORIES = ("Z", "C", "M")  # separators, controls/format/private use, combining marks


def font_codepoints(font: Path, per_sheet: int) -> list[int]:
    """The drawable code points of a font (index 0 of a collection), ascending."""
    from fontTools.ttLib import TTFont, TTLibError

    try:
        with TTFont(font, fontNumber=0, lazy=True) as parsed:
            cmap = parsed.getBestCmap() or {}
    except (TTLibError, OSError, AssertionError) as e:
        raise DatasetError(f"{font}: not a readable font ({e})") from e
    points = sorted(cp for cp in cmap if unicodedata.category(chr(cp))[0] not in _SKIPPED_CATEGORIES)
    own = [cp for cp in points if cp > 0xFF]
    return own if len(own) >= per_sheet else points


def sheet_entries(font: Path, per_sheet: int, max_sheets: int) -> list[str]:
    """The font's sheets as entries ("41 42 43 ..." hex code points), at most `max_sheets`, spread
    evenly over the font's range."""
    points = font_codepoints(font, per_sheet)
    chunks = [points[i : i + per_sheet] for i in range(0, len(points), per_sheet)]
    if len(chunks) > max_sheets:
        step = len(chunks) / max_sheets
        chunks = [chunks[int(k * step)] for k in range(max_sheets)]
    return [" ".join(f"{cp:X}" for cp in chunk) for chunk in chunks]


@lru_cache(maxsize=8)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    try:
        return ImageFont.truetype(path, size)
    except OSError as e:
        raise DatasetError(f"{path}: FreeType cannot load this font at size {size} ({e})") from e


def render_glyph_sheet(font: Path, entry: str, out: Path, long_side: int, size: int) -> None:
    """Draw the code points of `entry` from `font` in a square grid, scaled to `long_side` pixels."""
    try:
        points = [int(token, 16) for token in entry.split()]
    except ValueError as e:
        raise DatasetError(f"{font}: bad glyph sheet entry {entry!r} ({e})") from e
    if not points:
        raise DatasetError(f"{font}: empty glyph sheet entry")
    face = _font(str(font), size)
    columns = math.ceil(math.sqrt(len(points)))
    rows = math.ceil(len(points) / columns)
    cell = round(size * 1.5)
    sheet = Image.new("RGB", (columns * cell, rows * cell), "white")
    draw = ImageDraw.Draw(sheet)
    for index, cp in enumerate(points):
        row, column = divmod(index, columns)
        centre = (column * cell + cell / 2, row * cell + cell / 2)
        draw.text(centre, chr(cp), font=face, fill="black", anchor="mm", embedded_color=True)
    scale = long_side / max(sheet.size)
    sheet = sheet.resize((max(1, round(sheet.width * scale)), max(1, round(sheet.height * scale))),
                         Image.Resampling.LANCZOS)
    with atomic_output(out) as tmp:
        sheet.save(tmp, format="PNG")
