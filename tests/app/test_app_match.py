"""Enroll and match real images in the real app (Chromium + onnxruntime-web): the browser's
embeddings equal the Python runtime's, every decision agrees, galleries cross both ways."""

from __future__ import annotations

from pathlib import Path

from pocketvec.runtime.engines import EmbedResult
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.images import content_hash

from .conftest import (
    MAX_COSINE_DISTANCE,
    check_against_python,
    choose_photo,
    cosine_distance,
    enroll,
    open_app,
    page_gallery,
)


def test_enroll_match_export_in_the_browser(page, serve_app, scenario, artifacts_dir: Path, tmp_path: Path) -> None:
    open_app(page, serve_app(scenario.model))  # no served gallery: start empty, enroll in the page
    for path in scenario.enrolled:
        assert enroll(page, path, path.stem).startswith("Enrolled"), path
    again = enroll(page, scenario.enrolled[0], "another-label")
    assert "already enrolled as" in again, again  # same image (sha256), refused
    assert page.inner_text("#gallery-count") == f"{len(scenario.enrolled)} labels, {len(scenario.enrolled)} rows"

    results = [choose_photo(page, q) for q in scenario.queries]
    held = page_gallery(page, scenario.gallery)
    check_against_python(results, scenario.found, scenario.gallery, scenario.rule, scenario.rerank, held)
    decisions = [r["accepted"] for r in results]
    assert any(decisions) and not all(decisions), "the rule must give both answers on these queries"
    assert all(r["inferenceMs"] > 0 for r in results)

    with page.expect_download() as download:
        page.click("#export-button")
    exported = tmp_path / "from_browser.pvg"
    download.value.save_as(exported)
    loaded = Gallery.load(exported, embedding_space_id=scenario.space_id)  # Python reads the browser's file
    assert loaded.labels == scenario.gallery.labels
    assert loaded.sources == [content_hash(p) for p in scenario.enrolled]
    assert loaded.accept_rule == scenario.rule  # a new gallery takes the model's rule, as in Python
    assert loaded.model_digest == scenario.engine.metadata.weights_digest  # and records the model in use
    distances = [cosine_distance(a, b) for a, b in zip(loaded.embeddings(), scenario.gallery.embeddings(), strict=True)]
    assert max(distances) <= MAX_COSINE_DISTANCE

    correct = [q for q, m in zip(scenario.queries, scenario.expected, strict=True)
               if m.accepted and q.stem.removesuffix("_photo") == m.answer]
    assert correct, "no query is recognised by this model: the screenshot needs one"
    shown = choose_photo(page, correct[0])
    assert shown["label"] == correct[0].stem.removesuffix("_photo")
    assert page.inner_text("#decision") == f"✓ {shown['label']}"
    page.screenshot(path=str(artifacts_dir / "app_match.png"), full_page=True)


def test_served_python_gallery_matches_like_python(page, serve_app, scenario) -> None:
    """`pocketvec app serve --gallery`: the Python-built file seeds the device gallery."""
    open_app(page, serve_app(scenario.model, scenario.gallery_path))
    assert page.inner_text("#gallery-count") == f"{len(scenario.enrolled)} labels, {len(scenario.enrolled)} rows"
    assert "Accept rule (gallery)" in page.inner_text("#rule-info")
    some = [0, 1, len(scenario.queries) - 2, len(scenario.queries) - 1]  # enrolled and not (all: above)
    results = [choose_photo(page, scenario.queries[i]) for i in some]
    found = EmbedResult(scenario.found.embeddings[some], locals=scenario.found.locals[some])
    check_against_python(results, found, scenario.gallery, scenario.rule, scenario.rerank)
    new_item = scenario.queries[-1]  # not in the served gallery
    assert enroll(page, new_item, "new item").startswith("Enrolled")
    page.reload()  # the device gallery (IndexedDB) survives the visit; the unchanged served file does not reseed
    page.evaluate("() => window.pocketvecApp.ready")
    n = len(scenario.enrolled) + 1
    assert page.inner_text("#gallery-count") == f"{n} labels, {n} rows"
    # the row enrolled from the photo is the item's embedding (items are letterboxed, photos cropped twice)
    row = page_gallery(page, scenario.gallery).embeddings()[-1]
    assert cosine_distance(row, scenario.engine.embed([new_item])[0]) <= MAX_COSINE_DISTANCE
    assert cosine_distance(row, scenario.first.embeddings[-1]) > 1e-3  # not the photo's own embedding


def test_page_refuses_broken_images_foreign_and_damaged_galleries(page, serve_app, scenario, tmp_path: Path) -> None:
    open_app(page, serve_app(scenario.model))
    broken = tmp_path / "broken.png"
    broken.write_bytes(scenario.enrolled[0].read_bytes()[:300])  # a truncated real PNG
    page.set_input_files("#file-input", str(broken))
    page.wait_for_selector("#error:not([hidden])")
    assert "broken.png: not an image this browser can decode" in page.inner_text("#error")

    foreign = Gallery("0123456789abcdef", scenario.gallery.dim, labels=list(scenario.gallery.labels),
                      sources=list(scenario.gallery.sources), vectors=scenario.gallery.vectors.copy())
    page.set_input_files("#import-input", str(foreign.save(tmp_path / "foreign.pvg")))
    page.wait_for_selector("#error:not([hidden])")
    assert "made by another model (embedding space 0123456789abcdef" in page.inner_text("#error")

    damaged = bytearray(scenario.gallery_path.read_bytes())
    damaged[-5] ^= 0x40
    (tmp_path / "damaged.pvg").write_bytes(bytes(damaged))
    page.set_input_files("#import-input", str(tmp_path / "damaged.pvg"))
    page.wait_for_function("() => /checksum mismatch/.test(document.querySelector('#error').textContent)")
    assert page.inner_text("#gallery-count") == "0 labels, 0 rows"  # nothing imported

    page.set_input_files("#import-input", str(scenario.gallery_path))
    page.wait_for_function("() => document.querySelector('#error').hidden")
    page.wait_for_function("n => document.querySelector('#gallery-count').textContent.startsWith(n + ' labels')",
                           arg=len(scenario.enrolled))


def test_the_exported_gallery_records_the_model_in_use(page, serve_app, scenario, tmp_path: Path) -> None:
    """A served gallery written before model_digest seeds the page; the page's export writes the same rows and
    records the digest of the model it runs."""
    import dataclasses

    older = dataclasses.replace(scenario.gallery, model_digest=None).save(tmp_path / "older.pvg")
    open_app(page, serve_app(scenario.model, older))
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    with page.expect_download() as download:
        page.click("#export-button")
    exported = tmp_path / "from_browser.pvg"
    download.value.save_as(exported)
    loaded = Gallery.load(exported, embedding_space_id=scenario.space_id)
    assert loaded.labels == scenario.gallery.labels and loaded.sources == scenario.gallery.sources
    assert loaded.model_digest == scenario.engine.metadata.weights_digest is not None
