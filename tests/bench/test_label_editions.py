"""The label-editions tier: five editions of a label differ in one small printed field; dev and test apart.

Sets of a few designs are rendered at a small size into the session's data cache (the font packages are
downloaded there once, as the data-fetch tests download theirs); the split and naming checks need no fonts.
"""

from __future__ import annotations

import inspect
import json
import shutil
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest

from pocketvec.bench import dataset
from pocketvec.bench.dataset import DEV, TEST, TIERS, SplitItems, check_disjoint, tier_items
from pocketvec.bench.label_editions import (
    EDITIONS,
    KINDS,
    LABEL_SEEDS,
    MIN_CAP,
    LabelConfig,
    build_label_editions,
    changed_mask,
    make_design,
    producer_names,
)
from pocketvec.bench.simulator import PhotoSimConfig
from pocketvec.data.sources.packages import MissingToolError
from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import load_image

needs_apt = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")
FONTS = ["pkg/Serif.ttf", "pkg/Sans-Bold.ttf", "pkg/Sans-Italic.ttf"]  # names only: designs never open them
SMALL = LabelConfig(designs=3, long_side=300)


@pytest.fixture(scope="module")
def label_set(cache) -> Path:
    return build_label_editions(SMALL, cache)


def editions_of(split: str, index: int) -> list[str]:
    return [kind for kind, _ in make_design(split, index, FONTS).changes]


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def _editions(folder: Path) -> dict[str, dict[str, dict]]:
    """design -> edition -> manifest entry."""
    designs: dict[str, dict[str, dict]] = {}
    for item, entry in _manifest(folder)["items"].items():
        designs.setdefault(entry["design"], {})[entry["edition"]] = {**entry, "item": item}
    return designs


@needs_apt
def test_folder_holds_one_png_per_item_and_a_manifest(label_set) -> None:
    manifest = _manifest(label_set)
    files = sorted(p.stem for p in label_set.glob("*.png"))
    assert files == sorted(manifest["items"]) and len(files) == SMALL.items == 15
    assert sorted(p.name for p in label_set.iterdir()) == sorted([*(f"{f}.png" for f in files), "manifest.json"])
    assert manifest["config"]["split"] == "test" and manifest["config"]["seed"] == LABEL_SEEDS["test"]
    assert not [p for p in label_set.parent.iterdir() if p.name.startswith(".")]  # no build left half-way
    for item, entry in manifest["items"].items():
        assert item == f"{entry['design']}--{entry['edition']}"
        assert manifest["designs"][entry["design"]]["producer"] == entry["producer"]
        assert max(entry["size"]) == 300 and load_image(label_set / f"{item}.png").shape[1::-1] == tuple(entry["size"])
    assert build_label_editions(SMALL, label_set.parent.parent) == label_set  # reused, not rebuilt


@needs_apt
def test_each_edition_differs_from_the_original_in_its_one_field_only(label_set) -> None:
    shares = []
    for design, editions in _editions(label_set).items():
        assert len(editions) == EDITIONS and "original" in editions
        original = editions.pop("original")
        assert original["differs"] is None and original["changed_share"] == 0
        assert len({e["differs"] for e in editions.values()}) == 4 and set(editions) <= set(KINDS)
        pixels = load_image(label_set / f"{original['item']}.png")
        for kind, entry in editions.items():
            assert entry["differs"] == kind and entry["text"] and entry["text"] != entry["original"]
            fields, before = entry["fields"], original["fields"]
            assert fields[kind]["text"] == entry["text"]
            assert kind == "medal" or before[kind]["text"] == entry["original"]
            assert {f: v for f, v in fields.items() if f != kind} == {f: v for f, v in before.items() if f != kind}
            mask = changed_mask(pixels, load_image(label_set / f"{entry['item']}.png"))
            share = float(mask.mean())
            assert 0.003 <= share <= 0.03, (design, kind, share)
            assert share == pytest.approx(entry["changed_share"], abs=1e-5)
            # every changed pixel lies in the field's box, in this edition or in the original (+ resampling's reach)
            inside = np.zeros_like(mask)
            for box in [fields[kind]["box"]] + ([before[kind]["box"]] if kind in before else []):
                x0, y0, x1, y1 = box
                inside[max(0, y0 - 3) : y1 + 3, max(0, x0 - 3) : x1 + 3] = True
            assert not (mask & ~inside).any(), (design, kind)
            shares.append(share)
    assert len(shares) == 12


@needs_apt
def test_the_differing_text_is_legible(label_set) -> None:
    """A changed text's capital H is at least MIN_CAP (14) pixels tall at a 600 pixel long side."""
    for editions in _editions(label_set).values():
        for entry in editions.values():
            if entry["differs"] not in (None, "medal"):
                assert entry["fields"][entry["differs"]]["cap"] >= MIN_CAP, entry["item"]


@needs_apt
def test_same_config_same_bytes(label_set) -> None:
    first = label_set.with_name("first-build")
    shutil.rmtree(first, ignore_errors=True)
    label_set.rename(first)
    try:
        again = build_label_editions(SMALL, label_set.parent.parent)
        assert sorted(p.name for p in again.iterdir()) == sorted(p.name for p in first.iterdir())
        for path in first.iterdir():
            assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    finally:
        shutil.rmtree(first, ignore_errors=True)


