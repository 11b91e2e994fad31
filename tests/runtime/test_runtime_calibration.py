"""Calibration: the decision-level sweep counts what the matcher would answer, and the margin earns
recall at high precision on look-alikes where a threshold alone cannot."""

from __future__ import annotations

import numpy as np
import pytest

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.runtime.calibration import MARGINS, THRESHOLDS, calibrate, decision_grid
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.matcher import UNKNOWN, Matcher
from pocketvec.runtime.metadata import AcceptRule


def lookalike_scene(seed: int = 0):
    """Similarities of 400 photos against 40 items in 20 look-alike pairs (plus 40 distractors).

    A photo scores ~0.85 with its item; its look-alike twin scores close to that, and in 15 % of
    photos the twin wins by a hair (a confident wrong answer that only a margin can refuse)."""
    rng = np.random.default_rng(seed)
    items = [f"item{i}" for i in range(40)]
    sims, truth = [], []
    for q in range(400):
        true = q % 40
        row = rng.uniform(0.0, 0.45, 40)
        row[true] = rng.normal(0.85, 0.05)
        twin = true ^ 1
        row[twin] = row[true] - abs(rng.normal(0.08, 0.05))
        if rng.random() < 0.15:
            row[twin] = row[true] + rng.uniform(0.0, 0.03)
        sims.append(row)
        truth.append(items[true])
    for _ in range(40):  # distractors: not an enrolled item, must be rejected
        sims.append(rng.uniform(0.0, 0.7, 40))
        truth.append("not-an-item")
    return np.array(sims), truth, items


def test_grid_counts_what_the_matcher_answers() -> None:
    sims, truth, items = lookalike_scene()
    sims = np.round(sims, 2).astype(np.float32)  # many scores exactly on the grid's thresholds
    accepted, correct = decision_grid(sims, truth, items)
    # Rebuild the same decisions with the real matcher on a gallery whose rows give these scores.
    basis = np.eye(40, dtype=np.float32)
    gallery = Gallery("s", 40)
    gallery.add(basis, items, items)
    rng = np.random.default_rng(1)
    for ti, mi in zip(rng.integers(100, 200, 8), rng.integers(0, len(MARGINS), 8), strict=True):
        matcher = Matcher(gallery, AcceptRule(float(THRESHOLDS[ti]), float(MARGINS[mi])))
        # queries = the score rows themselves (not unit vectors, but the matcher only takes dot products)
        answers = [m.answer for m in matcher.match(sims, top_k=2)]
        got_accepted = sum(a != UNKNOWN for a in answers)
        got_correct = sum(a == t for a, t in zip(answers, truth, strict=True))
        assert (accepted[ti, mi], correct[ti, mi]) == (got_accepted, got_correct)


def test_margin_buys_recall_at_target_precision() -> None:
    sims, truth, items = lookalike_scene()
    result = calibrate(sims, truth, items, target_precision=0.99)
    assert result.target_reached and result.rule.method == "decision"
    assert result.chosen.precision >= 0.99 and result.rule.margin > 0
    # the best threshold-only rule at the same target
    threshold_only = next(r for r in result.decision_rows if r.margin == 0.0)
    assert threshold_only.precision < 0.99 or threshold_only.recall < result.chosen.recall
    assert result.chosen.recall > 0.5
    assert result.queries == 440 and result.distractors == 40
    # the rule travels as an AcceptRule with the numbers it was calibrated to
    assert (result.rule.threshold, result.rule.margin) == (result.chosen.threshold, result.chosen.margin)
    assert result.rule.precision == pytest.approx(result.chosen.precision, abs=1e-6)


def test_pair_level_sweep_and_best_f1_objective() -> None:
    sims, truth, items = lookalike_scene()
    result = calibrate(sims, truth, items, objective="f1")
    assert result.rule.method == "decision_f1"
    assert result.chosen.f1 >= max(r.f1 for r in result.decision_rows) - 1e-12
    assert len(result.pair_rows) == 201 and result.pair_best.f1 == max(r.f1 for r in result.pair_rows)
    assert result.pair_rows[0].positives == 400 and result.pair_rows[0].negatives == 440 * 40 - 400


def test_unreachable_target_is_reported() -> None:
    rng = np.random.default_rng(0)
    sims = rng.uniform(0, 1, (50, 5))  # pure noise: no rule reaches 99 % precision
    truth = [f"i{j % 5}" for j in range(50)]
    result = calibrate(sims, truth, [f"i{j}" for j in range(5)], target_precision=0.99)
    assert not result.target_reached
    assert result.chosen.accepted > 0  # the most precise rule that still answers, not "never answer"
    assert result.chosen.precision == max(r.precision for r in result.decision_rows if r.accepted > 0)


def test_bad_inputs() -> None:
    sims, truth, items = lookalike_scene()
    with pytest.raises(ConfigError, match=r"Got 1\.5"):
        calibrate(sims, truth, items, target_precision=1.5)
    with pytest.raises(GalleryError, match="no calibration query"):
        calibrate(sims, ["x"] * len(truth), items)
