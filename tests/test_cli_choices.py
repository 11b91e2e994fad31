"""The CLI's fixed choices: checked while parsing (before torch loads), case-insensitive, with
"did you mean"; the CLI's copies of the lists equal the libraries' own."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import typer

from pocketvec.cli import choices

PARSE_ONLY = """import sys
from pocketvec.cli import main
sys.argv = ["pocketvec", *sys.argv[1:]]
try:
    main()
except SystemExit as e:
    print("exit", e.code, file=sys.stderr)
print("torch imported:", "torch" in sys.modules, file=sys.stderr)
"""


def run_parse(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", PARSE_ONLY, *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200"})


@pytest.mark.parametrize(("args", "hint"), [
    (["train", "--preset", "Enrol", "--data", "x", "--out", "y"], "Did you mean 'enroll'?"),
    (["train", "--preset", "smoke", "--set", "policy=uprigt", "--data", "x", "--out", "y"], "Did you mean 'upright'?"),
    (["eval", "m.onnx", "--gallery", "g", "--queries", "q", "--engine", "onnxrutime"], "Did you mean 'onnxruntime'?"),
    (["export", "onnx", "run", "--out", "m.onnx", "--quantize", "int4"], "none, fp16, int8, w8a8"),
    (["gallery", "build", "m.onnx", "--images", "i", "--out", "g.pvg", "--dtype", "fp8"], "float32, float16, int8"),
])
def test_bad_choices_are_refused_before_torch_loads(args: list[str], hint: str) -> None:
    result = run_parse(*args)
    err = " ".join(result.stderr.split())  # rich's error box wraps lines
    assert "exit 2" in err and hint in err
    assert "torch imported: False" in err


def test_case_is_ignored_and_canonicalised() -> None:
    assert choices.normalize("engine", "ONNXRuntime", choices.ENGINES) == "onnxruntime"
    assert choices.normalize("preset", "Base-GPU", choices.PRESETS) == "base-gpu"
    with pytest.raises(typer.BadParameter, match="not one of"):
        choices.normalize("engine", "tensorrt", choices.ENGINES)
    assert choices.completer(choices.QUANTIZE)("i") == ["int8"]


def test_the_lists_equal_the_libraries() -> None:
    from pocketvec.data.pseudoclasses import PRESETS as POLICIES
    from pocketvec.export.source import QUANTIZE_CHOICES
    from pocketvec.runtime.engines import ENGINES
    from pocketvec.runtime.gallery.file import DTYPES
    from pocketvec.train.presets import PRESETS

    assert set(choices.ENGINES) == set(ENGINES)
    assert all(set(choices.QUANTIZE) == set(q) for q in QUANTIZE_CHOICES.values())
    assert set(choices.PRESETS) == set(PRESETS)
    assert set(choices.POLICIES) == set(POLICIES)
    assert set(choices.GALLERY_DTYPES) == set(DTYPES)
