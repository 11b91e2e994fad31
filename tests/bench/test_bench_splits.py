"""The benchmark's dev and test splits: their own items and photo seeds, chosen without any data cache.

The selection is a pure function of the sets' item lists (`split_items`), so it is checked here on
synthetic lists shaped like the real ones (pages of many manuals, 257 flags); a dev build runs on
synthetic images with the fetches and the PDF renderer replaced.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from pocketvec.bench import dataset, lookalikes
from pocketvec.bench.dataset import (
    DEV,
    DEV_SEED_OFFSET,
    SPLITS,
    TEST,
    BenchConfig,
    SplitItems,
    build_benchmark,
    check_disjoint,
    split_folder,
    split_items,
)
from pocketvec.bench.lookalikes import LookalikeConfig, LookalikePicks, build_lookalikes, group_pages, page_identity
from pocketvec.bench.simulator import PhotoSimConfig
from pocketvec.data.sources.plan import PlannedItem, render_order, spread_order
from pocketvec.errors import ConfigError, DatasetError


def _documents(count: int = 60) -> list[tuple[str, int]]:
    """(document inside the package, page count): most long enough for a look-alike group, some not."""
    rng = np.random.default_rng(0)
    return [(f"usr/share/doc/texlive-doc/latex/m{i:02d}/m{i:02d}.pdf", int(rng.integers(3, 8) if i % 6 == 5
                                                                           else rng.integers(8, 30)))
            for i in range(count)]


def _lists(folder: Path | None = None, flags: int = 257) -> tuple[list[PlannedItem], list[PlannedItem], list]:
    """Synthetic (pages, flags, manuals) as `split_items` takes them; images written under `folder` if given."""
    documents = _documents()
    pages = sorted((PlannedItem(f"{doc.split('/')[-1][:-4]}--p{page:04d}", doc, Path("unused.png"), page)
                    for doc, count in documents for page in range(1, count + 1)), key=lambda item: item.name)
    names = sorted(f"f{i:03d}" for i in range(flags))
    flag_items = [PlannedItem(name, f"package/flags/4x3/{name}.svg", Path("unused.png")) for name in names]
    if folder is not None:
        folder.mkdir(parents=True, exist_ok=True)
        pages = [replace(item, source=_image(folder / f"{item.name}.png", i)) for i, item in enumerate(pages)]
        flag_items = [replace(item, source=_image(folder / f"{item.name}.png", 10_000 + i))
                      for i, item in enumerate(flag_items)]
    manuals = [(doc, count) for doc, count in documents if count >= lookalikes.MIN_PAGES]
    return pages, flag_items, manuals


def _image(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    image = np.full((60, 80, 3), 235, np.uint8)
    for _ in range(6):
        x, y = (int(v) for v in rng.integers(0, 60, 2))
        cv2.rectangle(image, (x, y), (x + 15, y + 8), tuple(int(c) for c in rng.integers(0, 200, 3)), -1)
    cv2.imwrite(str(path), image)
    return path


def test_split_is_validated_and_seeds_differ() -> None:
    with pytest.raises(ConfigError, match=r"split must be one of test, dev\. Got 'train'"):
        BenchConfig(split="train")
    assert SPLITS == ("test", "dev")
    assert TEST.photo_seed == 0 and DEV.photo_seed == DEV_SEED_OFFSET != 0
    assert replace(DEV, seed=7).photo_seed == 7 + DEV_SEED_OFFSET and replace(TEST, seed=7).photo_seed == 7
    assert split_folder(Path("w"), "test") == Path("w") and split_folder(Path("w"), "dev") == Path("w/dev")


def test_cli_lists_the_same_splits() -> None:
    from pocketvec.cli.bench import SPLITS as CLI_SPLITS

    assert CLI_SPLITS == SPLITS


def test_test_tiers_keep_their_cache_key() -> None:
    """The key of a test tier is what it was before the dev split existed: its built photos stay valid."""
    key = dataset._config_key(BenchConfig(), PhotoSimConfig(), [Path("x/a.jpg")], ["a", "b"])
    assert key == "f52a9ee22da7"
    assert dataset._config_key(DEV, PhotoSimConfig(), [], ["a"]) != dataset._config_key(
        replace(DEV, split="test"), PhotoSimConfig(), [], ["a"])


def test_test_split_is_todays_selection() -> None:
    pages, flags, manuals = _lists()
    test = split_items(TEST, pages, flags, manuals)
    assert test.pages == render_order(pages)[:150] and test.flags == render_order(flags)[:150]
    assert test.lookalike_manuals == [manuals[i] for i in sorted(spread_order(len(manuals))[:25])]
    assert test.lookalike_flags == [flags[i].name for i in sorted(spread_order(len(flags))[:26])]
    assert test.photo_seed == 0 and test.avoid_pages == () and test.notes == {}


def test_dev_and_test_are_disjoint_in_items_and_seeds() -> None:
    pages, flags, manuals = _lists()
    test, dev = split_items(TEST, pages, flags, manuals), split_items(DEV, pages, flags, manuals)
    assert (len(dev.pages), len(dev.flags), len(dev.lookalike_manuals), len(dev.lookalike_flags)) == (100, 100, 20, 20)
    assert not dev.identities() & test.identities()
    assert dev.photo_seed != test.photo_seed
    check_disjoint(dev, test)  # does not raise
    # pages: those after the test's in render order, less the pages the test's look-alike groups may use
    order = render_order(pages)
    assert order.index(dev.pages[0]) >= 150
    assert [order.index(p) for p in dev.pages] == sorted(order.index(p) for p in dev.pages)
    test_groups = {page_identity(doc, p) for doc, count in test.lookalike_manuals for p in group_pages(count)}
    assert not {page_identity(p.group, p.page) for p in dev.pages} & test_groups
    # flags: none of any test tier
    used = {f.name for f in test.flags} | set(test.lookalike_flags)
    assert not ({f.name for f in dev.flags} | set(dev.lookalike_flags)) & used
    # look-alike manuals: the spread order's next ones; their groups never use a test page
    assert dev.lookalike_manuals == [manuals[i] for i in sorted(spread_order(len(manuals))[25:45])]
    test_pages = {page_identity(p.group, p.page) for p in test.pages}
    dev_groups = {page_identity(doc, p) for doc, count in dev.lookalike_manuals for p in group_pages(count)}
    assert set(dev.avoid_pages) == dev_groups & test_pages
    assert dev.picks().avoid_pages == dev.avoid_pages and dev.picks().split == "dev"
    # another seed moves both splits' photos, never onto each other
    moved = split_items(replace(DEV, seed=5), pages, flags, manuals)
    assert moved.photo_seed == 5 + DEV_SEED_OFFSET and moved.pages == dev.pages


def test_a_shared_item_or_seed_is_refused() -> None:
    pages, flags, manuals = _lists()
    test, dev = split_items(TEST, pages, flags, manuals), split_items(DEV, pages, flags, manuals)
    with pytest.raises(DatasetError, match="shares 1 items"):
        check_disjoint(replace(dev, pages=[*dev.pages, test.pages[3]]), test)
    with pytest.raises(DatasetError, match="photo seed 0 vs 0"):
        check_disjoint(replace(dev, photo_seed=0), test)
    assert isinstance(dev, SplitItems)


def test_dev_takes_the_free_flags_there_are_and_says_so() -> None:
    pages, flags, manuals = _lists(flags=200)  # 50 flags in no test tier
    dev = split_items(DEV, pages, flags, manuals)
    assert len(dev.flags) == 50 and len(dev.lookalike_flags) == 20
    assert dev.notes == {"flags": ("dev split: 50 flags of the 100 asked (only 50 are in no test tier)",)}


@pytest.fixture
def fake_sources(tmp_path, monkeypatch):
    """The sets, the look-alike manuals and the PDF renderer replaced by synthetic ones (no network, no cache)."""
    pages, flags, manuals = _lists(tmp_path / "images")
    flag_dir = tmp_path / "flag-icons"
    flag_dir.mkdir()
    for item in flags:
        (flag_dir / f"{item.name}.png").write_bytes(item.source.read_bytes())
    (flag_dir / "manifest.json").write_text(json.dumps({"items": {f.name: {"file": f"{f.name}.png"} for f in flags}}))
    doc, count = manuals[30]
    blank = {(f"/docs/{doc}", count // 2 + 1)}  # a blank page: passed over as an avoided one is
    rendered: dict[Path, tuple[str, int]] = {}  # what each rendered file shows: (document, page)

    def render_pdf_page(doc: Path, page: int, out: Path, long_side: int) -> None:
        rendered[out] = (str(doc), page)
        _image(out, page)

    monkeypatch.setattr(dataset, "_planned", lambda name, root, limit: pages if name == "humanities-docs" else flags)
    monkeypatch.setattr(dataset, "lookalike_manuals", lambda root: manuals)
    monkeypatch.setattr(lookalikes, "manuals", lambda scratch, root: [(Path(f"/docs/{doc}"), doc, count)
                                                                    for doc, count in manuals])
    monkeypatch.setattr(lookalikes, "fetch_set", lambda name, limit, root: SimpleNamespace(folder=flag_dir))
    monkeypatch.setattr(lookalikes.render, "render_pdf_page", render_pdf_page)
    monkeypatch.setattr(lookalikes.render, "is_blank", lambda out: rendered[out] in blank)
    return SimpleNamespace(pages=pages, flags=flags, manuals=manuals)


def test_dev_lookalikes_avoid_test_pages_in_their_own_folder(fake_sources, tmp_path) -> None:
    doc, count = fake_sources.manuals[30]
    first = count // 2
    picks = LookalikePicks("dev", (doc,), ("f200",), avoid_pages=(page_identity(doc, first),))
    folder = build_lookalikes(LookalikeConfig(1, 1), tmp_path / "cache", picks=picks)
    assert folder.name == "dev-pages1-flags1-side600"
    items = json.loads((folder / "manifest.json").read_text())["items"]
    pages = {m["edition"]: m["page"] for m in items.values() if m.get("document") == doc}
    # first: avoided (a test page); first + 1: blank; so the group's pages are the next two
    assert pages["original"] == first + 2 and pages["next-page"] == first + 3
    assert {m["source"] for m in items.values() if "document" not in m} == {"flag-icons/f200"}
    assert len(list(folder.glob("*.png"))) == 10
    assert build_lookalikes(LookalikeConfig(1, 1), tmp_path / "cache", picks=picks) == folder  # reused


def test_dev_benchmark_builds_apart_from_the_test_split(fake_sources, tmp_path) -> None:
    config = replace(DEV, pages=3, flags=3, lookalike_page_groups=1, lookalike_flag_groups=1, label_designs=0,
                     queries_per_item=1, calibration_photos=2, full_fetch=False)  # labels: test_label_editions.py
    tiers = build_benchmark(tmp_path / "work", config, root=tmp_path / "cache")
    assert list(tiers) == ["pages", "flags", "lookalikes"]
    assert all(bench.gallery_dir.parent.parent == tmp_path / "work" / "dev" for bench in tiers.values())
    test = split_items(TEST, fake_sources.pages, fake_sources.flags, fake_sources.manuals)
    test_labels = {p.name for p in test.pages} | {f.name for f in test.flags}
    assert not test_labels & set(tiers["pages"].gallery_labels + tiers["flags"].gallery_labels)
    stamp = json.loads((tmp_path / "work" / "dev" / "pages" / "benchmark.json").read_text())
    assert stamp["photo_seed"] == DEV_SEED_OFFSET and stamp["config"]["split"] == "dev"
    for bench in tiers.values():  # the calibration photos: `data photos` of the gallery, 2 per item
        assert bench.calibration_labels == [label for label in bench.gallery_labels for _ in range(2)]
        assert all(path.is_file() for path in bench.calibration_paths)
        assert bench.summary()["calibration_photos"] == 2 * len(bench.gallery_labels)
    made = [p.stat().st_mtime_ns for p in tiers["flags"].calibration_paths]
    again = build_benchmark(tmp_path / "work", config, root=tmp_path / "cache")
    assert [p.stat().st_mtime_ns for p in again["flags"].calibration_paths] == made  # made once, then reused
