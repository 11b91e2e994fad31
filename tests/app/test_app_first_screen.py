"""What a person sees in the real app (Chromium): the first screen says what to do, a loading state
while the model and the wasm engine load, numbers rounded to 3 decimals, and a picture per gallery
label (the enrolled photo, kept in IndexedDB; a placeholder for rows imported from a .pvg)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image

from pocketvec.runtime.gallery import Gallery

from .conftest import choose_photo, enroll, open_app

LONG_FLOAT = re.compile(r"\d\.\d{4,}")  # what a raw float looks like (0.573121, 0.80131234)
THUMB_IMG = "#gallery-list li img.thumb"
PLACEHOLDER = "#gallery-list li .thumb.placeholder"

RECORD_LOADING_TEXTS = """window.loadingTexts = [];
new MutationObserver(() => {
  const text = document.querySelector('#loading-text')?.textContent;
  if (text && window.loadingTexts.at(-1) !== text) window.loadingTexts.push(text);
}).observe(document, { subtree: true, childList: true, characterData: true });"""


def held(page, pattern: str) -> list:
    """Hold every request for `pattern` until the test lets it go (route.continue_())."""
    routes: list = []
    page.route(pattern, lambda route: routes.append(route))
    return routes


def wait_for_request(page, routes: list, what: str) -> None:
    for _ in range(1200):  # 60 s
        if routes:
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"the page never requested {what}")


def test_first_screen_says_what_to_do_while_the_model_loads(page, serve_app, scenario, artifacts_dir: Path) -> None:
    model_requests, wasm_requests = held(page, "**/model.onnx"), held(page, "**/*.wasm")
    page.add_init_script(RECORD_LOADING_TEXTS)
    page.goto(serve_app(scenario.model) + "?sw=0")
    page.wait_for_function("() => document.querySelector('#loading-text') !== null")
    steps = page.inner_text("#intro")
    for words in ("Load a model", "pocketvec app serve --model", "Enroll this photo", "Import .pvg", "camera",
                  "Choose image"):
        assert words in steps, (words, steps)
    assert page.locator("#intro").is_visible()
    wait_for_request(page, model_requests, "the model")  # being fetched: nothing can be used yet
    assert page.locator("#loading").is_visible() and page.inner_text("#loading-text").startswith("Loading the model")
    for control in ("#file-input", "#camera-button", "#import-input", "#export-button", "#enroll-button"):
        assert page.locator(control).is_disabled(), control
    assert page.evaluate("() => document.querySelector('#step-model').classList.contains('done')") is False

    model_requests.pop().continue_()
    page.wait_for_function("() => /inference engine/.test(document.querySelector('#loading-text').textContent)")
    size = scenario.model.stat().st_size / 1e6
    shown = page.evaluate("() => window.loadingTexts")
    assert f"Loading the model… {size:.1f} of {size:.1f} MB" in shown, shown  # the download's progress
    wait_for_request(page, wasm_requests, "onnxruntime-web's wasm")  # still loading
    assert page.locator("#loading").is_visible() and page.locator("#file-input").is_disabled()
    assert f"{size:.1f} MB" not in page.inner_text("#loading-text")  # the second stage replaced the first
    page.screenshot(path=str(artifacts_dir / "app_loading.png"))

    wasm_requests.pop().continue_()
    page.evaluate("() => window.pocketvecApp.ready")
    assert page.locator("#loading").is_hidden()
    assert page.locator("#file-input").is_enabled() and page.locator("#import-input").is_enabled()
    assert page.locator("#intro").is_visible()  # an empty gallery: the steps stay, the first one ticked
    ticked = page.eval_on_selector_all("#intro li", "lis => lis.map((li) => li.classList.contains('done'))")
    assert ticked == [True, False, False]
    page.screenshot(path=str(artifacts_dir / "app_first_screen.png"))
    enroll(page, scenario.enrolled[0], "first")
    assert page.evaluate("() => document.querySelector('#step-gallery').classList.contains('done')")
    choose_photo(page, scenario.queries[0])
    assert page.locator("#intro").is_hidden()  # every step done


def test_a_failed_model_load_ends_the_loading_state(page, serve_app, scenario, tmp_path: Path) -> None:
    page.goto(serve_app(scenario.model) + "?sw=0&model=missing.onnx")
    page.wait_for_selector("#error:not([hidden])")
    assert "missing.onnx: cannot load the model (HTTP 404)" in page.inner_text("#error")
    assert page.locator("#loading").is_hidden() and page.locator("#file-input").is_disabled()


def test_numbers_are_rounded_to_three_decimals(page, serve_app, scenario) -> None:
    """The served gallery's rule has 6 decimals; scores are float32 cosines: the page shows 3."""
    assert LONG_FLOAT.search(f"{scenario.rule.threshold} {scenario.rule.margin}"), "the rule needs long floats"
    open_app(page, serve_app(scenario.model, scenario.gallery_path))
    rule_text = page.inner_text("#rule-info")
    assert f"best ≥ {scenario.rule.threshold:.3f}" in rule_text and f"≥ {scenario.rule.margin:.3f}" in rule_text
    answers = set()
    for query in scenario.queries:
        result = choose_photo(page, query)
        answers.add(result["accepted"])
        cells = page.eval_on_selector_all("#top3 tbody tr td:nth-child(3)", "tds => tds.map((td) => td.textContent)")
        assert len(cells) == len(result["top"]) == 3
        for cell, top in zip(cells, result["top"], strict=True):
            assert re.fullmatch(r"-?\d\.\d{3}", cell), cell
            assert abs(float(cell) - top["score"]) <= 5e-4 + 1e-9, (cell, top["score"])
        shown = page.inner_text("body")
        assert not LONG_FLOAT.search(shown), LONG_FLOAT.search(shown).group(0)
    assert answers == {True, False}, "the decision text of both answers was read"


