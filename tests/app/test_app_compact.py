"""Compact local maps in the real app (Chromium + onnxruntime-web): the page reads a Python-built compact gallery
(.pvg version 5: content boxes and codes of the model's codebook, carried in the ONNX metadata), decodes and
scores each row over its own locations as pocketvec.runtime does, codes a row it enrols as Python codes it, and
writes a file Python reads."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pocketvec.runtime.content_box import checker_locations, content_box
from pocketvec.runtime.metadata import METADATA_KEY

from .conftest import (
    DEMO_ITEMS,
    ENROLLED,
    NOT_ENROLLED,
    check_against_python,
    choose_photo,
    copy_items,
    enroll,
    open_app,
    photo_of,
    rule_in_gaps,
    zoomed,
)

JS_CODES = """async ([props, maps, box]) => {
  const { parseMetadata } = await import("/src/model.js");
  const { decodeRow, encodeRow } = await import("/src/local_codes.js");
  const codebook = parseMetadata(props, "model.onnx").local_rerank.codebook;
  const codes = encodeRow(Float32Array.from(maps), box, codebook);
  return { codes: Array.from(codes), decoded: Array.from(decodeRow(codes, codebook)) };
}"""


@pytest.fixture(scope="module")
def compact(run_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """The app's test encoder with a codebook fitted on the demo items' maps, exported; a compact int8 gallery
    of the enrolled items built by pocketvec.runtime, with an accept rule in the gaps of its scores."""
    from pocketvec.export.local_codebook import fit_codebook, training_locations, write_codebook
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import item_boxes
    from pocketvec.runtime.gallery import Gallery
    from pocketvec.runtime.images import content_hash
    from pocketvec.train.checkpoint import load_run

    work = tmp_path_factory.mktemp("compact")
    run = Path(shutil.copytree(run_dir, work / "run"))
    vectors = training_locations(load_run(run), sorted(DEMO_ITEMS.glob("*.png")))
    write_codebook(run, fit_codebook(vectors, subvectors=8, rounds=2, steps=2, final_steps=6))
    model = export_onnx(run, work / "model.onnx")
    engine = open_engine(model)
    enrolled = copy_items(ENROLLED, work / "enroll")
    (work / "queries").mkdir()
    queries = [photo_of(p, work / "queries" / f"{p.stem}_photo.png", angle=1.0 + 0.25 * i)
               for i, p in enumerate(enrolled)]
    queries += copy_items(NOT_ENROLLED, work / "queries")
    gallery = Gallery.for_model(engine.metadata, "int8")
    assert gallery.compact  # int8 with a codebook: compact by default
    items = engine.embed_all(enrolled)
    gallery.add(items.embeddings, [p.stem for p in enrolled], [content_hash(p) for p in enrolled], items.locals,
                engine.metadata, boxes=item_boxes(engine, items))
    found = zoomed(engine, gallery, engine.embed_all(queries, query=True), queries)
    rerank = engine.metadata.local_rerank
    gallery.accept_rule = rule_in_gaps(gallery, found, rerank)
    return SimpleNamespace(model=model, engine=engine, gallery=gallery, gallery_path=gallery.save(work / "g.pvg"),
                           queries=queries, found=found, rerank=rerank, work=work)


def test_the_page_scores_a_compact_gallery_as_python(page, serve_app, compact) -> None:
    open_app(page, serve_app(compact.model, compact.gallery_path))
    n = compact.gallery.count
    assert page.inner_text("#gallery-count") == f"{n} labels, {n} rows"
    results = [choose_photo(page, q) for q in compact.queries]
    check_against_python(results, compact.found, compact.gallery, compact.gallery.accept_rule, compact.rerank)
    decisions = [r["accepted"] for r in results]
    assert any(decisions) and not all(decisions), "the rule must give both answers on these queries"


def test_the_page_codes_and_decodes_as_python(page, serve_app, compact) -> None:
    import onnx

    open_app(page, serve_app(compact.model))
    props = {p.key: p.value for p in onnx.load(str(compact.model), load_external_data=False).metadata_props}
    codebook = compact.engine.metadata.local_rerank.codebook
    assert json.loads(props[METADATA_KEY])["local_rerank"]["codebook"]["digest"] == codebook.digest
    maps, box = compact.engine.embed_all(compact.queries[-1:]).locals[0], (1, 0, 6, 8)
    got = page.evaluate(JS_CODES, [props, maps.ravel().tolist(), list(box)])
    expected = codebook.encode(maps[checker_locations(box, 8)])
    assert got["codes"] == expected.ravel().tolist()
    np.testing.assert_allclose(np.array(got["decoded"]).reshape(expected.shape[0], -1), codebook.decode(expected),
                               atol=1e-6)


def test_a_row_enrolled_in_the_page_joins_the_compact_file_python_reads(page, serve_app, compact,
                                                                       tmp_path: Path) -> None:
    from pocketvec.runtime.gallery import Gallery

    open_app(page, serve_app(compact.model, compact.gallery_path))
    new_item = compact.queries[-1]  # a flag not in the served gallery
    assert enroll(page, new_item, "new item").startswith("Enrolled")
    page.reload()  # the compact rows survive in IndexedDB
    page.evaluate("() => window.pocketvecApp.ready")
    n = compact.gallery.count + 1
    assert page.inner_text("#gallery-count") == f"{n} labels, {n} rows"
    with page.expect_download() as download:
        page.click("#export-button")
    exported = tmp_path / "from_browser.pvg"
    download.value.save_as(exported)
    loaded = Gallery.load_for(exported, compact.engine.metadata)
    assert loaded.compact and loaded.count == n and loaded.labels[-1] == "new item"
    for i in range(compact.gallery.count):  # the served rows' codes go back unchanged
        assert all(np.array_equal(a, b) for a, b in zip(loaded.locals.row(i), compact.gallery.locals.row(i),
                                                        strict=True))
    box, codes = loaded.locals.row(n - 1)
    height, width = compact.engine.embed_all([new_item]).sizes[0]
    spec, locations = compact.engine.metadata.preprocess, compact.rerank.locations
    assert tuple(box) == content_box(int(height), int(width), spec, locations)
    item_map = compact.engine.embed_all([new_item]).locals[0]
    python_codes = compact.rerank.codebook.encode(item_map[checker_locations(box, 8)])
    assert (codes == python_codes).mean() >= 0.9  # the page's map differs from Python's by float rounding only
