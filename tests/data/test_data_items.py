"""Item datasets on the embedded demo items: layouts, labels, bad input, duplicates."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import pytest

from pocketvec.data.assets import backgrounds_dir, demo_items_dir
from pocketvec.data.items import detect_layout, load_items
from pocketvec.errors import DatasetError

FLAGS = ("flag_chad", "flag_romania", "flag_mali")


def _copy(names, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(demo_items_dir() / f"{n}.png", dest / f"{n}.png")) for n in names]


def test_embedded_assets_are_real_images_with_licences():
    items = load_items(demo_items_dir())
    assert items.layout == "flat"
    assert len(items) >= 20 and items.duplicates == ()
    assert {"flag_chad", "flag_romania", "doc_memman_p026"} <= set(items.labels)
    assert (demo_items_dir() / "LICENSES.md").is_file() and (backgrounds_dir() / "LICENSES.md").is_file()
    assert len(load_items(backgrounds_dir())) >= 6
    for entry in items:  # every item is credited in the licence list
        assert entry.path.stem.split("_p")[0].replace("doc_", "") in (demo_items_dir() / "LICENSES.md").read_text()


def test_flat_folder_labels_are_relative_paths(tmp_path):
    _copy(FLAGS[:2], tmp_path / "set")
    _copy(FLAGS[2:], tmp_path / "set" / "africa")
    (tmp_path / "set" / "README.txt").write_text("not an image, skipped")
    items = load_items(tmp_path / "set")
    assert items.layout == "flat"
    assert items.labels == ("africa/flag_mali", "flag_chad", "flag_romania")


def test_folder_per_item(tmp_path):
    _copy(["flag_chad", "flag_romania"], tmp_path / "chad")
    _copy(["flag_mali"], tmp_path / "mali")
    assert detect_layout(tmp_path) == "folders"
    items = load_items(tmp_path)
    assert [e.label for e in items] == ["chad", "chad", "mali"]
    assert items.labels == ("chad", "mali")


def test_csv_manifest_resolves_relative_paths(tmp_path):
    _copy(FLAGS, tmp_path / "img")
    manifest = tmp_path / "items.csv"
    manifest.write_text("path,label\nimg/flag_chad.png,td\nimg/flag_mali.png,ml\nimg/flag_romania.png,td\n")
    items = load_items(manifest)
    assert items.layout == "manifest"
    assert [(e.path.name, e.label) for e in items] == [
        ("flag_chad.png", "td"), ("flag_mali.png", "ml"), ("flag_romania.png", "td")]
    assert items[0].path == tmp_path / "img" / "flag_chad.png"


def test_bad_inputs_name_the_path(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images found"):
        load_items(tmp_path / "empty")
    with pytest.raises(DatasetError, match="no such file"):
        load_items(tmp_path / "nope")
    with pytest.raises(DatasetError, match="layout"):
        load_items(tmp_path / "empty", layout="pile")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "fake.png").write_text("this is text")
    with pytest.raises(DatasetError, match=r"fake\.png.*not an image"):
        load_items(tmp_path / "bad")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\ngone.png,x\n")
    with pytest.raises(DatasetError, match=r"gone\.png.*missing"):
        load_items(manifest)
    manifest.write_text("path,label\nm.csv,x\n")
    with pytest.raises(DatasetError, match=r"m\.csv.*not an image"):
        load_items(manifest)
    manifest.write_text("file,name\na.png,x\n")
    with pytest.raises(DatasetError, match="header"):
        load_items(manifest)


def test_flat_label_clash_is_an_error(tmp_path):
    [png] = _copy(["flag_chad"], tmp_path)
    shutil.copy(png, tmp_path / "flag_chad.jpg")
    with pytest.raises(DatasetError, match="flag_chad"):
        load_items(tmp_path, check_images=False)


def test_duplicates_are_reported_not_merged(tmp_path):
    [chad, _] = _copy(["flag_chad", "flag_romania"], tmp_path)
    shutil.copy(chad, tmp_path / "copy_of_chad.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = load_items(tmp_path)
    assert len(items) == 3
    assert items.duplicates == ((tmp_path / "copy_of_chad.png", tmp_path / "flag_chad.png"),)
    assert any("identical images" in str(w.message) for w in caught)
