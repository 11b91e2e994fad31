"""The quantized models a phone runs, int8 (int8 weights) and w8a8 (8-bit activations too, static QDQ):
the browser's onnxruntime-web runs each, and its embeddings and decisions equal the Python runtime's on
the same file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pocketvec.runtime.engines import open_engine

from .conftest import (
    DEMO_ITEMS,
    check_against_python,
    choose_photo,
    cosine_distance,
    open_app,
    python_gallery,
    rule_in_gaps,
    zoomed,
)


@pytest.fixture(scope="module", params=["int8", "w8a8"])
def int8_model(request, run_dir: Path, scenario, app_workdir: Path) -> Path:
    """`pocketvec.export`'s int8 or w8a8 file (w8a8 calibrated on the real demo items), with the
    scenario's accept rule written in as `pocketvec calibrate` does."""
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.export.verify import onnx_kind
    from pocketvec.runtime.model_files import write_accept_rule

    out = export_onnx(run_dir, app_workdir / f"model.{request.param}.onnx", quantize=request.param,
                      calibration_dir=DEMO_ITEMS)
    assert onnx_kind(out) == request.param  # w8a8: QuantizeLinear on activations, not only on weights
    return write_accept_rule(out, scenario.rule, scenario.space_id)


def test_int8_model_in_the_browser_equals_python(page, serve_app, scenario, int8_model: Path, tmp_path: Path) -> None:
    """Gallery and queries embedded by the quantized model in Python; the page matches like Python."""
    engine = open_engine(int8_model)
    assert engine.metadata.embedding_space_id == scenario.space_id  # metadata carried over
    assert engine.metadata.accept_rule == scenario.rule
    gallery = python_gallery(engine, scenario.enrolled)
    found = zoomed(engine, gallery, engine.embed_all(scenario.queries, query=True), scenario.queries)
    rerank = engine.metadata.local_rerank
    gallery.accept_rule = rule_in_gaps(gallery, found, rerank)  # int8 scores differ from fp32's
    open_app(page, serve_app(int8_model, gallery.save(tmp_path / "int8.pvg")))
    results = [choose_photo(page, p) for p in scenario.queries]
    # int8 weights run float kernels, which agree to 1e-4. w8a8 runs int8 kernels, and onnxruntime-web's (wasm)
    # and the native CPU provider's can round a requantization one step apart: on this random-init network
    # one of 14 photos moved by cosine distance 0.0023 (its local map by up to 0.038; the other 13: 0) once the
    # export's ladder put the head's activations in float. Answers, top-3 and scores must still be the same.
    tolerance = {"max_distance": 0.01, "max_local_diff": 0.05} if "w8a8" in int8_model.name else {}
    check_against_python(results, found, gallery, gallery.accept_rule, rerank, **tolerance)
    assert len({r["accepted"] for r in results}) == 2, "the rule must give both answers"
    fp32_distance = max(cosine_distance(a, b) for a, b in zip(found.embeddings, scenario.query_embeddings, strict=True))
    assert fp32_distance > 1e-7, "the int8 model must really be quantized"
