"""`pocketvec demo` end to end with a tiny training configuration (real training, real exports,
real verification, real gallery, calibration and matching; only the model is small)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from pocketvec.cli import main
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery

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
    assert len(list((out / "photos" / "test").rglob("*.png"))) == 24 + 4  # one per item + scenes with no item
    assert "parity vs PyTorch" in stdout and "decision level" in stdout and "PyTorch model on" in stdout
    # the demo's own words about where things are
    assert f"gallery: {out / 'items.pvg'}" in stdout
