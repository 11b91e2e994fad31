"""The benchmark reuses an export only for the same weights: two runs of one embedding space (a recipe
changed, a run made again) export apart."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pocketvec.bench.models import BenchContext
from pocketvec.bench.run import _export_dir


def test_runs_of_one_space_with_other_weights_export_apart(tmp_path: Path) -> None:
    work = tmp_path / "tier"
    work.mkdir()
    (work / "benchmark.json").write_text(json.dumps({"key": "abc123"}))
    first, second, copy = (tmp_path / name for name in ("first", "second", "copy"))
    for run, weights in ((first, b"one"), (second, b"two")):
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"embedding_space_id": "same-space"}))
        (run / "model.safetensors").write_bytes(weights)
    shutil.copytree(first, copy)
    ctx = BenchContext(work, bench=None)  # type: ignore[arg-type]
    assert _export_dir(ctx, "enrolled", first) != _export_dir(ctx, "enrolled", second)
    assert _export_dir(ctx, "enrolled", first) == _export_dir(ctx, "enrolled", copy)  # the same weights: reused


def test_the_report_names_a_shipped_start_wherever_the_checkout_is() -> None:
    from pocketvec.bench.run import shipped_name
    from pocketvec.train.student import shipped_run_dir

    assert shipped_name(str(shipped_run_dir("base"))) == "base"
    assert shipped_name("/elsewhere/worktree/src/pocketvec/assets/small") == "small"
    assert shipped_name("/runs/my-run") == "/runs/my-run" and shipped_name("") == ""
    assert shipped_name("/x/pocketvec/assets/other") == "/x/pocketvec/assets/other"


def _tier(root: Path, name: str, key: str) -> BenchContext:
    work = root / name
    work.mkdir(parents=True)
    (work / "benchmark.json").write_text(json.dumps({"key": key}))
    return BenchContext(work, bench=None)  # type: ignore[arg-type]


def test_the_other_tiers_exports_of_the_same_weights_are_found(tmp_path: Path) -> None:
    from pocketvec.bench.run import _same_exports

    pages, flags = _tier(tmp_path, "pages", "abc123"), _tier(tmp_path, "flags", "def456")
    runs = {}
    for name, weights in (("run", b"one"), ("other", b"two")):
        runs[name] = tmp_path / "runs" / name
        runs[name].mkdir(parents=True)
        (runs[name] / "config.json").write_text(json.dumps({"embedding_space_id": "same-space"}))
        (runs[name] / "model.safetensors").write_bytes(weights)
    for run in runs.values():
        _export_dir(pages, "student", run).mkdir(parents=True)
    assert _same_exports(flags, "student", runs["run"]) == [_export_dir(pages, "student", runs["run"])]
    assert _same_exports(pages, "student", runs["run"]) == []  # its own folder is not another tier's
    assert _same_exports(flags, "teacher", runs["run"]) == []


def test_a_form_that_does_not_calibrate_on_the_gallery_is_copied_not_exported_again(tmp_path: Path) -> None:
    """The copy needs no run folder (nothing is exported); w8a8, calibrated on the gallery, is exported."""
    import pytest

    from pocketvec.bench.formats import export_form
    from pocketvec.errors import ModelFileError

    other, mine, no_run = tmp_path / "pages" / "x", tmp_path / "flags" / "x", tmp_path / "no-run"
    (other / "coreml-int8.mlpackage" / "Data").mkdir(parents=True)
    (other / "coreml-int8.mlpackage" / "Data" / "model.mlmodel").write_bytes(b"program")
    (other / "onnx-int8.onnx").write_bytes(b"int8 file")
    (other / "onnx-w8a8.onnx").write_bytes(b"w8a8 file calibrated on the pages")
    assert export_form("onnx-int8", no_run, mine, tmp_path, [other]).read_bytes() == b"int8 file"
    package = export_form("coreml-int8", no_run, mine, tmp_path, [other])
    assert package == mine / "coreml-int8.mlpackage" and (package / "Data" / "model.mlmodel").read_bytes() == b"program"
    with pytest.raises(ModelFileError, match="no such run folder"):
        export_form("onnx-w8a8", no_run, mine, tmp_path, [other])
    assert sorted(p.name for p in mine.iterdir()) == ["coreml-int8.mlpackage", "onnx-int8.onnx"]
