"""The pool's new item sets rendered from real package files (tiny --limit fetches), and the pool's guards.

Package downloads already in ~/.cache/pocketvec/_packages are linked into the test cache instead of
being downloaded again; without them the packages are fetched (a few MB each).
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pocketvec.data.assets import demo_items_dir
from pocketvec.data.pool_guard import check_catalog, check_pool_set
from pocketvec.data.sources import SOURCES, get_source, read_manifest
from pocketvec.data.sources.fetch import fetch_set
from pocketvec.data.sources.packages import _wanted
from pocketvec.data.sources.spec import PackageRef, SourceSpec
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import content_hash
from pocketvec.train.pool import write_pool_manifest

needs_packages = pytest.mark.skipif(
    shutil.which("apt-get") is None or shutil.which("npm") is None or shutil.which("rsvg-convert") is None,
    reason="apt-get, npm and rsvg-convert are needed to fetch and render the sets")


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pool-cache")
    shared = Path.home() / ".cache" / "pocketvec" / "_packages"
    (root / "_packages").mkdir()
    if shared.is_dir():
        for package in shared.iterdir():
            if package.is_file() and package.suffix in (".deb", ".tgz"):
                (root / "_packages" / package.name).symlink_to(package)
    return root


def _narrow(monkeypatch, name: str, include: tuple[str, ...]) -> None:
    """Fetch only a few files of the set's real package, so a test renders a tiny real input."""
    spec = get_source(name)
    monkeypatch.setitem(SOURCES, name, replace(spec, packages=(replace(spec.packages[0], include=include),)))


def _rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"), dtype=np.int16)


def _items(result) -> list[Path]:
    return sorted(result.folder / e["file"] for e in read_manifest(result.folder)["items"].values())


@needs_packages
def test_icons_render_dark_on_white(cache, monkeypatch) -> None:
    _narrow(monkeypatch, "icons-bootstrap", ("package/icons/a*.svg",))
    result = fetch_set("icons-bootstrap", limit=3, root=cache)
    assert result.items == 3 and (result.folder / "COPYRIGHT-bootstrap-icons.txt").read_text().strip()
    for path in _items(result):
        pixels = _rgb(path)
        assert max(pixels.shape[:2]) == 384
        assert (pixels[0, 0] == 255).all() and (pixels[-1, -1] == 255).all()  # a white, not transparent, ground
        assert ((pixels.max(axis=2) < 80).mean()) > 0.01  # the pictogram itself, in dark ink
    sources = {e["source"] for e in read_manifest(result.folder)["items"].values()}
    assert all(s.startswith("package/icons/") and s.endswith(".svg") for s in sources)


@needs_packages
def test_iconify_json_icons_render_one_item_per_icon(cache) -> None:
    result = fetch_set("game-icons", limit=2, root=cache)
    entries = read_manifest(result.folder)["items"].values()
    assert result.items == 2 and all(e["source"] == "package/icons.json" and e["entry"] for e in entries)
    first, second = (_rgb(p) for p in _items(result))
    assert first.shape[:2] == (384, 384) and (first.max(axis=2) < 80).mean() > 0.02
    assert np.abs(first - second).mean() > 5  # two different icons


