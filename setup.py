"""Packs the browser sample app into the wheel (pocketvec/sample_app/), so that a non-editable
`pip install .` gives a working `pocketvec app serve`. Everything else is in pyproject.toml."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
APP = ROOT / "sample_app"
ORT_DIST = Path("node_modules/onnxruntime-web/dist")
# What the app loads: its pages and modules, onnxruntime-web's wasm build (not all 136 MB of dist/) and
# its package.json (name, version, MIT licence)
APP_FILES = ["index.html", "style.css", "sw.js", "README.md", "src/*.js", "node_modules/onnxruntime-web/package.json",
             *(str(ORT_DIST / name) for name in ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs",
                                                 "ort-wasm-simd-threaded.wasm"))]


class BuildWithApp(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install serves the repository's sample_app/ directly
            return
        target = Path(self.build_lib) / "pocketvec" / "sample_app"
        for pattern in APP_FILES:
            matches = sorted(APP.glob(pattern))
            if not matches:
                raise SystemExit(f"sample_app/{pattern} is missing: run `npm ci` in sample_app before building")
            for path in matches:
                dest = target / path.relative_to(APP)
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, dest)


setup(cmdclass={"build_py": BuildWithApp})
