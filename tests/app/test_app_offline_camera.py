"""The app keeps working offline once loaded (service worker), and the camera path runs end to end
(Chromium's fake camera device stands in for a phone's rear camera)."""

from __future__ import annotations

from .conftest import choose_photo, open_app


def test_app_works_offline_once_loaded(page, serve_app, scenario) -> None:
    url = serve_app(scenario.model, scenario.gallery_path)
    page.goto(url)  # service worker on (the default)
    page.evaluate("() => window.pocketvecApp.ready")
    page.wait_for_function("() => navigator.serviceWorker.controller !== null")
    page.reload()  # this visit goes through the worker, which keeps a copy of every file
    page.evaluate("() => window.pocketvecApp.ready")
    online = choose_photo(page, scenario.queries[0])
    serve_app.stop(url)  # the server is gone: nothing but the device is left
    page.reload()
    page.evaluate("() => window.pocketvecApp.ready")
    offline = choose_photo(page, scenario.queries[0])
    assert offline["top"] == online["top"] and offline["embedding"] == online["embedding"]
    assert page.locator("#error").is_hidden()


def test_camera_capture_matches_a_frame(page, serve_app, scenario) -> None:
    open_app(page, serve_app(scenario.model, scenario.gallery_path))
    page.click("#camera-button")
    page.wait_for_selector("#capture-button:not([hidden])")
    page.wait_for_function("() => document.querySelector('#camera').videoWidth > 0")
    assert page.evaluate("() => document.querySelector('#camera').srcObject.getVideoTracks().length") == 1
    page.click("#capture-button")
    page.wait_for_function("() => window.pocketvecApp.state.photos === 1")
    result = page.evaluate("() => window.pocketvecApp.state.lastResult")
    assert result["name"].startswith("camera") and len(result["top"]) == 3
    assert page.inner_text("#timing").startswith("Inference ")
    page.click("#camera-button")  # stop: the stream is released
    assert page.evaluate("() => document.querySelector('#camera').srcObject") is None