def test_designs_cover_every_kind_and_are_pure() -> None:
    designs = [make_design("test", i, FONTS) for i in range(15)]
    kinds = [{kind for kind, _ in d.changes} for d in designs]
    assert all(len(k) == 4 for k in kinds)
    for start in range(0, 15, 3):  # any two designs of a run of three have all six kinds
        run = kinds[start : start + 3]
        assert all(a | b == set(KINDS) for i, a in enumerate(run) for b in run[i + 1 :])
    assert make_design("test", 7, FONTS) == designs[7]  # a function of (split seed, index) alone
    assert len({d.label for d in designs}) == 15
    assert {d.size[0] > d.size[1] for d in designs} == {True, False}  # portrait and landscape


def test_dev_and_test_share_no_producer_and_no_seed() -> None:
    assert LabelConfig(split="dev").seed != LabelConfig(split="test").seed
    test, dev = producer_names("test", 500), producer_names("dev", 500)
    assert len(set(test)) == len(set(dev)) == 500 and not set(test) & set(dev)
    assert producer_names("test", 3) == test[:3]  # a larger split extends the same list
    assert make_design("dev", 0, FONTS).texts["name"] == dev[0] != test[0]
    with pytest.raises(ConfigError, match="split must be one of test, dev"):
        producer_names("train", 1)
    with pytest.raises(DatasetError, match="producers' names"):
        producer_names("dev", 100_000)
    # the bench's split check: names and seeds
    split = lambda name, names, seed: SplitItems(name, 0 if name == "test" else 1, [], [], [], [],  # noqa: E731
                                                 label_names=names, label_seed=seed)
    check_disjoint(split("dev", dev[:30], LABEL_SEEDS["dev"]), split("test", test[:40], LABEL_SEEDS["test"]))
    with pytest.raises(DatasetError, match="shares 1 items"):
        check_disjoint(split("dev", [*dev[:30], test[5]], LABEL_SEEDS["dev"]), split("test", test[:40], 1))
    with pytest.raises(DatasetError, match="label seed 7 vs 7"):
        check_disjoint(split("dev", dev[:30], 7), split("test", test[:40], 7))


def test_the_tier_joins_the_bench_without_running_models() -> None:
    from pocketvec.bench.report import _size_notes
    from pocketvec.cli.bench import bench

    assert TIERS[-1] == "labels" and (TEST.label_designs, DEV.label_designs) == (40, 30)
    assert tier_items("labels", replace(TEST, label_designs=0), None) == []  # --labels 0 leaves the tier out
    assert "labels" in inspect.signature(bench).parameters
    assert _size_notes(asdict(TEST)) == []
    assert "label_designs 3" in _size_notes({**asdict(TEST), "label_designs": 3})[0]
    # the other tiers' photos keep their cache key whatever the number of label designs
    key = dataset._config_key(TEST, PhotoSimConfig(), [], ["a"])
    assert dataset._config_key(replace(TEST, label_designs=3), PhotoSimConfig(), [], ["a"]) == key


@needs_apt
def test_tier_items_and_the_dev_guard(cache, monkeypatch) -> None:
    items = tier_items("labels", replace(TEST, label_designs=1), cache)
    assert len(items) == EDITIONS and all(path.is_file() and path.stem == label for label, path in items)
    assert all(label.startswith(make_design("test", 0, FONTS).label + "--") for label, _ in items)
    monkeypatch.setattr(dataset, "_planned", lambda name, root, limit: [])  # no pages, no flags: labels alone
    only_labels = replace(DEV, pages=0, flags=0, lookalike_page_groups=0, lookalike_flag_groups=0, label_designs=1)
    tiers, _ = dataset.dev_tier_items(only_labels, cache)
    assert [label for label, _ in tiers["labels"]] == [f"{make_design('dev', 0, FONTS).label}--{edition}"
                                                      for edition in sorted(["original", *editions_of("dev", 0)])]
    dev_name = producer_names("dev", 1)[0]
    test = SplitItems("test", 0, [], [], [], [], label_names=[dev_name], label_seed=LABEL_SEEDS["test"])
    with pytest.raises(DatasetError, match="the dev label designs have test producers"):
        dataset._label_items(LabelConfig(1, "dev"), cache, test)


def test_a_missing_apt_get_names_the_font_package(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no system tools at all
    with pytest.raises(MissingToolError, match=r"`apt-get` is not installed.*fonts-dejavu-core"):
        build_label_editions(LabelConfig(designs=1, long_side=100), tmp_path / "cache")
    assert not list((tmp_path / "cache" / "label-sets").iterdir())  # nothing half-built left behind


def test_no_training_set_may_use_the_label_fonts() -> None:
    from pocketvec.data.pool_guard import check_catalog, protected_packages
    from pocketvec.data.sources import LABEL_FONTS, SOURCES
    from pocketvec.data.sources.spec import PackageRef, SourceSpec

    assert {ref.name for ref in LABEL_FONTS} <= set(protected_packages())
    liberation = PackageRef("deb", "fonts-liberation", ("usr/share/fonts/truetype/liberation/*.ttf",))
    glyphs = SourceSpec("glyphs-liberation", "training", "glyphs", (liberation,), "OFL-1.1", "")
    with pytest.raises(DatasetError, match="fonts-liberation, a package of the benchmark set label-editions"):
        check_catalog({**SOURCES, glyphs.name: glyphs})
