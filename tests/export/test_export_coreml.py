"""Core ML export checked by the numpy ML-program interpreter against PyTorch and onnxruntime."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.coreml_export import export_coreml
from pocketvec.export.mil_interpreter import MILProgram
from pocketvec.export.mil_proto import load_spec, package_paths
from pocketvec.export.onnx_export import export_onnx
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.checkpoint import load_run, read_run_config, save_run
from pocketvec.train.encoder import EncoderConfig, build_encoder


@pytest.fixture(scope="module")
def small_package(small_run, tmp_path_factory):
    return export_coreml(small_run, tmp_path_factory.mktemp("coreml") / "small.mlpackage")


def _pixels(run, demo_items, count=4):
    model = load_run(run)
    pixels = load_batch(list_images(demo_items)[:count], model.config.preprocess)
    with torch.no_grad():
        return model, pixels, model(torch.from_numpy(pixels)).numpy()


def test_fp32_program_matches_torch_and_onnxruntime(small_run, small_package, demo_items, tmp_path):
    _, pixels, expected = _pixels(small_run, demo_items)
    program = MILProgram.load(small_package)
    out = program.predict(pixels)
    assert np.abs(out - expected).max() <= 1e-4
    session = ort.InferenceSession(str(export_onnx(small_run, tmp_path / "m.onnx")))
    assert np.abs(out - session.run(None, {"image": pixels})[0]).max() <= 1e-4
    fp16 = program.predict(pixels, "fp16")  # every intermediate rounded to float16
    assert np.abs(fp16 - expected).max() > 0 and np.sum(fp16 * expected, axis=1).mean() >= 0.9995


def test_local_output_matches_torch_in_both_formats(small_run, small_package, demo_items, tmp_path):
    """The local re-rank's `local` output (the default export): the PyTorch stride-16 map in Core ML (through
    the interpreter, fp32 and fp16) and in ONNX; --no-local-rerank leaves it out of both."""
    model, pixels, _ = _pixels(small_run, demo_items)
    with torch.no_grad():
        expected = model.forward_with_locals(torch.from_numpy(pixels))[1].numpy()
    program = MILProgram.load(small_package)
    assert program.metadata.local_rerank.shape == expected.shape[1:]
    assert np.abs(program.predict_outputs(pixels)["local"] - expected).max() <= 1e-4
    fp16 = program.predict_outputs(pixels, "fp16")["local"]
    assert np.sum(fp16 * expected, axis=-1).mean() >= 0.9995
    session = ort.InferenceSession(str(export_onnx(small_run, tmp_path / "m.onnx")))
    assert np.abs(session.run(["local"], {"image": pixels})[0] - expected).max() <= 1e-4
    from pocketvec.runtime.engines import open_engine

    images = list_images(demo_items)[:3]  # the runtime engines: the same maps from both files
    interpreted = open_engine(small_package, "interpreter").embed_all(images)
    assert np.abs(interpreted.locals - open_engine(tmp_path / "m.onnx").embed_all(images).locals).max() <= 1e-4
    plain = export_coreml(small_run, tmp_path / "plain.mlpackage", local_rerank=False)
    assert [o.name for o in load_spec(plain).description.output] == ["embedding"]
    assert MILProgram.load(plain).metadata.local_rerank is None


def test_package_contract(small_run, small_package):
    spec = load_spec(small_package)
    image = spec.description.input[0]
    assert image.name == "image" and image.type.imageType.width == 96
    assert image.type.imageType.ColorSpace.Name(image.type.imageType.colorSpace) == "RGB"
    assert [o.name for o in spec.description.output] == ["embedding", "local"]
    meta = MILProgram.load(small_package).metadata
    assert meta.embedding_space_id == read_run_config(small_run)["embedding_space_id"]
    assert meta.preprocess.input_size == 96


@pytest.mark.parametrize("backbone", ["mobilenetv3_small_050"])
def test_other_backbones(backbone, demo_items, tmp_path):
    run = save_run(tmp_path / "run", build_encoder(EncoderConfig(backbone=backbone,
                                                                 preprocess=PreprocessSpec(input_size=64))))
    _, pixels, expected = _pixels(run, demo_items, 2)
    out = MILProgram.load(export_coreml(run, tmp_path / "m.mlpackage")).predict(pixels)
    assert np.abs(out - expected).max() <= 1e-4


def test_int8_weights_are_dequantized(small_run, demo_items, tmp_path):
    _, pixels, expected = _pixels(small_run, demo_items, 2)
    path = export_coreml(small_run, tmp_path / "m8.mlpackage", "int8")
    ops = {op.type for op in load_spec(path).mlProgram.functions["main"].block_specializations["CoreML7"].operations}
    assert "constexpr_affine_dequantize" in ops
    out = MILProgram.load(path).predict(pixels)
    cosine = np.sum(out * expected, axis=1)
    assert cosine.min() > 0.95 and np.abs(out - expected).max() > 1e-6  # close, yet really quantized


def test_int8_all_zero_channels_stay_zero_without_warnings(demo_items, tmp_path):
    """Dead (all-zero) output channels: coremltools gives them scale 0; the export must neither warn
    (0/0 in numpy) nor let NaN reach the weights."""
    import warnings

    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", preprocess=PreprocessSpec(input_size=96))).eval()
    zeroed = 0
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d) and module.weight.numel() > 2048:
                module.weight[: module.weight.shape[0] // 4] = 0  # a quarter of the filters dead
                zeroed += 1
    assert zeroed
    run = save_run(tmp_path / "run", model)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        path = export_coreml(run, tmp_path / "dead.mlpackage", "int8")
    _, pixels, expected = _pixels(run, demo_items, 2)
    out = MILProgram.load(path).predict(pixels)
    assert np.isfinite(out).all() and np.sum(out * expected, axis=1).min() > 0.95


def test_fp16_overflow_shows(tmp_path):
    import coremltools as ct

    class Blowup(torch.nn.Module):
        def forward(self, x):
            return (x * 1000.0) * 1000.0 / 1e6

    graph = torch.export.export(Blowup(), (torch.ones(1, 3, 8, 8),)).run_decompositions({})
    model = ct.convert(graph, inputs=[ct.TensorType(name="image", shape=(1, 3, 8, 8))], convert_to="mlprogram",
                       minimum_deployment_target=ct.target.iOS17, compute_precision=ct.precision.FLOAT32)
    model.save(str(tmp_path / "b.mlpackage"))
    program = MILProgram.load(tmp_path / "b.mlpackage")
    x = np.full((1, 3, 8, 8), 200.0, dtype=np.float32)
    assert np.allclose(program.predict(x, "fp32"), 200.0)
    assert np.isinf(program.predict(x, "fp16")).all()


def test_clear_errors(small_run, small_package, tmp_path):
    program = MILProgram.load(small_package)
    with pytest.raises(ConfigError, match=r"\(N, 3, 96, 96\)"):
        program.predict(np.zeros((1, 3, 64, 64), np.float32))
    spec = load_spec(small_package)
    spec.mlProgram.functions["main"].block_specializations["CoreML7"].operations[-1].type = "fancy_op"
    broken = tmp_path / "broken.mlpackage"
    spec_path, _ = package_paths(small_package)
    shutil.copytree(small_package, broken)
    (broken / spec_path.relative_to(small_package)).write_bytes(spec.SerializeToString())
    with pytest.raises(ModelFileError, match="fancy_op"):
        MILProgram.load(broken)
    with pytest.raises(ConfigError, match=r"\.mlpackage"):
        export_coreml(small_run, tmp_path / "m.onnx")


def test_interpreter_runs_without_torch(small_package):
    code = ("import sys, numpy as np\nfrom pocketvec.export.mil_interpreter import MILProgram\n"
            f"p = MILProgram.load({str(small_package)!r})\np.predict(np.zeros((1, 3, 96, 96), np.float32))\n"
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


@pytest.mark.skipif(sys.platform != "darwin", reason="MLModel.predict runs only on macOS")
def test_interpreter_matches_core_ml_on_macos(small_package, small_run, demo_items):
    import coremltools as ct
    from PIL import Image

    _, pixels, _ = _pixels(small_run, demo_items, 2)
    model = ct.models.MLModel(str(small_package))
    ours = MILProgram.load(small_package).predict(pixels)
    for i, image in enumerate(pixels.transpose(0, 2, 3, 1).astype(np.uint8)):
        theirs = model.predict({"image": Image.fromarray(image)})["embedding"]
        assert np.abs(theirs.reshape(-1) - ours[i]).max() <= 1e-3


def test_w8a8_quantizes_activations(demo_items, tmp_path):
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for path in list_images(demo_items)[:3]:
        shutil.copy(path, calibration / path.name)
    run = save_run(tmp_path / "run", build_encoder(EncoderConfig(backbone="lcnet_050",
                                                                 preprocess=PreprocessSpec(input_size=64))))
    _, pixels, expected = _pixels(run, demo_items, 2)
    path = export_coreml(run, tmp_path / "w8a8.mlpackage", "w8a8", calibration_dir=calibration)
    program = MILProgram.load(path)
    assert {"quantize", "dequantize"} <= program.op_types()
    out = program.predict(pixels)
    assert np.abs(out - expected).max() > 1e-6 and np.sum(out * expected, axis=1).min() >= 0.98


@pytest.mark.parametrize("damage", ["truncated weights", "edited spec"])
def test_a_damaged_package_is_a_clear_error(small_package, demo_items, tmp_path, damage):
    """A truncated weight file or a damaged spec: ModelFileError naming the package, no IndexError."""
    from pocketvec.runtime.engines import open_engine

    package = shutil.copytree(small_package, tmp_path / "damaged.mlpackage")
    files = sorted((p for p in package.rglob("*") if p.is_file()), key=lambda p: p.stat().st_size)
    target = files[-1] if damage == "truncated weights" else next(p for p in files if p.suffix == ".mlmodel")
    raw = target.read_bytes()
    target.write_bytes(raw[: len(raw) // 3] if damage == "truncated weights" else raw[:40] + b"\xff" * 40 + raw[80:])
    with pytest.raises(ModelFileError, match=r"damaged\.mlpackage"):
        engine = open_engine(package, engine="interpreter")
        engine.embed(list_images(demo_items)[:1])


def test_the_weights_digest_is_checked_on_open(small_package, demo_items, tmp_path):
    """The export records the digest of the weights it saved; a changed byte of the weight file is refused
    naming the package, an inline constant of the program changed too; a package without the key (an older
    export) opens as before."""
    import json

    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.metadata import METADATA_KEY
    from pocketvec.runtime.weights_digest import PATTERN

    digest = MILProgram.load(small_package).metadata.weights_digest
    assert PATTERN.fullmatch(digest) and open_engine(small_package, "interpreter").metadata.weights_digest == digest
    refused = r"\.mlpackage: its weights do not match the digest recorded at export"

    edited = shutil.copytree(small_package, tmp_path / "edited.mlpackage")
    weights = package_paths(edited)[1] / "weight.bin"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    weights.write_bytes(bytes(raw))
    with pytest.raises(ModelFileError, match=rf"edited{refused}"):
        open_engine(edited, "interpreter")

    def rewritten(name: str, change) -> Path:
        package = shutil.copytree(small_package, tmp_path / f"{name}.mlpackage")
        spec_path = package_paths(package)[0]
        spec = load_spec(package)
        change(spec)
        spec_path.write_bytes(spec.SerializeToString())
        return package

    def edit_inline_constant(spec) -> None:
        block = spec.mlProgram.functions["main"].block_specializations["CoreML7"]
        value = next(op.attributes["val"] for op in block.operations
                     if op.type == "const" and op.attributes["val"].immediateValue.tensor.floats.values)
        value.immediateValue.tensor.floats.values[0] += 0.5

    with pytest.raises(ModelFileError, match=rf"constant{refused}"):
        open_engine(rewritten("constant", edit_inline_constant), "interpreter")

    def drop_digest(spec) -> None:
        meta = json.loads(spec.description.metadata.userDefined[METADATA_KEY])
        del meta["weights_digest"]
        spec.description.metadata.userDefined[METADATA_KEY] = json.dumps(meta)

    older = open_engine(rewritten("older", drop_digest), "interpreter")
    assert older.metadata.weights_digest is None
    images = list_images(demo_items)[:2]
    assert np.array_equal(older.embed(images), open_engine(small_package, "interpreter").embed(images))


def test_w8a8_calibration_fake_quantizes_each_weight_once_to_the_same_graph(monkeypatch):
    """Each weight's observer and rounding run once per calibration instead of once per image: the calibrated
    graph (ranges, scales, rounded weights) and its outputs are those of the per-image passes."""
    from contextlib import nullcontext

    from torch import nn

    from pocketvec.export import coreml_w8a8
    from pocketvec.export.w8a8 import Rung

    torch.manual_seed(0)  # convolutions (a pointwise and a depthwise one) and a linear head, as the encoders'
    static = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2), nn.ReLU(), nn.Conv2d(16, 16, 3, groups=16),
                           nn.Hardswish(), nn.Conv2d(16, 32, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                           nn.Linear(32, 8)).eval()
    calibration, check = torch.rand(6, 3, 32, 32) * 255, torch.rand(4, 3, 32, 32) * 255
    names = coreml_w8a8.float_modules(static, 32, Rung(0, False))  # every weight and activation 8-bit
    once = coreml_w8a8.quantized_graph(static, calibration, names)
    monkeypatch.setattr(coreml_w8a8, "weights_quantized_once", lambda _prepared: nullcontext())
    per_image = coreml_w8a8.quantized_graph(static, calibration, names)
    ours, theirs = once.state_dict(), per_image.state_dict()
    assert ours.keys() == theirs.keys() and any(key.endswith("weight_scale") for key in ours)
    for key, value in ours.items():
        assert torch.equal(value, theirs[key]) if isinstance(value, torch.Tensor) else value == theirs[key], key
    np.testing.assert_array_equal(coreml_w8a8.embeddings(once, check), coreml_w8a8.embeddings(per_image, check))
