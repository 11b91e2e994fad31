"""Turn one source file into one item image: a PDF page, an SVG, or a (downscaled) raster image.

Every function writes its output atomically (temp file in the same folder + fsync + rename), so an
interrupted fetch never leaves a half-written item behind.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from pocketvec.atomic import atomic_output
from pocketvec.data.sources.packages import require_tool
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import to_rgb


def _tool_output(command: list[str], source: Path) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    except subprocess.CalledProcessError as e:
        raise DatasetError(f"{source}: {Path(command[0]).name} failed: {e.stderr.strip()[-300:]}") from e
    except subprocess.TimeoutExpired as e:
        raise DatasetError(f"{source}: {Path(command[0]).name} took longer than 120 s") from e
    return done.stdout


def pdf_page_count(pdf: Path) -> int:
    out = _tool_output([require_tool("pdfinfo", "count the pages of PDF documents"), str(pdf)], pdf)
    for line in out.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise DatasetError(f"{pdf}: pdfinfo reports no page count")


def render_pdf_page(pdf: Path, page: int, out: Path, long_side: int) -> None:
    """Page `page` (1-based) of `pdf` as a PNG whose longest side is `long_side` pixels."""
    tool = require_tool("pdftoppm", "render PDF pages")
    with atomic_output(out) as tmp:
        root = str(tmp)[: -len(tmp.suffix)]  # pdftoppm -singlefile appends ".png" to this root
        _tool_output([tool, "-f", str(page), "-l", str(page), "-scale-to", str(long_side), "-png",
                      "-singlefile", str(pdf), root], pdf)


def render_svg(svg: Path, out: Path, long_side: int, background: str | None = None) -> None:
    """An SVG rendered so that its longest side is `long_side` pixels (aspect kept), as PNG or JPEG;
    `background` (a CSS colour) fills the transparent parts."""
    tool = require_tool("rsvg-convert", "render SVG images")
    # -w and -h together with --keep-aspect-ratio fit the drawing into a long_side square
    command = [tool, "--keep-aspect-ratio", "-w", str(long_side), "-h", str(long_side), "-f", "png"]
    command += ["-b", background] if background else []
    if out.suffix.lower() == ".png":
        with atomic_output(out) as tmp:
            _tool_output([*command, "-o", str(tmp), str(svg)], svg)
        return
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        png = Path(scratch) / "render.png"
        _tool_output([*command, "-o", str(png), str(svg)], svg)
        convert_raster(png, out, long_side)


def render_svg_part(svg: Path, element: str, out: Path, long_side: int, background: str = "white") -> None:
    """One element of an SVG (a card of a deck drawn in one file), cropped to its bounds, long side
    `long_side` pixels: a small render finds where the element is, a second renders just that region."""
    tool = require_tool("rsvg-convert", "render SVG images")
    probe_side = 1024
    with tempfile.TemporaryDirectory(dir=out.parent) as scratch:
        probe = Path(scratch) / "probe.png"
        _tool_output([tool, "--keep-aspect-ratio", "-w", str(probe_side), "-h", str(probe_side), "-i", element,
                      "-f", "png", "-o", str(probe), str(svg)], svg)
        with Image.open(probe) as image:
            canvas, bounds = image.size, image.getchannel("A").getbbox()
    if bounds is None:
        raise DatasetError(f"{svg}: the element {element!r} draws nothing")
    x0, y0 = max(bounds[0] - 1, 0), max(bounds[1] - 1, 0)
    x1, y1 = min(bounds[2] + 1, canvas[0]), min(bounds[3] + 1, canvas[1])
    scale = long_side / max(x1 - x0, y1 - y0)
    size = [str(round(v * scale)) for v in canvas]
    page = [f"--page-width={round((x1 - x0) * scale)}px", f"--page-height={round((y1 - y0) * scale)}px",
            f"--left={-round(x0 * scale)}px", f"--top={-round(y0 * scale)}px"]
    with atomic_output(out) as tmp:
        _tool_output([tool, "--keep-aspect-ratio", "-w", size[0], "-h", size[1], *page, "-i", element,
                      "-b", background, "-f", "png", "-o", str(tmp), str(svg)], svg)


def save_downscaled(image: Image.Image, out: Path, long_side: int, source: str) -> None:
    """Save `image` upright with its longest side at most `long_side` (JPEG as RGB, PNG keeps alpha)."""
    image = ImageOps.exif_transpose(image)
    if max(image.size) > long_side:
        scale = long_side / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.convert("RGBA" if "A" in image.getbands() or image.mode == "P" else "RGB")
        image = image.resize(size, Image.Resampling.LANCZOS)
    with atomic_output(out) as tmp:
        if out.suffix.lower() in (".jpg", ".jpeg"):
            to_rgb(image).save(tmp, format="JPEG", quality=92)
        else:
            if image.mode not in ("RGB", "RGBA", "L", "LA", "P"):
                image = to_rgb(image)
            image.save(tmp, format="PNG")


def convert_raster(source: Path, out: Path, long_side: int) -> None:
    try:
        with Image.open(source) as image:
            image.load()
            save_downscaled(image, out, long_side, str(source))
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise DatasetError(f"{source}: not a readable image ({e})") from e


def is_blank(path: Path, tolerance: int = 24, min_ink: float = 0.002) -> bool:
    """True when almost every pixel has the image's median colour (an empty page, a flat fill).

    Colours are compared per channel: red and green of equal brightness are different colours.
    """
    with Image.open(path) as image:
        image.draft("RGB", (256, 256))
        rgb = np.asarray(to_rgb(image).resize((128, 128), Image.Resampling.BOX), dtype=np.int16)
    ink = np.abs(rgb - np.median(rgb.reshape(-1, 3), axis=0)).max(axis=2) > tolerance
    return float(ink.mean()) < min_ink


RENDERERS: dict[str, Callable[..., None]] = {"svg": render_svg, "raster": convert_raster}
