"""The default model on the phone is int8 (static QDQ): the browser's onnxruntime-web runs it and
its embeddings and decisions equal the Python runtime's on the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery

from .conftest import DEMO_ITEMS, check_against_python, choose_photo, cosine_distance, open_app


@pytest.fixture(scope="module")
def int8_model(scenario, app_workdir: Path) -> Path:
    """Static int8 QDQ (per-channel int8 weights, uint8 activations) calibrated on real images."""
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    from pocketvec.export.onnx_export import write_metadata
    from pocketvec.runtime.images import load_image
    from pocketvec.runtime.preprocess import preprocess, to_batch

    spec = scenario.engine.metadata.preprocess
    feeds = iter([{"image": to_batch([preprocess(load_image(p), spec)])} for p in sorted(DEMO_ITEMS.glob("*.png"))])

    class Reader(CalibrationDataReader):
        def get_next(self):
            return next(feeds, None)

    out = app_workdir / "model.int8.onnx"
    quantize_static(str(scenario.model), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    proto = onnx.load(str(out))
    write_metadata(proto, scenario.engine.metadata)
    onnx.save(proto, str(out))
    return out


def test_int8_model_in_the_browser_equals_python(page, serve_app, scenario, int8_model: Path, tmp_path: Path) -> None:
    """Gallery and queries embedded by the int8 model in Python; the page matches like Python."""
    engine = open_engine(int8_model)
    assert engine.metadata.embedding_space_id == scenario.space_id  # metadata carried over
    gallery = Gallery(scenario.space_id, scenario.gallery.dim, accept_rule=scenario.rule)
    gallery.add(engine.embed(scenario.enrolled), scenario.gallery.labels, scenario.gallery.sources)
    open_app(page, serve_app(int8_model, gallery.save(tmp_path / "int8.pvg")))
    results = [choose_photo(page, p) for p in scenario.queries]
    query_embeddings = engine.embed(scenario.queries)
    check_against_python(results, query_embeddings, gallery, scenario.rule)
    fp32_distance = max(cosine_distance(a, b) for a, b in zip(query_embeddings, scenario.query_embeddings, strict=True))
    assert fp32_distance > 1e-7, "the int8 model must really be quantized"