def thumbnail_pixels(src: str) -> np.ndarray:
    header, data = src.split(",", 1)
    assert header == "data:image/jpeg;base64", header
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB"), dtype=np.float64)


def test_gallery_list_shows_item_pictures(page, serve_app, scenario, tmp_path: Path) -> None:
    open_app(page, serve_app(scenario.model))
    mine = scenario.enrolled[:2]  # two flags of different colours
    for path in mine:
        assert enroll(page, path, path.stem).startswith("Enrolled")

    def pictures() -> dict[str, np.ndarray]:
        rows = page.eval_on_selector_all("#gallery-list li", """lis => lis.map((li) => ({
          label: li.querySelector('span:not(.thumb)').textContent,
          src: li.querySelector('img.thumb')?.src ?? null }))""")
        return {r["label"].split(" (")[0]: thumbnail_pixels(r["src"]) for r in rows if r["src"]}

    def check(pics: dict[str, np.ndarray]) -> None:
        assert sorted(pics) == sorted(p.stem for p in mine)
        for path in mine:
            thumb = pics[path.stem]
            assert max(thumb.shape[:2]) == 64  # small, the photo's aspect kept
            item = Image.open(path).convert("RGB")
            assert abs(thumb.shape[1] / thumb.shape[0] - item.width / item.height) < 0.05
            expected = np.asarray(item.resize(thumb.shape[1::-1], Image.BOX), dtype=np.float64)
            assert np.abs(thumb - expected).mean() < 12, path.stem  # this item's picture, not another's

    check(pictures())
    page.reload()  # kept with the rows in IndexedDB
    page.evaluate("() => window.pocketvecApp.ready")
    check(pictures())
    assert page.locator(PLACEHOLDER).count() == 0

    # Python's gallery of all enrolled items: the two photos taken here keep their pictures (same
    # sha256), the rows that came only from the file show the placeholder.
    page.set_input_files("#import-input", str(scenario.gallery_path))
    n = len(scenario.enrolled)
    page.wait_for_function("n => document.querySelector('#gallery-count').textContent.startsWith(n + ' labels')", arg=n)
    check(pictures())
    assert page.locator(PLACEHOLDER).count() == n - len(mine)
    assert page.locator(PLACEHOLDER).first.get_attribute("title") == "imported from a .pvg file, which holds no image"

    with page.expect_download() as download:  # the pictures stay on the device: the .pvg is Python's format
        page.click("#export-button")
    exported = tmp_path / "exported.pvg"
    download.value.save_as(exported)
    loaded = Gallery.load(exported, embedding_space_id=scenario.space_id)
    assert loaded.to_bytes() == exported.read_bytes()
    assert loaded.labels == scenario.gallery.labels
