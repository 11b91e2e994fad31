"""ONNX export at fp32/fp16/int8/w8a8 of a run folder, checked with real onnxruntime sessions on real images."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.source import refuse_adapters
from pocketvec.export.verify import onnx_kind
from pocketvec.int8_grid import INT8_WEIGHT_THRESHOLD
from pocketvec.runtime.metadata import METADATA_KEY, ModelMetadata
from pocketvec.runtime.onnx_options import FOLD_WEIGHTS_OPTION, is_weight_only_int8, onnx_op_types, session_options
from pocketvec.train.checkpoint import load_run, read_run_config


@pytest.fixture(scope="module")
def reference(small_run, demo_items):
    model = load_run(small_run)
    pixels = load_batch(list_images(demo_items)[:6], model.config.preprocess)
    with torch.no_grad():
        return pixels, model(torch.from_numpy(pixels)).numpy()


def _run(path, pixels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session, session.run(None, {"image": pixels})[0]


def test_fp32_matches_torch_with_metadata_and_dynamic_batch(small_run, reference, tmp_path):
    pixels, expected = reference
    path = export_onnx(small_run, tmp_path / "m.onnx")
    session, out = _run(path, pixels)  # batch of 6 through a graph traced at batch 2
    assert np.abs(out - expected).max() <= 1e-4
    meta = ModelMetadata.from_json(session.get_modelmeta().custom_metadata_map[METADATA_KEY])
    assert meta.embedding_space_id == read_run_config(small_run)["embedding_space_id"]
    assert meta.preprocess.input_size == 96 and meta.embedding_dim == 256


def test_fp16_keeps_float32_io(small_run, reference, tmp_path):
    pixels, expected = reference
    path = export_onnx(small_run, tmp_path / "m16.onnx", "fp16")
    session, out = _run(path, pixels)
    assert session.get_inputs()[0].type == "tensor(float)" and out.dtype == np.float32
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in onnx.load(str(path)).graph.initializer)
    assert np.sum(out * expected, axis=1).mean() >= 0.9995


def test_int8_is_weight_only_per_channel(small_run, reference, tmp_path):
    pixels, expected = reference
    fp32 = export_onnx(small_run, tmp_path / "m.onnx")
    path = export_onnx(small_run, tmp_path / "m8.onnx", "int8")  # no calibration images needed
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert "DequantizeLinear" in ops and "QuantizeLinear" not in ops  # activations stay float
    inits = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    weights = {n.input[1] for n in proto.graph.node if n.op_type in ("Conv", "Gemm")}
    dequantized = [n for n in proto.graph.node if n.op_type == "DequantizeLinear"]
    assert {n.output[0] for n in dequantized} <= weights
    for node in dequantized:  # int8 values, one scale per output channel
        values, scale = inits[node.input[0]], inits[node.input[1]]
        assert values.dtype == np.int8 and values.size > INT8_WEIGHT_THRESHOLD
        assert scale.shape == (values.shape[0],) and np.abs(values).max() == 127
    float_weights = [inits[w] for w in weights if w in inits]
    assert float_weights and all(w.size <= INT8_WEIGHT_THRESHOLD for w in float_weights)  # the skip rule
    assert path.stat().st_size < 0.5 * fp32.stat().st_size
    assert proto.metadata_props[0].key == METADATA_KEY
    _, out = _run(path, pixels)
    cosine = np.sum(out * expected, axis=1)
    assert cosine.min() > 0.99 and np.abs(out - expected).max() > 1e-6, cosine  # close, yet really quantized
    options = session_options(path)  # the runtime's sessions fold the int8 weights to float at load
    assert options.get_session_config_entry(FOLD_WEIGHTS_OPTION) == "1"
    assert not is_weight_only_int8(onnx_op_types(fp32))
    folded = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert np.abs(folded.run(None, {"image": pixels})[0] - out).max() <= 1e-5


def test_int8_means_the_same_in_onnx_and_core_ml(small_run, reference, tmp_path):
    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.export.mil_interpreter import MILProgram
    from pocketvec.export.mil_proto import load_spec

    pixels, _ = reference
    onnx_out = _run(export_onnx(small_run, tmp_path / "m8.onnx", "int8"), pixels)[1]
    package = export_coreml(small_run, tmp_path / "m8.mlpackage", "int8")
    program = MILProgram.load(package)
    onnx_dq = sum(n.op_type == "DequantizeLinear" for n in onnx.load(str(tmp_path / "m8.onnx")).graph.node)
    coreml_dq = sum(op.type.startswith("constexpr_") for f in load_spec(package).mlProgram.functions.values()
                    for b in f.block_specializations.values() for op in b.operations)
    assert onnx_dq > 0 and onnx_dq == coreml_dq  # the same weights quantized (one shared skip rule)
    assert np.sum(onnx_out * program.predict(pixels), axis=1).min() > 0.9999


def test_w8a8_is_static_qdq_per_channel_calibrated_on_run_data(small_run, reference, tmp_path):
    pixels, expected = reference
    fp32 = export_onnx(small_run, tmp_path / "m.onnx")
    path = export_onnx(small_run, tmp_path / "w8a8.onnx", "w8a8")  # calibration: config["train"]["data"]
    proto = onnx.load(str(path))
    assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    inits = {t.name: t for t in proto.graph.initializer}
    conv_inputs = [n.input[1] for n in proto.graph.node if n.op_type == "Conv"]
    weight_dq = [n for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.output[0] in conv_inputs]
    assert weight_dq and all(np.prod(inits[n.input[1]].dims) > 1 for n in weight_dq)  # per-channel scales
    assert path.stat().st_size < 0.5 * fp32.stat().st_size
    assert proto.metadata_props[0].key == METADATA_KEY and onnx_kind(path) == "w8a8"
    assert not is_weight_only_int8(onnx_op_types(path))  # its QDQ fusions stay on
    _, out = _run(path, pixels)
    assert out.shape == expected.shape and np.isfinite(out).all()


def test_clear_errors(small_run, tmp_path):
    with pytest.raises(ModelFileError, match="no such run folder"):
        export_onnx(tmp_path / "missing", tmp_path / "m.onnx")
    with pytest.raises(ConfigError, match=r"'int8', 'w8a8'\]. Got 'int4'"):
        export_onnx(small_run, tmp_path / "m.onnx", "int4")
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.json").write_text((small_run / "config.json").read_text().replace('"train"', '"other"'))
    (bare / "model.safetensors").write_bytes((small_run / "model.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="--calibration"):
        export_onnx(bare, tmp_path / "w8a8.onnx", "w8a8")
    assert not (tmp_path / "w8a8.onnx").exists()


def test_unmerged_adapters_are_refused(small_run):
    from peft import LoraConfig, get_peft_model

    model = get_peft_model(load_run(small_run), LoraConfig(r=4, target_modules=["head.layers.1"]))
    with pytest.raises(ModelFileError, match="adapter"):
        refuse_adapters(model, "run")


def test_the_w8a8_ladder_calibrates_once_to_the_same_file(demo_items, tmp_path, monkeypatch):
    """Every rung after the first takes the activation ranges the first measured (onnxruntime's range cache)
    instead of running the photos through the float graph again: the file is byte for byte the one calibrated
    per rung."""
    from pocketvec.export import onnx_quantize
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import EncoderConfig, build_encoder

    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", preprocess=PreprocessSpec(input_size=32)))
    run = save_run(tmp_path / "run", model.eval())
    calibration = tmp_path / "calibration"
    calibration.mkdir()
    for path in list_images(demo_items)[:2]:
        (calibration / path.name).write_bytes(path.read_bytes())
    once = export_onnx(run, tmp_path / "once.onnx", "w8a8", calibration_dir=calibration)
    assert "every activation 8-bit" not in onnx.load(str(once)).doc_string  # the ladder went past its first rung
    monkeypatch.setattr(onnx_quantize, "_ranges_cache", lambda *_: {})
    per_rung = export_onnx(run, tmp_path / "per_rung.onnx", "w8a8", calibration_dir=calibration)
    assert once.read_bytes() == per_rung.read_bytes()
