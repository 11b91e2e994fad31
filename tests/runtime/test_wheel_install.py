"""A non-editable install works away from the source tree: the wheel built from this checkout,
installed into an empty target folder (no dependencies: they come from the running environment),
serves the sample app packed inside it and finds the demo's embedded assets."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WASM = "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    if not (REPO / "sample_app" / WASM).is_file():
        pytest.skip("sample_app/node_modules is not installed (npm ci): the wheel cannot pack the app")
    tmp = tmp_path_factory.mktemp("wheel")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", str(REPO), "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist")],
                   check=True, capture_output=True, cwd=tmp)
    wheel = next((tmp / "dist").glob("pocketvec-*.whl"))
    target = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, cwd=tmp)
    env = {**os.environ, "PYTHONPATH": str(target), "COLUMNS": "200"}  # the installed copy, not src/
    return target, env


def python(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_app_serve_from_the_wheel(installed, onnx_model: Path, tmp_path: Path) -> None:
    target, env = installed
    where = python(env, tmp_path, "-c", "import pocketvec.app_server as a; print(a.DEFAULT_APP_DIR)")
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()) == target / "pocketvec" / "sample_app"  # the packed app, not the checkout's
    proc = subprocess.Popen([sys.executable, "-m", "pocketvec", "app", "serve", "--model", str(onnx_model),
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.startswith("pocketvec app: http://localhost:"), line or proc.stderr.read()
        url = line.split()[2]
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == (REPO / "sample_app" / "index.html").read_bytes()
        with urllib.request.urlopen(url + WASM, timeout=30) as r:
            assert r.read(4) == b"\0asm"
        with urllib.request.urlopen(url + "src/preprocess.js", timeout=10) as r:
            assert r.read() == (REPO / "sample_app" / "src" / "preprocess.js").read_bytes()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_demo_assets_and_photos_from_the_wheel(installed, tmp_path: Path) -> None:
    target, env = installed
    code = ("from pocketvec.data.assets import demo_items_dir, backgrounds_dir\n"
            "print(demo_items_dir()); print(len(list(demo_items_dir().glob('*.png'))))")
    found = python(env, tmp_path, "-c", code)
    assert found.returncode == 0, found.stderr
    items, count = found.stdout.split()
    assert Path(items).is_relative_to(target) and int(count) == 24
    assert (target / "pocketvec" / "assets" / "base" / "model.safetensors").is_file()  # the demo's start
    photos = python(env, tmp_path, "-m", "pocketvec", "data", "photos", items, "--out", "photos", "--per-item", "1")
    assert photos.returncode == 0, photos.stderr
    assert len(list((tmp_path / "photos").glob("*/*.jpg"))) == 24
    assert python(env, tmp_path, "-m", "pocketvec", "demo", "--help").returncode == 0
