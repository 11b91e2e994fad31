"""The app's local score (sample_app/src/gallery.js) is the Python runtime's
(pocketvec.runtime.local_rerank) under the shipped settings and under the older ones, and a model file
written before the score's later keys re-ranks in the app as it did."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pocketvec.runtime.local_rerank import GALLERY_SIDE_ONLY, LocalRerank, local_similarity
from pocketvec.runtime.metadata import METADATA_KEY

JS_LOCAL = """async ([query, rows, channels, settings]) => {
  const { localSimilarities } = await import("/src/gallery.js");
  return localSimilarities(Float32Array.from(query), rows.map((r) => Float32Array.from(r)), channels, settings);
}"""

JS_METADATA = """async ([props]) => {
  const { parseMetadata } = await import("/src/model.js");
  return parseMetadata(props, "old.onnx").local_rerank;
}"""

SETTINGS = {
    "shipped": LocalRerank(locations=36, channels=16),
    "gallery side only": LocalRerank(locations=36, channels=16, **GALLERY_SIDE_ONLY),
    "every photo location": LocalRerank(locations=36, channels=16, photo_threshold=-1.0),
}


@pytest.fixture()
def js_page(page, serve_app, scenario):
    page.goto(serve_app(scenario.model) + "?sw=0")
    return page


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_app_scores_local_maps_as_python(js_page, name: str) -> None:
    """Random maps whose candidates share part of the photo, so some photo locations are on the item and
    some are not: every term of the score is exercised."""
    config = SETTINGS[name]
    rng = np.random.default_rng(3)
    shared = rng.normal(size=(config.locations, config.channels))
    query = unit(shared + rng.normal(scale=0.8, size=shared.shape))
    query[26:] = unit(rng.normal(size=(10, config.channels)))  # background: no candidate has it
    rows = unit(shared + rng.normal(scale=0.6, size=(4, *shared.shape)))
    expected = local_similarity(query, rows, config)
    got = js_page.evaluate(JS_LOCAL, [query.ravel().tolist(), [r.ravel().tolist() for r in rows],
                                      config.channels, config.to_dict()])
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert len(set(np.round(expected, 4))) == len(rows)  # distinct scores: the comparison means something


def test_a_model_file_from_before_the_later_keys_reranks_as_it_did(js_page, scenario) -> None:
    meta = json.loads(scenario_metadata(scenario))
    meta["local_rerank"] = {"top_k": 5, "weight": 2.0, "locations": 36, "channels": 128}
    got = js_page.evaluate(JS_METADATA, [{METADATA_KEY: json.dumps(meta)}])
    assert got == LocalRerank.from_dict(meta["local_rerank"]).to_dict()
    assert got["photo_weight"] == 0 and got["worst_fraction"] == 0


def scenario_metadata(scenario) -> str:
    import onnx

    props = {p.key: p.value for p in onnx.load(str(scenario.model), load_external_data=False).metadata_props}
    return props[METADATA_KEY]
