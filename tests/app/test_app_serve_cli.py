"""`pocketvec app serve` through the real entry point: prints the URL, serves the app's files,
the model and the gallery, nothing else; refuses bad input with one clear line."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pocketvec.app_server import make_server
from pocketvec.errors import PocketvecError
from pocketvec.runtime.gallery import Gallery

from .conftest import REPO

ENV = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pocketvec", "app", "serve", *args]


def get(url: str) -> tuple[int, bytes, dict]:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, b"", {}


def test_serve_prints_url_and_serves_app_model_gallery(scenario) -> None:
    proc = subprocess.Popen(cli("--model", str(scenario.model), "--gallery", str(scenario.gallery_path), "--port", "0"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    try:
        line = proc.stdout.readline()
        assert line.startswith("pocketvec app: http://localhost:"), line or proc.stderr.read()
        url = line.split()[2]
        status, body, headers = get(url)
        assert status == 200 and b"<title>pocketvec" in body
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
        assert get(url + "model.onnx")[1] == scenario.model.read_bytes()
        assert get(url + "gallery.pvg")[1] == scenario.gallery_path.read_bytes()
        status, body, headers = get(url + "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm")
        assert status == 200 and body[:4] == b"\0asm" and headers["Content-Type"] == "application/wasm"
        for outside in ("pyproject.toml", "src/../../pyproject.toml", "node_modules/long/index.js",
                        "package.json", "%2e%2e/pyproject.toml", "src/%00.js"):
            assert get(url + outside)[0] == 404, outside
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli(*args), capture_output=True, text=True, env=ENV, timeout=60)


def test_serve_refuses_a_gallery_of_another_model(scenario, tmp_path: Path) -> None:
    foreign = Gallery("0123456789abcdef", scenario.gallery.dim)
    foreign.add(scenario.gallery.embeddings()[:1], ["x"], ["y"])
    result = run_cli("--model", str(scenario.model), "--gallery", str(foreign.save(tmp_path / "f.pvg")), "--port", "0")
    assert result.returncode == 2 and "another model" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_serve_explains_a_missing_model(tmp_path: Path) -> None:
    result = run_cli("--model", str(tmp_path / "nope.onnx"), "--port", "0")
    assert result.returncode == 2 and "nope.onnx: no such model file" in result.stderr, result.stderr


@pytest.mark.parametrize("problem", ["not onnx", "no npm packages", "port taken"])
def test_make_server_explains_bad_input(scenario, tmp_path: Path, problem: str) -> None:
    kwargs: dict = {"model": scenario.model, "port": 0}
    if problem == "not onnx":
        (tmp_path / "model.mlpackage").mkdir()
        kwargs["model"], expected = tmp_path / "model.mlpackage", "runs ONNX models"
    elif problem == "no npm packages":
        (tmp_path / "index.html").write_text((REPO / "sample_app" / "index.html").read_text())
        kwargs["app_dir"], expected = tmp_path, "onnxruntime-web is not installed"
    else:
        taken = make_server(scenario.model, port=0)
        kwargs["port"], expected = taken.server_address[1], "pick another --port"
    try:
        with pytest.raises(PocketvecError, match=expected):
            make_server(**kwargs)
    finally:
        if problem == "port taken":
            taken.server_close()
