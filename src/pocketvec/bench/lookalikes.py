"""The look-alike stress tier: groups of near-identical items that differ in small details.

Built from the benchmark's own packages (never trained on), so it says how a model copes with a
catalogue of look-alikes rather than with the pool's kinds of items:

- **page editions**: one page from the middle of a texlive-humanities-doc manual, the page after it
  (same layout, running heads and fonts; other text), and three printed editions of the first page:
  a small serial number in a corner, a small seal in a corner, a thin printed frame;
- **flag editions**: one flag-icons flag in five printed editions: the original, one of its colours
  shifted in hue, a serial number, a seal, a frame.

Two members of a group differ in one or two small details.

The folder holds one image per item, named `<group>--<member>.png`, and a `manifest.json` saying how
each was made. Everything is a pure function of the cached packages and the counts.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pocketvec.data import render
from pocketvec.data.preview import save_png_atomic
from pocketvec.data.source_fetch import fetch_set
from pocketvec.data.source_packages import download, unpack
from pocketvec.data.source_plan import spread_order
from pocketvec.data.sources import cache_root, get_source, read_manifest
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import load_image

SET_NAME = "lookalike-sets"  # one folder per size below it
FLAG_EDITIONS = ("original", "recolour", "serial", "seal", "frame")
PAGE_EDITIONS = ("original", "next-page", "serial", "seal", "frame")


@dataclass(frozen=True)
class LookalikeConfig:
    page_groups: int = 25
    flag_groups: int = 26
    long_side: int = 600

    @property
    def items(self) -> int:
        return self.page_groups * len(PAGE_EDITIONS) + self.flag_groups * len(FLAG_EDITIONS)


def _dominant_colours(image: np.ndarray, count: int) -> list[np.ndarray]:
    """The `count` most frequent colours (quantised to 8 levels per channel), most frequent first."""
    quantised = (image // 32).reshape(-1, 3)
    codes = quantised[:, 0].astype(np.int32) * 64 + quantised[:, 1] * 8 + quantised[:, 2]
    ranked = np.argsort(-np.bincount(codes, minlength=512))[:count]
    return [np.array([c // 64, (c // 8) % 8, c % 8]) for c in ranked]


def _recolour(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One of the flag's two main colours moved to a clearly different hue (or lightness if grey)."""
    colours = _dominant_colours(image, 2)
    target = colours[int(rng.integers(len(colours)))]
    mask = np.all(image // 32 == target, axis=-1)
    hsv = cv2.cvtColor(image, cv2.COLOR_RGB2HSV).astype(np.int32)
    if hsv[mask, 1].mean() < 40:  # white/grey/black: shift lightness instead of hue
        hsv[mask, 2] = np.where(hsv[mask, 2] > 128, hsv[mask, 2] - 70, hsv[mask, 2] + 70)
    else:
        hsv[mask, 0] = (hsv[mask, 0] + int(rng.integers(12, 20))) % 180
    return cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)


def _contrasting(image: np.ndarray, y: int, x: int) -> tuple[int, int, int]:
    return (20, 20, 20) if image[y, x].mean() > 110 else (240, 240, 240)


