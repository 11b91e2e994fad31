"""Contact sheets of simulated phone photos, so a person can judge the augmentation by eye."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from pocketvec.atomic import write_bytes_atomic
from pocketvec.data.augment import PhoneAugment
from pocketvec.data.items import ItemDataset
from pocketvec.errors import DatasetError, ImageLoadError
from pocketvec.runtime.images import load_image

GAP = 4
CAPTION = 14


def contact_sheet(
    items: ItemDataset, augment: PhoneAugment, n: int = 24, seed: int = 0, columns: int = 6,
    skipped: list[ImageLoadError] | None = None,
) -> Image.Image:
    """`n` augmented samples in a grid, each captioned with its label. Tile i uses rng([seed, i]).

    An item image that cannot be read is left out and appended to `skipped`; the others fill the sheet."""
    order = np.random.default_rng(seed).permutation(len(items))
    decoded: dict[int, np.ndarray] = {}
    for index in (int(i) for i in order):
        if len(decoded) == min(n, len(items)):
            break
        try:
            decoded[index] = load_image(items[index].path)
        except ImageLoadError as e:
            if skipped is None:
                raise
            skipped.append(e)
    if not decoded:
        raise DatasetError(f"{items.root}: none of the item images could be read")
    usable = list(decoded)
    size = augment.output_size
    columns = max(1, min(columns, n))
    rows = -(-n // columns)
    sheet = Image.new("RGB", (columns * (size + GAP) + GAP, rows * (size + GAP + CAPTION) + GAP), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for tile in range(n):
        index = usable[tile % len(usable)]
        photo = augment(decoded[index], np.random.default_rng([seed, tile]))
        row, column = divmod(tile, columns)
        x, y = GAP + column * (size + GAP), GAP + row * (size + GAP + CAPTION)
        sheet.paste(Image.fromarray(photo), (x, y))
        draw.text((x + 2, y + size + 1), items[index].label[-(size // 6) :], fill=(220, 220, 220))
    return sheet


def save_png_atomic(image: Image.Image, out: Path) -> None:
    """Write a PNG via a temporary file in the same folder, fsync, rename: never a half-written file."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    write_bytes_atomic(out, buffer.getvalue())
