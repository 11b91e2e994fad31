"""`pocketvec demo` end to end with a tiny training configuration (real training, real exports,
real verification, real gallery, calibration and matching; only the model is small)."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

import pytest

from pocketvec.cli import main
from pocketvec.data.assets import demo_items_dir
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery

DEMO_ITEMS = demo_items_dir()
TINY = {"encoder.backbone": "lcnet_050", "encoder.embedding_dim": 32, "encoder.preprocess.input_size": 64,
        "init": "random", "adapters.kind": "none", "max_steps": 2, "batch_classes": 4, "eval_views": 1}


@pytest.mark.slow
def test_demo_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "demo"
    args = ["pocketvec", "demo", "--out", str(out), "--epochs", "1", "--calibration-photos", "1",
            "--test-photos", "1", "--show", "3"]
    for key, value in TINY.items():
        args += ["--train-set", f"{key}={json.dumps(value)}"]
    monkeypatch.setattr(sys, "argv", args)
    monkeypatch.setenv("COLUMNS", "200")
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code
    stdout = capsys.readouterr().out
    assert code in (0, 1), stdout  # 1: a parity check failed, which the table shows
    for name in ("model_int8.onnx", "model_int8.mlpackage", "items.pvg", "run/config.json"):
        assert (out / name).exists(), name
    engine = open_engine(out / "model_int8.onnx")
    gallery = Gallery.load(out / "items.pvg", engine.metadata.embedding_space_id)
    assert gallery.dtype == "int8" and gallery.count == 24
    assert gallery.accept_rule is not None and engine.metadata.accept_rule == gallery.accept_rule
    folders = {p.name: len(list(p.glob("*.png"))) for p in (out / "photos" / "test").iterdir()}
    assert folders.pop("not_an_item") >= 3  # scenes with no item, answered "unknown" when right
    assert len(folders) == 24 and set(folders.values()) == {1}  # one photo of each item
    assert "parity vs PyTorch" in stdout and "decision level" in stdout and "PyTorch model on" in stdout
    # the Core ML file runs in the runtime too (the program interpreter on Linux): same metadata, same numbers
    coreml = open_engine(out / "model_int8.mlpackage")
    assert coreml.name == ("coreml" if platform.system() == "Darwin" else "coreml-interpreter")
    assert coreml.metadata.embedding_space_id == engine.metadata.embedding_space_id
    assert coreml.name != "coreml-interpreter" or coreml.precision == "fp32"  # int8 weights, fp32 compute
    items = sorted(DEMO_ITEMS.glob("flag_*.png"))[:2]
    cosine = (coreml.embed(items) * engine.embed(items)).sum(axis=1)
    assert cosine.min() > 0.99, cosine
    # the answers are the runtime's, each photo zoomed to its item (the regions found for some): the int8 ones are
    # a Recognizer's, and the agreement printed is that of these with the PyTorch model's, zoomed the same way
    from pocketvec.demo import torch_matches
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.enroll import labelled_images
    from pocketvec.runtime.item_zoom import ItemZoom
    from pocketvec.runtime.zoomed_photos import zoom_to_items

    photos = [path for path, _ in labelled_images(out / "photos" / "test", "folders")]
    regions = zoom_to_items(engine, gallery, engine.embed_all(photos, query=True), photos, ItemZoom()).regions
    assert any(region is not None for region in regions)
    answers = Recognizer(out / "model_int8.onnx", out / "items.pvg").match_many(photos)
    reference = torch_matches(out / "run", engine, gallery, out / "photos" / "test")
    same = [(a.top[0].label, a.accepted) == (b.top[0][0], b.accepted) for a, b in zip(answers, reference, strict=True)]
    assert f"PyTorch model on {sum(same) / len(same):.1%} of photos" in stdout
    # the demo's own words about where things are
    assert f"gallery: {out / 'items.pvg'}" in stdout