def _serial(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small printed serial number in the bottom-right corner."""
    out = image.copy()
    h, w = out.shape[:2]
    text = f"No {int(rng.integers(1000, 9999))}"
    scale = h / 400
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_DUPLEX, scale, max(1, round(scale * 2)))
    x, y = w - tw - round(0.04 * w), h - round(0.05 * h)
    cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_DUPLEX, scale, _contrasting(out, y - th // 2, x + tw // 2),
                max(1, round(scale * 2)), cv2.LINE_AA)
    return out


def _seal(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A small round seal (a ring around a dot) near the top-left corner."""
    out = image.copy()
    h = out.shape[0]
    radius = round(h * rng.uniform(0.07, 0.09))
    centre = (round(radius * 1.6), round(radius * 1.6))
    colour = tuple(int(c) for c in rng.integers(0, 256, 3))
    cv2.circle(out, centre, radius, colour, max(2, radius // 4), cv2.LINE_AA)
    cv2.circle(out, centre, radius // 3, colour, -1, cv2.LINE_AA)
    return out


def _frame(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A thin printed frame just inside the edge."""
    out = image.copy()
    h, w = out.shape[:2]
    inset, thickness = round(0.03 * h), max(2, round(0.012 * h))
    colour = _contrasting(out, inset, inset) if rng.random() < 0.5 else (200, 160, 40)
    cv2.rectangle(out, (inset, inset), (w - 1 - inset, h - 1 - inset), colour, thickness)
    return out


_EDITION_MAKERS = {"recolour": _recolour, "serial": _serial, "seal": _seal, "frame": _frame}


def _flag_groups(folder: Path, config: LookalikeConfig, root: Path, full_fetch: bool) -> dict[str, dict]:
    flags = fetch_set("flag-icons", limit=None if full_fetch else config.flag_groups, root=root).folder
    names = sorted(read_manifest(flags)["items"])
    if len(names) < config.flag_groups:
        raise DatasetError(f"{flags}: {len(names)} flags; the look-alike tier needs {config.flag_groups}.")
    made = {}
    for index in sorted(spread_order(len(names))[: config.flag_groups]):
        name = names[index]
        original = load_image(flags / f"{name}.png")
        for edition in FLAG_EDITIONS:
            item = f"flag-{name}--{edition}"
            _save_edition(original, edition, folder / f"{item}.png", [index, FLAG_EDITIONS.index(edition)])
            made[item] = {"group": f"flag-{name}", "source": f"flag-icons/{name}", "edition": edition}
    return made


def make_edition(original: np.ndarray, edition: str, rng: np.random.Generator) -> np.ndarray:
    """One printed edition of a design: "original", "recolour", "serial", "seal" or "frame"."""
    return original if edition == "original" else _EDITION_MAKERS[edition](original, rng)


def _save_edition(original: np.ndarray, edition: str, out: Path, seed: list[int]) -> None:
    if not out.is_file():
        save_png_atomic(Image.fromarray(make_edition(original, edition, np.random.default_rng(seed))), out)


def _page_groups(folder: Path, config: LookalikeConfig, root: Path) -> dict[str, dict]:
    spec = get_source("humanities-docs")
    ref = spec.packages[0]
    package = download(ref, root / "_packages")
    scratch = folder / "_unpacked"  # inside the set being built: concurrent builds never share it
    docs = sorted(unpack(ref, package, scratch))
    counts = {doc: render.pdf_page_count(doc) for doc in docs}
    docs = [doc for doc in docs if counts[doc] >= 8]
    if len(docs) < config.page_groups:
        raise DatasetError(f"{package}: {len(docs)} manuals long enough; the look-alike tier needs "
                           f"{config.page_groups}.")
    made = {}
    for index in sorted(spread_order(len(docs))[: config.page_groups]):
        doc = docs[index]
        group = f"page-{doc.stem}" if f"page-{doc.stem}--original" not in made else f"page-{doc.stem}-{index}"
        pages = []  # two non-blank consecutive-ish pages from the middle: body text, not the title page
        for page in range(counts[doc] // 2, counts[doc] + 1):
            out = folder / f"{group}--page{len(pages)}.png"
            render.render_pdf_page(doc, page, out, config.long_side)
            if render.is_blank(out):
                out.unlink()
                continue
            pages.append((page, out))
            if len(pages) == 2:
                break
        if len(pages) < 2:
            raise DatasetError(f"{doc}: fewer than two non-blank pages after page {counts[doc] // 2}.")
        original = load_image(pages[0][1])
        for edition in PAGE_EDITIONS:
            item = f"{group}--{edition}"
            source = pages[1] if edition == "next-page" else pages[0]
            if edition in ("original", "next-page"):
                source[1].replace(folder / f"{item}.png")
            else:
                _save_edition(original, edition, folder / f"{item}.png", [1000 + index, PAGE_EDITIONS.index(edition)])
            made[item] = {"group": group, "source": f"{ref.name}/{doc.name}", "page": source[0], "edition": edition}
    shutil.rmtree(scratch, ignore_errors=True)
    return made


def build_lookalikes(config: LookalikeConfig = LookalikeConfig(), root: Path | None = None,
                     full_fetch: bool = True) -> Path:
    """Build (or reuse) the look-alike set in `<cache>/lookalike-sets/<size>/`; returns the folder.

    Each size has its own folder, built aside and renamed into place: a bench of another size, or two
    builds at once, never touch a set in use. `full_fetch` fetches all of flag-icons first, so the flags
    chosen never depend on the cache state."""
    root = root or cache_root()
    sets = root / SET_NAME
    folder = sets / f"pages{config.page_groups}-flags{config.flag_groups}-side{config.long_side}"
    wanted = asdict(config)
    if _manifest_config(folder) == wanted:
        return folder
    sets.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=sets))
    building.chmod(0o755)
    try:
        items = {**_page_groups(building, config, root), **_flag_groups(building, config, root, full_fetch)}
        manifest = {"config": wanted, "description": __doc__.split("\n\n")[0], "items": items,
                    "licence": "pages: LPPL-1.3c et al. (texlive-humanities-doc); flags: MIT (flag-icons)"}
        (building / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
        if _manifest_config(folder) != wanted:  # another build may have finished first: keep its copy
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):  # lost a race to a build of the same size: its copy serves
                building.rename(folder)
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return folder


def _manifest_config(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "manifest.json").read_text()).get("config")
    except (OSError, ValueError):
        return None
