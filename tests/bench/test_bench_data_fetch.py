"""`pocketvec data fetch/list` on real Debian packages (small --limit fetches into a session cache)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from pocketvec.data.sources import read_manifest
from pocketvec.data.sources.fetch import fetch_set
from pocketvec.data.sources.packages import MissingToolError
from pocketvec.data.sources.plan import spread_order

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")


def _items(folder):
    return sorted(p.name for p in folder.glob("*.png"))


def test_limited_fetch_is_idempotent_and_resumable(cache) -> None:
    first = fetch_set("kgeography-flags", limit=6, root=cache)
    names = _items(first.folder)
    assert first.items == 6 and len(names) == 6 and not first.complete
    assert not (first.folder / ".done").exists()
    manifest = read_manifest(first.folder)
    assert sorted(e["file"] for e in manifest["items"].values()) == names
    assert all(e["source"].startswith("usr/share/kgeography/flags/") for e in manifest["items"].values())
    assert manifest["packages"][0]["name"] == "kgeography-data" and manifest["licence"]
    assert "blurred" not in " ".join(names)
    assert (first.folder / "COPYRIGHT-kgeography-data.txt").read_text().strip()
    mtimes = {n: (first.folder / n).stat().st_mtime_ns for n in names}

    again = fetch_set("kgeography-flags", limit=6, root=cache)  # idempotent: nothing re-rendered
    assert again.rendered == 0 and _items(again.folder) == names
    assert {n: (first.folder / n).stat().st_mtime_ns for n in names} == mtimes

    (first.folder / names[2]).unlink()  # resumable: only the missing item is rendered again
    resumed = fetch_set("kgeography-flags", limit=6, root=cache)
    assert resumed.rendered == 1 and _items(resumed.folder) == names

    grown = fetch_set("kgeography-flags", limit=9, root=cache)  # a larger limit extends the same order
    assert grown.rendered == 3 and set(names) < set(_items(grown.folder))
    assert not list(first.folder.glob(".tmp-*"))
    for name in _items(grown.folder):
        with Image.open(grown.folder / name) as image:
            assert max(image.size) <= 600


def test_pdf_pages_are_spread_across_documents(cache) -> None:
    if shutil.which("pdftoppm") is None:
        with pytest.raises(MissingToolError, match="pdf"):
            fetch_set("humanities-docs", limit=4, root=cache)
        return
    result = fetch_set("humanities-docs", limit=4, root=cache)
    manifest = read_manifest(result.folder)
    documents = {e["source"] for e in manifest["items"].values()}
    assert result.items == 4 and len(documents) == 4  # four pages, four different documents
    for entry in manifest["items"].values():
        assert entry["source"].endswith(".pdf") and entry["page"] >= 1
        with Image.open(result.folder / entry["file"]) as image:
            assert max(image.size) == 600


def test_missing_system_tool_is_named(cache, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty PATH: no system tools at all
    with pytest.raises(MissingToolError, match=r"rsvg-convert.*apt-get install librsvg2-bin"):
        fetch_set("flag-icons", limit=2, root=tmp_path / "c")
    with pytest.raises(MissingToolError, match="`apt-get` is not installed"):
        fetch_set("wesnoth-portraits", limit=2, root=tmp_path / "c")


def test_spread_order_prefixes_are_even() -> None:
    for n in (1, 2, 7, 30, 100):
        order = spread_order(n)
        assert sorted(order) == list(range(n))
    assert spread_order(8)[:4] == [0, 4, 2, 6]


def test_data_list_shows_cached_sets(cache) -> None:
    fetch_set("kgeography-flags", limit=6, root=cache)
    result = subprocess.run([sys.executable, "-m", "pocketvec", "data", "list", "--cache", str(cache)],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if "kgeography-flags" in line)
    assert "partial" in row and "humanities-docs" in result.stdout and "flag-icons" in result.stdout


def test_blank_check_sees_colour_not_only_brightness(tmp_path) -> None:
    from pocketvec.data.render import is_blank

    flat = np.full((90, 120, 3), (193, 39, 45), np.uint8)
    Image.fromarray(flat).save(tmp_path / "flat.png")
    assert is_blank(tmp_path / "flat.png")
    star = flat.copy()  # Morocco-like: a thin green outline of about the red's brightness
    star[30:60, 50:53] = star[30:60, 67:70] = star[30:33, 50:70] = (0, 98, 51)
    Image.fromarray(star).save(tmp_path / "star.png")
    assert not is_blank(tmp_path / "star.png")
