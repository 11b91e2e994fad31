"""Weights rounded onto the int8 grid at the end of training: the int8 exports then compute what PyTorch does."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import torch
from rich.console import Console

from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.coreml_export import export_coreml
from pocketvec.export.mil_interpreter import MILProgram
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.parity import SHIPPED, TRAINED_FLOAT
from pocketvec.export.verify import verify_models
from pocketvec.int8_grid import INT8_WEIGHT_THRESHOLD, round_to_int8_grid
from pocketvec.train.checkpoint import load_float_reference, load_run, read_run_config, save_run
from pocketvec.train.rounding import save_on_grid


def _torch_and_onnx_int8(run, pixels, tmp_path):
    with torch.no_grad():
        expected = load_run(run).eval()(torch.from_numpy(pixels)).numpy()
    session = ort.InferenceSession(str(export_onnx(run, tmp_path / f"{run.name}_int8.onnx", "int8")))
    return expected, session.run(None, {"image": pixels})[0]


def test_rounded_weights_make_int8_export_exact(small_run, demo_items, tmp_path):
    model = load_run(small_run)
    pixels = load_batch(list_images(demo_items)[:6], model.config.preprocess)
    assert round_to_int8_grid(model) > 0
    rounded = save_run(tmp_path / "rounded", model.eval(), {"train": read_run_config(small_run)["train"]})

    expected, int8 = _torch_and_onnx_int8(small_run, pixels, tmp_path)
    error_before = np.abs(int8 - expected).max()
    expected, int8 = _torch_and_onnx_int8(rounded, pixels, tmp_path)
    error_after = np.abs(int8 - expected).max()
    assert error_after <= 1e-5 < error_before  # int8 storage loses nothing once the weights are on its grid
    coreml = MILProgram.load(export_coreml(rounded, tmp_path / "rounded8.mlpackage", "int8")).predict(pixels[:2])
    assert np.abs(coreml - expected[:2]).max() <= 1e-5  # the same grid as coremltools' int8


def test_rounding_is_idempotent_and_skips_small_weights(small_run):
    model = load_run(small_run)
    small = {name: p.detach().clone() for name, p in model.named_parameters() if p.numel() <= INT8_WEIGHT_THRESHOLD}
    round_to_int8_grid(model)
    once = {name: p.detach().clone() for name, p in model.named_parameters()}
    round_to_int8_grid(model)
    assert all(torch.equal(once[name], p) for name, p in model.named_parameters())
    assert all(torch.equal(small[name], dict(model.named_parameters())[name]) for name in small)


def test_verify_compares_with_the_shipped_and_the_trained_float_weights(small_run, demo_items, tmp_path):
    """A run on the int8 grid: its files reproduce the shipped (rounded) weights exactly, and verify
    also shows how far they are from the trained float weights, each row saying which."""
    model = load_run(small_run)
    run = save_on_grid(tmp_path / "grid", model, {"train": read_run_config(small_run)["train"]})
    assert load_float_reference(run) is not None
    files = [export_onnx(run, tmp_path / "int8.onnx", "int8"), export_onnx(run, tmp_path / "fp32.onnx")]
    report = verify_models(run, files, demo_items)
    rows = {(row.model, row.reference): row for row in report.rows}
    assert sorted(rows) == sorted((f.name, ref) for f in files for ref in (SHIPPED, TRAINED_FLOAT))
    for file in files:
        shipped, trained = rows[file.name, SHIPPED], rows[file.name, TRAINED_FLOAT]
        assert shipped.max_abs_diff <= 1e-5 < trained.max_abs_diff  # rounding is invisible only against itself
        assert trained.mean_cosine < shipped.mean_cosine
    assert report.passed == all(rows[f.name, SHIPPED].passed for f in files)
    assert report.passed_against_float == all(rows[f.name, TRAINED_FLOAT].passed for f in files)
    saved = json.loads(report.to_json())
    assert {m["reference"] for m in saved["models"]} == {SHIPPED, TRAINED_FLOAT}
    table = render(report.table())
    assert "shipped (int8 grid)" in table and "trained float (unrounded)" in table


def test_verify_without_float_weights_has_one_reference(small_run, demo_items, tmp_path):
    report = verify_models(small_run, [export_onnx(small_run, tmp_path / "int8.onnx", "int8")], demo_items)
    assert [row.reference for row in report.rows] == [SHIPPED] and report.passed_against_float is None
    assert "shipped = trained float" in render(report.table())


def render(table) -> str:
    console = Console(width=250, record=True)
    console.print(table)
    return console.export_text()
