"""pocketvec.runtime must run light: numpy, Pillow and onnxruntime, never torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pocketvec.runtime


def test_runtime_imports_without_torch() -> None:
    modules = sorted(m.name for m in pkgutil.walk_packages(pocketvec.runtime.__path__, "pocketvec.runtime."))
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"torch was imported by one of {modules}"

