"""`pocketvec bench --quick` end to end on a tiny student: tables, plots, determinism, honest gaps."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pocketvec.bench.dataset import build_benchmark
from pocketvec.bench.run import QUICK, BenchOptions, run_benchmark
from pocketvec.train.checkpoint import read_run_config

DEMO_ITEMS = Path(__file__).resolve().parents[2] / "src" / "pocketvec" / "assets" / "demo_items"
pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None, reason="apt-get is not installed")


@pytest.fixture(scope="module")
def tiny_student(tmp_path_factory):
    """A tiny random-init student shipped on the int8 grid, its trained float weights kept beside it."""
    import torch

    from pocketvec.export.calibration import list_images, load_batch
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.encoder import Encoder, EncoderConfig
    from pocketvec.train.evaluate import HeldOut
    from pocketvec.train.rounding import save_on_grid

    torch.manual_seed(0)
    model = Encoder(EncoderConfig(backbone="mobilenetv3_small_050", embedding_dim=32,
                                  preprocess=PreprocessSpec(input_size=96))).eval()
    paths = list_images(DEMO_ITEMS)
    pixels = torch.from_numpy(load_batch(paths, model.config.preprocess))
    labels = [path.stem for path in paths]
    query_crop = model.config.preprocess.query_crops[0]
    held_out = HeldOut(pixels, None, 1.0, {query_crop: pixels.flip(3) * 0.8}, labels, labels)  # mirrored, darker
    return save_on_grid(tmp_path_factory.mktemp("runs") / "tiny", model, {}, held_out)


def _bench(cache, work, out, student, *extra):
    command = [sys.executable, "-m", "pocketvec", "bench", "--quick", "--cache", str(cache), "--work", str(work),
               "--out", str(out), "--student", str(student), "--models", "student",
               "--forms", "torch-fp32,onnx-fp32,onnx-int8,coreml-int8", "--coreml-items", "2", *extra]
    return subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})


def test_quick_bench_writes_tables_and_plots(cache, tiny_student, tmp_path) -> None:
    out = tmp_path / "docs" / "BENCHMARKS.md"
    done = _bench(cache, tmp_path / "work", out, tiny_student)
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((tmp_path / "work" / "results.json").read_text())
    tiers = results["benchmark"]["tiers"]
    assert {tier: (t["items"], t["queries"]) for tier, t in tiers.items()} == {
        "pages": (6, 12), "flags": (6, 12), "lookalikes": (10, 20), "labels": (10, 20)}
    torch_row = next(r for r in results["results"] if r["form"] == "torch-fp32" and r["tier"] == "lookalikes")
    assert torch_row["status"] == "ok"
    accuracy = torch_row["accuracy"]
    assert accuracy["positives"] == 20 and accuracy["negatives"] == 20 * 9
    # the decision rule: calibrated on `data photos` of the gallery (4 per item), scored on every benchmark photo
    assert accuracy["decision"]["calibration_queries"] == 40 and accuracy["decision"]["held_out_queries"] == 20
    assert torch_row["calibration_photos"] == 40 and tiers["lookalikes"]["calibration_photos"] == 40
    assert (results["benchmark"]["split"], results["benchmark"]["photo_seed"]) == ("test", 0)
    assert 0 <= accuracy["recall_at_1"] <= accuracy["recall_at_5"] <= 1
    assert torch_row["params"] > 100_000 and torch_row["flops"] > 1_000_000
    coreml = next(r for r in results["results"] if r["form"] == "coreml-int8" and r["tier"] == "lookalikes")
    assert coreml["status"] == "ok" and coreml["accuracy"]["positives"] == 2 * 2  # the slow form: 2 items' photos
    onnx_fp32 = next(r for r in results["results"] if r["form"] == "onnx-fp32")  # through the runtime engine
    assert onnx_fp32["status"] == "ok" and onnx_fp32["parity"]["min_cosine"] > 0.999
    assert onnx_fp32["file_bytes"] > 100_000
    text = out.read_text()
    assert "| lookalikes | student | zero-shot | torch-fp32 |" in text and "pocketvec bench --quick" in text
    # text verification measured beside (the pocketvec[text] extra is part of the dev install), its reading timed
    verified = onnx_fp32["text_accuracy"]
    assert 0 <= onnx_fp32["text_read_share"] <= 1 and 0 <= verified["recall_at_1"] <= 1
    assert "## Text verification" in text
    assert results["benchmark"]["text_verification"]["models"] == "ppocrv5"
    for name in ("bench_pages_pr.png", "bench_flags_sweep.png", "bench_lookalikes_pr.png",
                 "bench_queries_lookalikes.png"):
        assert (out.parent / "images" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"images/{name}" in text
    # on the int8 grid: each export against the shipped and the trained float weights, and the rounding's cost
    rounding = read_run_config(tiny_student)["int8_rounding"]
    onnx_int8 = next(r for r in results["results"] if r["form"] == "onnx-int8" and r["tier"] == "pages")
    assert set(onnx_int8["parity_float"]) == set(onnx_int8["parity"])  # the same numbers, other reference
    for label, numbers in (("shipped (int8 grid)", onnx_int8["parity"]),
                           ("trained float (unrounded)", onnx_int8["parity_float"])):
        assert (f"| pages | student | onnx-int8 | 6 items + 12 photos | {label} | {numbers['mean_cosine']:.4f} | "
                f"{numbers['min_cosine']:.4f} | {numbers['top1_agreement']:.3f} |") in text
    held = rounding["held_out"]
    torch_pages = next(r for r in results["results"] if r["form"] == "torch-fp32" and r["tier"] == "pages")
    bench_r1 = (torch_pages["unrounded_accuracy"]["recall_at_1"], torch_pages["accuracy"]["recall_at_1"])
    assert "## Cost of rounding onto the int8 grid" in text
    assert (f"| pages | student | {rounding['rounded_weights']} | {held['float']['recall_at_1']:.3f} -> "
            f"{held['rounded']['recall_at_1']:.3f} (") in text
    assert f"| {bench_r1[0]:.3f} -> {bench_r1[1]:.3f} ({bench_r1[1] - bench_r1[0]:+.3f}) |" in text
    for row in results["results"]:  # every form is either measured or says why not
        assert row["status"] == "ok" or row["status"].startswith(("not available:", "failed:"))

    # same seed, same numbers: photos made again from scratch, every model form measured again
    # (one form: the photos are what is made again; text verification was measured in the first run)
    second = run_benchmark(BenchOptions(work=tmp_path / "again", config=QUICK, models=("student",),
                                        forms=("onnx-int8",), text_models=None, student_run=tiny_student,
                                        cache=cache))
    int8 = [r.get("accuracy") for r in results["results"] if r["form"] == "onnx-int8"]
    assert [r.get("accuracy") for r in second["results"]] == int8 and len(int8) == 4


def test_query_photos_are_reproducible_from_scratch(cache, tmp_path) -> None:
    first = build_benchmark(tmp_path / "a", QUICK, root=cache)
    second = build_benchmark(tmp_path / "b", QUICK, root=cache)
    assert list(first) == ["pages", "flags", "lookalikes", "labels"]
    for tier, bench in first.items():
        again = second[tier]
        assert bench.query_labels == again.query_labels and len(bench.query_paths) == 2 * len(bench.gallery_labels)
        assert [p.read_bytes() for p in bench.query_paths] == [p.read_bytes() for p in again.query_paths]
        assert sorted(set(bench.query_labels)) == sorted(bench.gallery_labels)
    groups = {label.rsplit("--", 1)[0] for label in first["lookalikes"].gallery_labels}
    assert len(groups) == 2 and len(first["lookalikes"].gallery_labels) == 10  # one page group, one flag group
    designs = {label.rsplit("--", 1)[0] for label in first["labels"].gallery_labels}
    assert len(designs) == 2 and len(first["labels"].gallery_labels) == 10  # two label designs, five editions each


def test_missing_student_is_reported_not_faked(cache, tmp_path) -> None:
    (tmp_path / "not-a-run").mkdir()
    document = run_benchmark(BenchOptions(work=tmp_path / "w", config=QUICK, models=("student",),
                                          forms=("torch-fp32",), student_run=tmp_path / "not-a-run", cache=cache))
    rows = document["results"]
    assert [row["tier"] for row in rows] == ["pages", "flags", "lookalikes", "labels"]
    row = rows[0]
    assert row["status"].startswith("not available:") and "not a run folder" in row["status"]
    assert "accuracy" not in row


def test_lookalike_sets_of_two_sizes_live_side_by_side(cache) -> None:
    from pocketvec.bench.lookalikes import LookalikeConfig, build_lookalikes

    small = build_lookalikes(LookalikeConfig(page_groups=1, flag_groups=1), root=cache)
    files = sorted(p.name for p in small.iterdir())
    larger = build_lookalikes(LookalikeConfig(page_groups=1, flag_groups=2), root=cache)
    assert larger != small and len(list(larger.glob("*.png"))) == 15
    assert sorted(p.name for p in small.iterdir()) == files  # building another size left this one alone
    assert build_lookalikes(LookalikeConfig(page_groups=1, flag_groups=1), root=cache) == small
    assert [p.name for p in small.parent.iterdir() if p.name.startswith(".")] == []  # no build left behind


def test_small_student_zero_shot_and_enrolled_side_by_side(cache, tmp_path) -> None:
    """`--models small,enrolled-small`: the shipped small student and enroll-small started from it, in one run,
    with the small student's bars judged in the report."""
    out = tmp_path / "BENCH.md"
    command = [sys.executable, "-m", "pocketvec", "bench", "--quick", "--cache", str(cache), "--work",
               str(tmp_path / "work"), "--out", str(out), "--models", "small,enrolled-small", "--forms", "onnx-int8",
               "--enroll-arg=--set", "--enroll-arg=max_steps=2", "--enroll-arg=--set", "--enroll-arg=eval_views=0",
               "--no-text"]  # (the safety net's own evaluations: tests/train/test_train_safety_net.py)
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = json.loads((tmp_path / "work" / "results.json").read_text())["results"]
    assert {(r["model"], r["status"]) for r in rows} == {("small", "ok"), ("enrolled-small", "ok")}
    small_id = read_run_config(Path(__file__).resolve().parents[2] / "src/pocketvec/assets/small")["embedding_space_id"]
    runs = sorted((tmp_path / "work").glob("*/models/small-enrolled-*"))
    assert len(runs) == 4 and all(small_id in run.name for run in runs)  # one per tier, each from the small student
    assert all(read_run_config(run)["encoder"]["backbone"] == "lcnet_050" for run in runs)
    text = out.read_text()
    assert "| lookalikes | enrolled-small | onnx-int8 |" in text
    assert "| lookalikes: small int8 file <= 1 MB |" in text
