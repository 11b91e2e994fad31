"""Fixtures for the sample app's browser tests: a small real ONNX model, real images, the app
served by `pocketvec.app_server`, and Debian's chromium driven headless by Playwright."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from pocketvec.data.assets import demo_items_dir

REPO = Path(__file__).resolve().parents[2]
DEMO_ITEMS = demo_items_dir()
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"]
ENROLLED = ["flag_chad", "flag_romania", "flag_italy", "flag_ireland", "flag_mali", "flag_guinea",
            "doc_memman_p026", "doc_memman_p027", "doc_microtype_p010", "doc_microtype_p018"]
NOT_ENROLLED = ["flag_poland", "flag_monaco", "doc_memman_p050", "doc_microtype_p027"]


def demo_item(name: str) -> Path:
    return DEMO_ITEMS / f"{name}.png"


@pytest.fixture(scope="session")
def browser_ready() -> None:
    """The project's setup (scripts/setup.sh) installs chromium and the npm packages."""
    if not CHROMIUM.is_file():
        pytest.skip("SKIPPED LOUDLY: /usr/bin/chromium is missing; `bash scripts/setup.sh` installs Debian's "
                    "chromium (apt-get). Without it the sample app's browser tests cannot run.")
    if not (REPO / "sample_app" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.fail("sample_app/node_modules is missing: run `bash scripts/setup.sh` (npm ci in sample_app)")
    if not DEMO_ITEMS.is_dir():
        pytest.fail(f"{DEMO_ITEMS} is missing: the embedded demo items are the test images")


@pytest.fixture(scope="session")
def app_workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("app")


@pytest.fixture(scope="session")
def run_dir(app_workdir: Path, browser_ready: None) -> Path:
    """A small real encoder (lcnet_050, 128 px, random init with a fixed seed) as a run folder. Items are
    letterboxed and photos embedded with two crops, fused (a query crop enrolment may choose), so the browser
    must preprocess and fuse each as the Python runtime does."""
    import torch

    from pocketvec.runtime.images import load_image
    from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch
    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import EncoderConfig, build_encoder

    torch.manual_seed(0)
    spec = PreprocessSpec(input_size=128, crop_mode="scale_fit", query_crop_mode=("scale_fill", "center_crop"))
    model = build_encoder(EncoderConfig(backbone="lcnet_050", preprocess=spec))
    # Untrained weights map every image to one point; batch-norm statistics measured on the real
    # items (a forward pass in train mode) make the random features tell images apart.
    images = [preprocess(load_image(p), model.config.preprocess) for p in sorted(DEMO_ITEMS.glob("*.png"))]
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # a plain average over the pass
    model.train()
    with torch.no_grad():
        model(torch.from_numpy(to_batch(images)))
    return save_run(app_workdir / "run", model.eval(), {"name": "app-test-lcnet050"})


@pytest.fixture(scope="session")
def fp32_model(run_dir: Path, app_workdir: Path) -> Path:
    """The run exported by `pocketvec.export` to fp32 ONNX with its metadata."""
    from pocketvec.export.onnx_export import export_onnx

    return export_onnx(run_dir, app_workdir / "model.onnx")


@pytest.fixture(scope="session")
def small_model(app_workdir: Path, browser_ready: None, small_with_codebook: Path) -> Path:
    """The shipped small student (src/pocketvec/assets/small, trained), with a local codebook, exported to fp32
    ONNX: a real model, whose maps locate an item in a photo and whose int8 galleries are compact."""
    from pocketvec.export.onnx_export import export_onnx

    return export_onnx(small_with_codebook, app_workdir / "small.onnx")


@pytest.fixture(scope="session")
def chromium(browser_ready: None) -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def from_b64(text: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype=np.uint8).reshape(shape)


def copy_items(names: list[str], folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(demo_item(n), folder / f"{n}.png")) for n in names]


@pytest.fixture(scope="session")
def serve_app(fp32_model: Path, browser_ready: None):
    """Start `pocketvec.app_server` on a free port: serve_app(model, gallery) -> base URL."""
    from pocketvec.app_server import make_server, serve_in_thread, server_url

    servers = {}

    def start(model: Path = fp32_model, gallery: Path | None = None) -> str:
        server = make_server(model, gallery, port=0)
        serve_in_thread(server)
        servers[server_url(server)] = server
        return server_url(server)

    def stop(url: str) -> None:
        server = servers.pop(url)
        server.shutdown()
        server.server_close()

    start.stop = stop
    yield start
    for url in list(servers):
        stop(url)


