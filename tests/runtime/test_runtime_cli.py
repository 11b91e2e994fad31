"""The runtime commands end to end through the real entry point (in-process), on real models and
images: gallery build/add/remove/info, match, calibrate, eval, and their refusals."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from pathlib import Path

import pytest

from pocketvec.cli import main
from pocketvec.runtime.engines import open_engine


def cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["pocketvec", *map(str, args)])
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def run(monkeypatch, capsys):
    return lambda *args: cli(monkeypatch, capsys, *args)


def labelled_queries(folder: Path, items: list[Path]) -> Path:
    """Query photos in one folder per label: re-encoded, resized copies of the items (real pixels)."""
    from PIL import Image

    for path in items:
        (folder / path.stem).mkdir(parents=True, exist_ok=True)
        with Image.open(path) as image:
            rgb = image.convert("RGB")
            smaller = rgb.resize((rgb.width * 3 // 4, rgb.height * 3 // 4), Image.BILINEAR)
            smaller.save(folder / path.stem / "a.jpg", quality=90)
            rgb.crop((4, 4, rgb.width - 4, rgb.height - 4)).save(folder / path.stem / "b.jpg", quality=85)
    return folder


def test_gallery_lifecycle(run, onnx_model: Path, items_dir: Path, item_paths: list[Path], tmp_path: Path) -> None:
    out = tmp_path / "items.pvg"
    code, stdout, _ = run("gallery", "build", "--no-text", onnx_model,
                          "--images", items_dir, "--out", out, "--dtype", "int8")
    assert code == 0 and "10 rows" in stdout and out.is_file()
    code, _, err = run("gallery", "build", "--no-text", onnx_model, "--images", items_dir, "--out", out)
    assert code == 2 and "exists" in err  # never overwritten by accident

    extra = tmp_path / "extra"
    extra.mkdir()
    shutil.copy(item_paths[7], extra / item_paths[7].name)
    shutil.copy(item_paths[0], extra / "same_image_again.png")  # already enrolled as another label
    (extra / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    code, stdout, _ = run("gallery", "add", onnx_model, out, "--images", extra)
    assert code == 1 and "added 1 rows" in stdout  # exit 1: an image was skipped as unreadable
    assert "broken.png" in stdout and "same image is already enrolled" in stdout

    code, stdout, _ = run("gallery", "info", out, "--json", "--labels")
    info = json.loads(stdout)
    assert info["rows"] == 11 and info["dtype"] == "int8" and info["label_rows"][item_paths[7].stem] == 1

    code, stdout, _ = run("gallery", "remove", out, item_paths[7].stem)
    assert code == 0 and "now 10 rows" in stdout
    code, _, err = run("gallery", "remove", out, "no_such_label")
    assert code == 2 and "not in the gallery" in err


def test_match_calibrate_eval(run, onnx_model: Path, other_onnx_model: Path, items_dir: Path, photo_paths: list[Path],
                              tmp_path: Path) -> None:
    gallery = tmp_path / "items.pvg"
    assert run("gallery", "build", "--no-text", onnx_model, "--images", items_dir, "--out", gallery)[0] == 0
    items = sorted(items_dir.iterdir())
    queries = labelled_queries(tmp_path / "queries", items)
    (queries / "not_an_item").mkdir()
    for photo in photo_paths[:3]:
        shutil.copy(photo, queries / "not_an_item" / photo.name)

    model_copy = tmp_path / "model_copy.onnx"
    shutil.copy(onnx_model, model_copy)
    code, stdout, _ = run("calibrate", onnx_model, gallery, "--queries", queries, "--target-precision", "0.95",
                          "--write-model", model_copy)
    assert code == 0, stdout
    assert "decision level" in stdout and "not the precision a user meets" in stdout
    code, stdout, _ = run("gallery", "info", gallery, "--json")
    rule = json.loads(stdout)["accept_rule"]
    assert rule["method"] == "decision" and rule["target_precision"] == 0.95
    assert dataclasses.asdict(open_engine(model_copy).metadata.accept_rule) == rule  # travels with the model
    before = gallery.read_bytes()
    code, _, err = run("calibrate", onnx_model, gallery, "--queries", queries, "--write-model", other_onnx_model)
    assert code == 2 and "another model" in err and gallery.read_bytes() == before  # nothing changed

    code, stdout, _ = run("match", onnx_model, gallery, items[0], items[3], "--json", "--top-k", "2")
    result = json.loads(stdout)
    assert code == 0 and [r["top"][0]["label"] for r in result["results"]] == [items[0].stem, items[3].stem]
    assert all(len(r["top"]) == 2 for r in result["results"])
    assert result["rule"]["threshold"] == rule["threshold"]
    code, stdout, _ = run("match", onnx_model, gallery, items[1], "--threshold", "1.01")
    assert code == 0 and "unknown" in stdout and items[1].stem in stdout  # a table by default

    code, stdout, _ = run("eval", "--no-text", onnx_model, "--gallery", items_dir, "--queries", queries)
    assert code == 0 and "Recall@1" in stdout and "TPR@FPR=0.001" in stdout and "threshold" in stdout
    manifest = tmp_path / "queries.csv"  # the same queries labelled by a CSV manifest
    rows = [f"{p.relative_to(tmp_path)},{p.parent.name}" for p in sorted(queries.rglob("*.jpg"))]
    manifest.write_text("path,label\n" + "\n".join(rows) + "\n")
    code, csv_out, _ = run("eval", "--no-text", onnx_model, "--gallery", items_dir, "--queries", manifest)
    assert code == 0 and csv_out.splitlines()[-2:] == stdout.splitlines()[-2:]  # same Recall and TPR lines


def test_refusals(run, onnx_model: Path, other_onnx_model: Path, items_dir: Path, tmp_path: Path) -> None:
    gallery = tmp_path / "items.pvg"
    assert run("gallery", "build", "--no-text", onnx_model, "--images", items_dir, "--out", gallery)[0] == 0
    before = gallery.read_bytes()
    image = next(items_dir.iterdir())
    code, _, err = run("match", other_onnx_model, gallery, image)
    assert code == 2 and "made by another model" in err
    tampered = tmp_path / "tampered.pvg"
    raw = bytearray(before)
    raw[-5] ^= 0x10
    tampered.write_bytes(bytes(raw))
    code, _, err = run("match", onnx_model, tampered, image)
    assert code == 2 and "checksum" in err
    code, _, err = run("gallery", "add", onnx_model, tmp_path / "truncated.pvg", "--images", items_dir)
    assert code == 2 and "no such gallery" in err
    not_a_model = tmp_path / "model.onnx"
    not_a_model.write_text("hello")
    code, _, err = run("gallery", "build", not_a_model, "--images", items_dir, "--out", tmp_path / "x.pvg")
    assert code == 2 and "model.onnx" in err and not (tmp_path / "x.pvg").exists()
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    (nothing / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    code, _, err = run("gallery", "build", "--no-text", onnx_model,
                       "--images", nothing, "--out", tmp_path / "empty.pvg")
    assert code == 2 and "no image could be enrolled" in err and not (tmp_path / "empty.pvg").exists()
    code, stdout, _ = run("match", onnx_model, gallery, image, tmp_path / "missing.jpg", "--json")
    assert code == 1 and json.loads(stdout)["errors"][0]["problem"] == "no such file"
    assert gallery.read_bytes() == before
