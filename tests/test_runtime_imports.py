"""pocketvec.runtime must run light: numpy, Pillow and onnxruntime, never torch."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pocketvec.runtime


def test_runtime_imports_without_torch() -> None:
    modules = [f"pocketvec.runtime.{m.name}" for m in pkgutil.iter_modules(pocketvec.runtime.__path__)]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", f"torch was imported by one of {modules}"


def test_gallery_views_photograph_without_torch_where_torch_is_installed() -> None:
    """The photo simulator imports albumentations, whose __init__ imports its torch bridge whenever torch
    is installed; the runtime imports it without (pocketvec.runtime.phone_sim.photo)."""
    modules = sorted(m.name for m in pkgutil.walk_packages(pocketvec.runtime.__path__, "pocketvec.runtime."))
    code = ("import sys\nimport numpy as np\n" + "".join(f"import {m}\n" for m in modules)
            + "from pocketvec.runtime.gallery_views import GalleryViews, view_photos\n"
            + "view_photos(np.full((64, 48, 3), 200, np.uint8), 'ab' * 8, GalleryViews(count=2), 64)\n"
            + "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False", "torch was imported by the runtime or its photo simulator"
