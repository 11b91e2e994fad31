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
