"""Fixtures for the sample app's browser tests: a small real ONNX model, real images, the app
served by `pocketvec.app_server`, and Debian's chromium driven headless by Playwright."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_ITEMS = REPO / "src" / "pocketvec" / "assets" / "demo_items"
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
def fp32_model(app_workdir: Path) -> Path:
    """A small real encoder (random init, fixed seed) exported to ONNX with pocketvec metadata."""
    import torch

    from pocketvec.export.onnx_export import export_onnx_fp32
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.encoder import EncoderConfig, build_encoder

    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", preprocess=PreprocessSpec(input_size=128)))
    return export_onnx_fp32(model, app_workdir / "model.onnx")


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

    servers = []

    def start(model: Path = fp32_model, gallery: Path | None = None) -> str:
        server = make_server(model, gallery, port=0)
        serve_in_thread(server)
        servers.append(server)
        return server_url(server)

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


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
