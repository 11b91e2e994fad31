"""Enrolment on look-alikes: identical regions of different items share a class, and the safety net
keeps the starting weights when fine-tuning hurts, and says so."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from pocketvec.data.items import load_items
from pocketvec.data.pseudoclasses import expand_pseudo_classes, merge_identical_classes, policy_from_name
from pocketvec.int8_grid import round_to_int8_grid
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.budget import PROBE_STEPS
from pocketvec.train.checkpoint import load_run, read_run_config
from pocketvec.train.evaluate import QUERY_CROPS, query_crop_mode, score_key
from pocketvec.train.presets import preset_config
from pocketvec.train.run import train_config
from pocketvec.train.student import build_student


def test_identical_halves_of_lookalikes_share_a_class(lookalike_items: Path) -> None:
    items = load_items(lookalike_items)
    labels = [entry.label for entry in items]
    images = [load_image(entry.path) for entry in items]
    variants = expand_pseudo_classes(labels, policy_from_name("upright"))
    merged = merge_identical_classes(variants, images)
    class_of = {(labels[v.item_index], v.region): v.class_id for v in merged}
    for flag in ("flag_chad", "flag_romania", "flag_italy"):
        # the seal sits top-left, the serial number bottom-right: the other half is the original's pixels
        assert class_of[(f"{flag}--original", "top")] == class_of[(f"{flag}--serial", "top")]
        assert class_of[(f"{flag}--original", "bottom")] == class_of[(f"{flag}--seal", "bottom")]
        assert class_of[(f"{flag}--original", "top")] != class_of[(f"{flag}--seal", "top")]
    fulls = [class_of[(label, "full")] for label in labels]
    assert len(set(fulls)) == len(labels)  # whole items differing only by a serial number stay apart
    assert sorted({v.class_id for v in merged}) == list(range(len({v.class_id for v in merged})))
    assert len({v.class_id for v in merged}) < len({v.class_id for v in variants})


def test_enroll_keeps_the_starting_weights_when_fine_tuning_hurts(lookalike_items: Path, tmp_path: Path) -> None:
    config = preset_config("enroll").with_overrides({"lr": 10.0, "warmup_fraction": 0.0, "max_steps": 3,
                                                     "steps_per_epoch": 1, "batch_classes": 6, "eval_views": 1})
    run = train_config(config, lookalike_items, tmp_path / "run")
    saved = read_run_config(run)
    history = saved["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2, 3]
    assert all(score_key(h) < score_key(history[0]) for h in history[1:])
    assert saved["kept"]["epoch"] == 0
    assert saved["kept"]["verdict"].startswith(
        "kept the starting weights: no fine-tuned weights beat them on held-out photos (decision recall "
        f"{history[0]['decision_recall']:.3f}, Recall@1 {history[0]['recall_at_1']:.3f}")
    start = build_student(config.encoder, config.init).eval()
    round_to_int8_grid(start)
    shipped = load_run(run)
    for key, value in start.state_dict().items():  # the merge of untrained DoRA may move a value one grid step
        step = value.abs().amax() / 127 if value.is_floating_point() else 0
        torch.testing.assert_close(shipped.state_dict()[key], value, atol=float(step) * 1.001, rtol=0, msg=key)
    pixels = torch.rand(4, 3, 224, 224) * 255
    with torch.no_grad():
        assert torch.nn.functional.cosine_similarity(shipped(pixels), start(pixels)).min() > 0.999


def test_a_time_limit_judges_the_weights_it_stopped_at(lookalike_items: Path, tmp_path: Path) -> None:
    config = preset_config("enroll").with_overrides({"time_limit_s": 1e-6, "steps_per_epoch": 4, "epochs": 2,
                                                     "batch_classes": 6, "eval_views": 1})
    saved = read_run_config(train_config(config, lookalike_items, tmp_path / "run"))
    assert saved["steps"] == 1
    assert [h["epoch"] for h in saved["history"]] == [0, 0.25]  # the start, then the quarter epoch it reached
    assert saved["kept"]["epoch"] in (0, 0.25)
    # the photos' crop: chosen on the start's held-out photos and used by every evaluation; chosen again on
    # the kept weights at the end (never below the crop in use), shipped in the config
    start, end = saved["query_crop"]["held_out_at_start"], saved["query_crop"]["held_out_at_end"]
    assert set(start) == set(end) == set(QUERY_CROPS)
    in_use = max(start, key=lambda crop: score_key(start[crop]))
    assert {h["crop"] for h in saved["history"]} == {in_use}
    assert score_key(saved["history"][0]) == score_key(start[in_use])
    chosen = saved["query_crop"]["chosen"]
    assert chosen == max(end, key=lambda crop: score_key(end[crop]))
    kept = next(h for h in saved["history"] if h["epoch"] == saved["kept"]["epoch"])
    assert score_key(end[in_use]) == pytest.approx(score_key(kept))  # the kept weights, as judged in the run
    written = PreprocessSpec.from_dict(saved["encoder"]["preprocess"]).query_crop_mode
    assert written == query_crop_mode(chosen)


def test_a_resumed_run_keeps_the_photos_crop_and_fitted_steps(lookalike_items: Path, tmp_path: Path) -> None:
    from pocketvec.train.loop import Trainer

    config = preset_config("enroll").with_overrides({"budget_s": 3600.0, "batch_classes": 6, "eval_views": 1,
                                                     "eval_gallery_views": 2})
    first = Trainer(config, lookalike_items, tmp_path / "run")
    first.run(stop_after=PROBE_STEPS + 2)  # past the probe: the steps are fitted, the state is resumable
    resumed = Trainer(config, lookalike_items, tmp_path / "run")
    assert resumed.step == PROBE_STEPS + 2
    assert resumed.total_steps == first.total_steps > PROBE_STEPS + 2
    assert resumed.query_crop["chosen"] == first.query_crop["chosen"] == resumed.held_out.crops[0]
