"""Weights rounded onto the int8 grid at the end of training: the int8 exports then compute what PyTorch does."""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import torch

from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.coreml_export import export_coreml
from pocketvec.export.mil_interpreter import MILProgram
from pocketvec.export.onnx_export import export_onnx
from pocketvec.int8_grid import INT8_WEIGHT_THRESHOLD, round_to_int8_grid
from pocketvec.train.checkpoint import load_run, read_run_config, save_run


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
