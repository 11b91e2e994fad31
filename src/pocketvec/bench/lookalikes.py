"""The look-alike stress tier: groups of near-identical items that differ in small details.

Built from the benchmark's own packages (never trained on), so it says how a model copes with a
catalogue of look-alikes rather than with the pool's kinds of items:

- **page editions**: one page from the middle of a texlive-humanities-doc manual, the page after it
  (same layout, running heads and fonts; other text), and three printed editions of the first page:
  a small serial number in a corner, a small seal in a corner, a thin printed frame;
- **flag editions**: one flag-icons flag in five printed editions: the original, one of its colours
  shifted in hue, a serial number, a seal, a frame.

Two members of a group differ in one or two small details.

Which manuals and flags: the test split's (the default) are spread over the sorted lists
(`spread_pick`); the dev split's are chosen by `pocketvec.bench.dataset.split_items` and passed in as
`LookalikePicks`, with the test split's pages a group must not use. A set of picks has its own folder.

The folder holds one image per item, named `<group>--<member>.png`, and a `manifest.json` saying how
each was made. Everything is a pure function of the cached packages, the counts and the picks.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pocketvec.bench.set_folders import build_set_folder
from pocketvec.data import render
from pocketvec.data.preview import save_png_atomic
from pocketvec.data.sources import cache_root, get_source, read_manifest
from pocketvec.data.sources.fetch import fetch_set
from pocketvec.data.sources.packages import download, unpack
from pocketvec.data.sources.plan import spread_order
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import load_image

SET_NAME = "lookalike-sets"  # one folder per size below it
FLAG_EDITIONS = ("original", "recolour", "serial", "seal", "frame")
PAGE_EDITIONS = ("original", "next-page", "serial", "seal", "frame")
MIN_PAGES = 8  # a manual shorter than this has no body pages to make a group of


@dataclass(frozen=True)
class LookalikeConfig:
    page_groups: int = 25
    flag_groups: int = 26
    long_side: int = 600

    @property
    def items(self) -> int:
        return self.page_groups * len(PAGE_EDITIONS) + self.flag_groups * len(FLAG_EDITIONS)


@dataclass(frozen=True)
class LookalikePicks:
    """The manuals and flags of a look-alike set chosen elsewhere (the dev split's), by name."""

    split: str  # names the set's folder, beside the test split's
    documents: tuple[str, ...]  # manuals, as paths inside the package
    flags: tuple[str, ...]  # flag-icons names
    avoid_pages: tuple[str, ...] = ()  # `page_identity`s a group never uses (the test split's pages)


def page_identity(document: str, page: int) -> str:
    """A page of the benchmark's documents: `<path inside the package>#p<page>` (1-based)."""
    return f"{document}#p{page}"


def flag_identity(name: str) -> str:
    return f"flag-icons/{name}"


def group_pages(page_count: int) -> range:
    """The pages a page group of a manual may use (from the middle on: body text, not the title page);
    it takes the first two that are not blank (nor avoided)."""
    return range(page_count // 2, page_count + 1)


def spread_pick(names: list, start: int, count: int) -> list:
    """`count` of `names` from position `start` of their spread order, in list order."""
    return [names[i] for i in sorted(spread_order(len(names))[start : start + count])]


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
    if hsv[mask, 1].mean() < 40 or hsv[mask, 2].mean() < 40:  # white/grey/black: lightness, not hue
        # (near-black pixels can carry any saturation and hue in HSV: a hue shift would change nothing)
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


def _flag_groups(folder: Path, config: LookalikeConfig, root: Path, full_fetch: bool,
                 picks: LookalikePicks | None) -> dict[str, dict]:
    limit = None if full_fetch or picks else config.flag_groups
    flags = fetch_set("flag-icons", limit=limit, root=root).folder
    names = sorted(read_manifest(flags)["items"])
    if picks is None and len(names) < config.flag_groups:
        raise DatasetError(f"{flags}: {len(names)} flags; the look-alike tier needs {config.flag_groups}.")
    chosen = spread_pick(names, 0, config.flag_groups) if picks is None else list(picks.flags)
    missing = sorted(set(chosen) - set(names))
    if missing:
        raise DatasetError(f"{flags}: no flags named {missing}.")
    made = {}
    for index in sorted(names.index(name) for name in chosen):  # the index seeds the editions
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


def manuals(scratch: Path, root: Path) -> list[tuple[Path, str, int]]:
    """(file, path inside the package, page count) of every humanities-docs manual long enough for a
    page group, sorted; the package is unpacked into `scratch`."""
    ref = get_source("humanities-docs").packages[0]
    docs = sorted(unpack(ref, download(ref, root / "_packages"), scratch))
    counted = [(doc, doc.relative_to(scratch).as_posix(), render.pdf_page_count(doc)) for doc in docs]
    return [entry for entry in counted if entry[2] >= MIN_PAGES]


def lookalike_manuals(root: Path | None = None) -> list[tuple[str, int]]:
    """(path inside the package, page count) of every manual long enough for a page group, sorted."""
    with tempfile.TemporaryDirectory() as scratch:
        return [(inside, count) for _, inside, count in manuals(Path(scratch) / "unpacked", root or cache_root())]


def _page_groups(folder: Path, config: LookalikeConfig, root: Path, picks: LookalikePicks | None) -> dict[str, dict]:
    ref = get_source("humanities-docs").packages[0]
    scratch = folder / "_unpacked"  # inside the set being built: concurrent builds never share it
    docs = manuals(scratch, root)
    if picks is None and len(docs) < config.page_groups:
        raise DatasetError(f"{ref.name}: {len(docs)} manuals long enough; the look-alike tier needs "
                           f"{config.page_groups}.")
    inside = [name for _, name, _ in docs]
    chosen = spread_pick(inside, 0, config.page_groups) if picks is None else list(picks.documents)
    missing = sorted(set(chosen) - set(inside))
    if missing:
        raise DatasetError(f"{ref.name}: no manuals {missing} of {MIN_PAGES} pages or more.")
    avoid = set(picks.avoid_pages) if picks else set()
    made = {}
    for index in sorted(inside.index(name) for name in chosen):  # the index seeds the editions
        doc, document, count = docs[index]
        group = f"page-{doc.stem}" if f"page-{doc.stem}--original" not in made else f"page-{doc.stem}-{index}"
        pages = []  # two non-blank consecutive-ish pages from the middle: body text, not the title page
        for page in group_pages(count):
            if page_identity(document, page) in avoid:
                continue
            out = folder / f"{group}--page{len(pages)}.png"
            render.render_pdf_page(doc, page, out, config.long_side)
            if render.is_blank(out):
                out.unlink()
                continue
            pages.append((page, out))
            if len(pages) == 2:
                break
        if len(pages) < 2:
            raise DatasetError(f"{doc}: fewer than two usable pages from page {count // 2} on.")
        original = load_image(pages[0][1])
        for edition in PAGE_EDITIONS:
            item = f"{group}--{edition}"
            source = pages[1] if edition == "next-page" else pages[0]
            if edition in ("original", "next-page"):
                source[1].replace(folder / f"{item}.png")
            else:
                _save_edition(original, edition, folder / f"{item}.png", [1000 + index, PAGE_EDITIONS.index(edition)])
            made[item] = {"group": group, "source": f"{ref.name}/{doc.name}", "document": document,
                          "page": source[0], "edition": edition}
    shutil.rmtree(scratch, ignore_errors=True)
    return made


def build_lookalikes(config: LookalikeConfig = LookalikeConfig(), root: Path | None = None,
                     full_fetch: bool = True, picks: LookalikePicks | None = None) -> Path:
    """Build (or reuse) the look-alike set in `<cache>/lookalike-sets/<size>/`; returns the folder.

    Each size has its own folder, built aside and renamed into place: a bench of another size, or two
    builds at once, never touch a set in use. `full_fetch` fetches all of flag-icons first, so the flags
    chosen never depend on the cache state. `picks` (the dev split's manuals and flags; `config` then
    counts them) builds in `<split>-<size>/`, so the test split's set is never touched."""
    root = root or cache_root()
    size = f"pages{config.page_groups}-flags{config.flag_groups}-side{config.long_side}"
    folder = root / SET_NAME / (f"{picks.split}-{size}" if picks else size)
    wanted = asdict(config)
    if picks is not None:  # as the manifest reads it back (lists, not tuples)
        wanted = json.loads(json.dumps({**wanted, "picks": asdict(picks)}))

    def make(building: Path) -> dict:
        items = {**_page_groups(building, config, root, picks),
                 **_flag_groups(building, config, root, full_fetch, picks)}
        return {"description": __doc__.split("\n\n")[0], "items": items,
                "licence": "pages: LPPL-1.3c et al. (texlive-humanities-doc); flags: MIT (flag-icons)"}

    return build_set_folder(folder, wanted, make)