@pytest.fixture()
def page(chromium) -> Iterator[object]:
    """A fresh browser context per test: empty IndexedDB, no service worker cache."""
    context = chromium.new_context(accept_downloads=True, viewport={"width": 480, "height": 1000})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    yield pg
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def photo_of(source: Path, out: Path, angle: float) -> Path:
    """A mild 'phone photo' of a real item: rotated, cropped, darker (Pillow, fixed parameters)."""
    from PIL import Image, ImageEnhance

    image = Image.open(source).convert("RGB")
    w, h = image.size
    image = image.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=(236, 236, 230))
    image = image.crop((w // 20, h // 20, image.width - w // 25, image.height - h // 25))
    ImageEnhance.Brightness(image).enhance(0.95).save(out)
    return out


def gap_midpoint(values: np.ndarray, low: float, high: float) -> float:
    """The middle of the widest gap between sorted values inside (low, high): a rule no tiny
    numeric difference can flip."""
    v = np.sort(values[(values > low) & (values < high)])
    assert len(v) >= 2, f"too few values in ({low}, {high}) to place a rule: {values}"
    i = int(np.argmax(np.diff(v)))
    assert v[i + 1] - v[i] > 2e-3, f"no clear gap among {v}"
    return float((v[i] + v[i + 1]) / 2)


def python_matches(gallery, rule, queries, rerank=None, top_k: int = 3):
    """pocketvec.runtime's answers for `queries` (an EmbedResult: embeddings and, with `rerank`, local maps)."""
    from pocketvec.runtime.matcher import Matcher

    return Matcher(gallery, rule, local_rerank=rerank).match(queries.embeddings, top_k, queries.locals)


def rule_in_gaps(gallery, queries, rerank=None):
    """An accept rule whose threshold and margin sit in clear gaps of these queries' scores, so that
    it gives both answers and no tiny numeric difference can flip one."""
    from pocketvec.runtime.metadata import AcceptRule

    probe = python_matches(gallery, AcceptRule(threshold=0.0), queries, rerank)
    best = np.array([m.top[0][1] for m in probe])
    threshold = gap_midpoint(best, float(np.quantile(best, 0.2)), float(np.quantile(best, 0.9)))
    margins = np.array([m.margin for m in probe])[best >= threshold]
    margin = gap_midpoint(np.append(margins, 0.0), -1.0, float(margins.max()) + 1e-9)
    return AcceptRule(threshold=round(threshold, 6), margin=round(max(margin, 0.0), 6), method="test")


@pytest.fixture(scope="session")
def scenario(fp32_model: Path, app_workdir: Path):
    """Enrolled real items, query photos (enrolled and not), a Python gallery and an accept rule
    placed in clear gaps of the Python scores, written into the model's metadata and the gallery."""
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.model_files import write_accept_rule

    enrolled = copy_items(ENROLLED, app_workdir / "enroll")
    (app_workdir / "queries").mkdir()
    queries = [photo_of(p, app_workdir / "queries" / f"{p.stem}_photo.png", angle=1.0 + 0.25 * i)
               for i, p in enumerate(enrolled)]
    queries += copy_items(NOT_ENROLLED, app_workdir / "queries")
    engine = open_engine(fp32_model)
    space_id, rerank = engine.metadata.embedding_space_id, engine.metadata.local_rerank
    assert rerank is not None  # the default export: the app re-ranks as the Python matcher does
    gallery = python_gallery(engine, enrolled)
    first = engine.embed_all(queries, query=True)
    found = zoomed(engine, gallery, first, queries)
    rule = rule_in_gaps(gallery, found, rerank)
    model = write_accept_rule(shutil.copy(fp32_model, app_workdir / "model_with_rule.onnx"), rule, space_id)
    gallery.accept_rule = rule
    gallery_path = gallery.save(app_workdir / "gallery.pvg")
    return SimpleNamespace(model=model, engine=open_engine(model), space_id=space_id, enrolled=enrolled,
                           queries=queries, first=first, found=found, query_embeddings=found.embeddings,
                           gallery=gallery, gallery_path=gallery_path, rule=rule, rerank=rerank,
                           expected=python_matches(gallery, rule, found, rerank))


def zoomed(engine, gallery, first, photos):
    """The photos' first pass (`first`, embedded with query=True) with each photo whose item region is found
    embedded again from it, as pocketvec's Recognizer answers by default (pocketvec.runtime.zoomed_photos)."""
    from pocketvec.runtime.item_zoom import ItemZoom
    from pocketvec.runtime.zoomed_photos import zoom_to_items

    return zoom_to_items(engine, gallery, first, list(photos), ItemZoom()).found


def python_gallery(engine, enrolled: list[Path]):
    """The items enrolled by pocketvec.runtime with `engine`'s model (local maps included when it re-ranks)."""
    from pocketvec.runtime.gallery import Gallery
    from pocketvec.runtime.images import content_hash

    gallery = Gallery.for_model(engine.metadata)
    found = engine.embed_all(enrolled)
    gallery.add(found.embeddings, [p.stem for p in enrolled], [content_hash(p) for p in enrolled], found.locals)
    return gallery


# Driving the page as a user does (the app exposes its state as window.pocketvecApp).
MAX_COSINE_DISTANCE = 1e-4


def open_app(page, url: str) -> None:
    page.goto(url + "?sw=0")
    page.evaluate("() => window.pocketvecApp.ready")


def choose_photo(page, path: Path) -> dict:
    """Pick a file in the page's file input, as a user does; returns the app's match result."""
    count = page.evaluate("() => window.pocketvecApp.state.photos")
    page.set_input_files("#file-input", str(path))
    page.wait_for_function("n => window.pocketvecApp.state.photos > n || !document.querySelector('#error').hidden",
                           arg=count)
    assert page.locator("#error").is_hidden(), page.locator("#error").inner_text()
    return page.evaluate("""() => { const r = window.pocketvecApp.state.lastResult;
      return { name: r.name, embedding: Array.from(r.embedding), local: r.local && Array.from(r.local), top: r.top,
               accepted: r.accepted, label: r.label, inferenceMs: r.inferenceMs, text: r.text ?? null,
               region: r.zoom?.region ?? null }; }""")


def enroll(page, path: Path, label: str) -> str:
    choose_photo(page, path)
    page.fill("#label-input", label)
    page.click("#enroll-button")
    page.wait_for_function("() => !/^Photo:/.test(document.querySelector('#enroll-status').textContent)")
    return page.inner_text("#enroll-status")


def cosine_distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(1.0 - np.dot(a, b) / (np.linalg.norm(a) * np.linalg.norm(b)))


def page_gallery(page, like):
    """The gallery the page holds right now, as a pocketvec.runtime Gallery (for exact arithmetic)."""
    from pocketvec.runtime.gallery import Gallery

    rows = page.evaluate("""() => window.pocketvecApp.state.gallery.rows.map(
      (r) => ({ label: r.label, source: r.source, embedding: Array.from(r.embedding),
                local: r.local && Array.from(r.local) }))""")
    gallery = Gallery(like.embedding_space_id, like.dim, local_shape=like.local_shape)
    local = np.array([r["local"] for r in rows], dtype=np.float32).reshape(len(rows), *like.local_shape) \
        if like.local_shape else None
    gallery.add(np.array([r["embedding"] for r in rows], dtype=np.float32), [r["label"] for r in rows],
                [r["source"] for r in rows], local)
    return gallery


def check_against_python(results: list[dict], queries, gallery, rule, rerank, held=None,
                         max_distance: float = MAX_COSINE_DISTANCE, max_local_diff: float = 1e-3) -> None:
    """The page's embeddings (and local maps) equal pocketvec.runtime's (cosine distance); its top-3 and
    decisions equal the Python matcher's; its scores are the Python matcher's on the page's own
    embeddings and gallery (`held`, default: `gallery` itself)."""
    from pocketvec.runtime.engines import EmbedResult
    from pocketvec.runtime.matcher import UNKNOWN

    expected = python_matches(gallery, rule, queries, rerank)
    page_local = np.array([r["local"] for r in results], dtype=np.float32).reshape(queries.locals.shape) \
        if rerank else None  # a photo's map: every crop's locations (runtime.photo_crops)
    page_input = EmbedResult(np.array([r["embedding"] for r in results], dtype=np.float32), locals=page_local)
    same_input = python_matches(held or gallery, rule, page_input, rerank)
    for i, (result, match, mirror) in enumerate(zip(results, expected, same_input, strict=True)):
        distance = cosine_distance(np.array(result["embedding"]), queries.embeddings[i])
        assert distance <= max_distance, (result["name"], distance)
        if rerank:
            assert np.abs(page_local[i] - queries.locals[i]).max() <= max_local_diff, result["name"]
        assert [t["label"] for t in result["top"]] == [label for label, _ in match.top], result["name"]
        np.testing.assert_allclose([t["score"] for t in result["top"]], [s for _, s in mirror.top], atol=1e-6)
        assert result["accepted"] == match.accepted, result["name"]
        assert (result["label"] or UNKNOWN) == match.answer, result["name"]