@needs_packages
def test_card_decks_give_one_cropped_card_per_item(cache, monkeypatch) -> None:
    _narrow(monkeypatch, "playing-cards", ("usr/share/carddecks/svg-standard/*.svgz",
                                           "usr/share/carddecks/svg-nicu-white/*.svgz"))
    result = fetch_set("playing-cards", limit=3, root=cache)
    entries = list(read_manifest(result.folder)["items"].values())
    assert result.items == 3 and len({e["source"] for e in entries}) == 2  # the two decks take turns
    assert all(e["entry"] in ("back", "red_joker", "black_joker") or "_" in e["entry"] for e in entries)
    for path in _items(result):
        pixels = _rgb(path)
        height, width = pixels.shape[:2]
        assert height == 600 and 0.55 < width / height < 0.8  # a portrait card, not the whole deck sheet
        ink = pixels.min(axis=2) < 200
        assert ink[:, : width // 2].mean() > 0.01 and ink[:, width // 2 :].mean() > 0.01


@needs_packages
def test_glyph_sheets_draw_a_grid_and_resume(cache, monkeypatch) -> None:
    _narrow(monkeypatch, "glyphs-noto", ("usr/share/fonts/truetype/noto/NotoSansGeorgian-Regular.ttf",
                                         "usr/share/fonts/truetype/noto/NotoSerifArmenian-Bold.ttf"))
    result = fetch_set("glyphs-noto", limit=2, root=cache)
    manifest = read_manifest(result.folder)
    assert result.items == 2
    for name, entry in manifest["items"].items():
        points = [int(token, 16) for token in entry["entry"].split()]
        assert 1 <= len(points) <= 36 and name.endswith(f"u{points[0]:X}")
        pixels = _rgb(result.folder / entry["file"])
        side = pixels.shape[0] // 6
        cells = [(pixels[r * side:(r + 1) * side, c * side:(c + 1) * side].min() < 128)
                 for r in range(6) for c in range(6)]
        assert sum(cells) >= min(len(points), 6)  # glyphs drawn in separate cells of the grid
    victim = _items(result)[0]
    victim.unlink()
    resumed = fetch_set("glyphs-noto", limit=2, root=cache)
    assert resumed.rendered == 1 and victim.is_file()
    grown = fetch_set("glyphs-noto", limit=3, root=cache)
    assert grown.rendered == 1 and grown.items == 3


@needs_packages
def test_colour_emoji_keep_their_colours(cache) -> None:
    result = fetch_set("emoji-noto", limit=2, root=cache)
    for path in _items(result):
        pixels = _rgb(path)
        saturation = pixels.max(axis=2) - pixels.min(axis=2)
        assert (saturation > 80).mean() > 0.02  # drawn from the colour bitmaps, not in black


def test_emoji_sets_leave_out_flags_and_skin_tones() -> None:
    ref = get_source("emoji-twemoji").packages[0]
    assert _wanted("package/1f44d.svg", ref) and _wanted("package/1f468-200d-1f469-200d-1f467.svg", ref)
    for flag_or_tone in ("package/1f1eb-1f1f7.svg", "package/1f1fa-1f1f8.svg", "package/1f3f4-e0067-e0062.svg",
                         "package/1f44d-1f3fd.svg", "package/1f468-1f3fb-200d-1f4bb.svg"):
        assert not _wanted(flag_or_tone, ref), flag_or_tone


@pytest.mark.parametrize("name", ["humanities-docs", "flag-icons", "bench-backgrounds", "wallpapers", "lookalikes"])
def test_pool_refuses_benchmark_and_background_sets(name, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETVEC_CACHE", str(tmp_path))
    (tmp_path / name).mkdir()
    shutil.copy(demo_items_dir() / "doc_memman_p026.png", tmp_path / name / "a.png")
    with pytest.raises(DatasetError, match=r"never part of the training pool|never enter a pool"):
        write_pool_manifest(tmp_path / "pool.csv", {name: 5})


def test_catalog_refuses_a_training_set_on_a_benchmark_package() -> None:
    check_catalog(SOURCES)  # the shipped catalogue is clean
    smuggled = SourceSpec("more-flags", "training", "svg",
                          (PackageRef("npm", "flag-icons@7.4.0", ("package/flags/1x1/*.svg",)),), "MIT", "")
    message = "more-flags uses flag-icons@7.4.0, a package of the benchmark set"
    with pytest.raises(DatasetError, match=re.escape(message)):
        check_catalog({**SOURCES, smuggled.name: smuggled})
    with pytest.raises(DatasetError, match="benchmark data never enters training"):
        check_pool_set("latex-docs", {**SOURCES, smuggled.name: smuggled})


def _write_set(root: Path, name: str, images: dict[str, Path | Image.Image]) -> None:
    folder = root / name
    folder.mkdir(parents=True)
    items = {}
    for stem, image in images.items():
        out = folder / f"{stem}.png"
        if isinstance(image, Path):
            shutil.copy(image, out)
        else:
            image.save(out, compress_level=1)
        items[stem] = {"file": out.name, "sha256": content_hash(out)}
    (folder / "manifest.json").write_text(json.dumps({"items": items, "skipped": {}}))


def test_same_picture_in_two_sets_is_one_class_and_benchmark_bytes_are_dropped(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETVEC_CACHE", str(tmp_path))
    demo = demo_items_dir()
    page, other, bench = demo / "doc_memman_p026.png", demo / "doc_memman_p027.png", demo / "doc_memman_p030.png"
    with Image.open(page) as image:
        reencoded = image.convert("RGB")  # the same picture in other bytes
    assert reencoded.tobytes() == Image.open(page).convert("RGB").tobytes()
    _write_set(tmp_path, "icons-tabler", {"page": page, "other": other})
    _write_set(tmp_path, "icons-lucide", {"same-page": reencoded, "bench-copy": bench})
    _write_set(tmp_path, "icons-mdi", {"byte-copy": page})
    _write_set(tmp_path, "humanities-docs", {"p": bench})  # a fetched benchmark set
    out = write_pool_manifest(tmp_path / "pool.csv", {"icons-tabler": None, "icons-lucide": None, "icons-mdi": None})
    rows = {Path(r["path"]).name: r["label"] for r in csv.DictReader(out.read_text().splitlines())}
    assert "byte-copy.png" not in rows and "bench-copy.png" not in rows  # dropped
    assert rows["same-page.png"] == rows["page.png"] == "icons-tabler/page"  # one class
    assert rows["other.png"] == "icons-tabler/other"
    assert len(rows) == 3 and os.path.isfile(out)


def test_zip_members_are_items_and_small_ones_are_skipped(tmp_path) -> None:
    import zipfile

    from pocketvec.data.sources.fetch import _render_item
    from pocketvec.data.sources.parts import zip_entries
    from pocketvec.data.sources.plan import plan_items

    pack = tmp_path / "pak.pk3"  # a texture pack is a zip; here made of real item images
    with zipfile.ZipFile(pack, "w") as archive:
        archive.write(demo_items_dir() / "doc_memman_p026.png", "textures/walls/page.png")
        with Image.open(demo_items_dir() / "doc_memman_p027.png") as image:
            tiny = tmp_path / "tiny.png"
            image.resize((40, 60)).save(tiny)
        archive.write(tiny, "textures/tiny.png")
        archive.writestr("scripts/shader.txt", "not an image")
    spec = get_source("textures-openarena")
    spec = replace(spec, long_side=256, options={**spec.options, "min_bytes": 0})
    assert zip_entries(pack, (".png",)) == ["textures/tiny.png", "textures/walls/page.png"]
    assert zip_entries(pack, (".png",), min_bytes=tiny.stat().st_size + 1) == ["textures/walls/page.png"]
    items = plan_items(spec, [pack])
    assert [i.name for i in items] == ["pak--textures--tiny", "pak--textures--walls--page"]
    out = tmp_path / "out"
    out.mkdir()
    assert _render_item(spec, items[0], out / "tiny.jpg") == "too small (40x60)"
    assert _render_item(spec, items[1], out / "page.jpg") is None
    with Image.open(out / "page.jpg") as image:
        assert max(image.size) == 256 and image.format == "JPEG"


def test_a_set_being_fetched_elsewhere_is_waited_for(tmp_path, monkeypatch) -> None:
    from pocketvec.data.sources import fetch as source_fetch
    from pocketvec.file_lock import exclusive_lock

    monkeypatch.setattr(source_fetch, "LOCK_TIMEOUT_S", 0.2)
    with exclusive_lock(tmp_path / "game-icons", 1.0, "test", DatasetError), \
            pytest.raises(DatasetError, match="game-icons: the set game-icons is being written by another process"):
        fetch_set("game-icons", limit=1, root=tmp_path)
    assert not (tmp_path / "_packages").exists()  # nothing downloaded while another process held the set
