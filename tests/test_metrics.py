from __future__ import annotations

import numpy as np

from pocketvec.runtime.metrics import best_f1, label_scores, pair_sweep, recall_at_k, tpr_at_fpr


def test_label_scores_take_the_best_row_per_label() -> None:
    sim = np.array([[0.1, 0.9, 0.3]])
    labels, scores = label_scores(sim, ["a", "b", "a"])
    assert labels == ["a", "b"]
    assert np.allclose(scores, [[0.3, 0.9]])


def test_recall_and_sweep_on_a_known_case() -> None:
    sim = np.array([[0.9, 0.2, 0.1], [0.6, 0.5, 0.0], [0.1, 0.3, 0.4]])
    q, g = ["a", "b", "c"], ["a", "b", "c"]
    assert recall_at_k(sim, q, g, 1) == 2 / 3
    assert recall_at_k(sim, q, g, 2) == 1.0
    rows = pair_sweep(sim, q, g)
    at_045 = next(r for r in rows if abs(r.threshold - 0.45) < 1e-9)
    assert (at_045.positives, at_045.negatives, at_045.true_accepts, at_045.false_accepts) == (3, 6, 2, 1)
    best = best_f1(rows)
    assert best.f1 >= at_045.f1


def test_tpr_at_fpr() -> None:
    rng = np.random.default_rng(0)
    sim = rng.uniform(-0.2, 0.4, size=(50, 50))
    np.fill_diagonal(sim, 0.9)
    labels = [str(i) for i in range(50)]
    assert tpr_at_fpr(sim, labels, labels, 1e-3) == 1.0
    sim[0, 0] = 0.0
    assert tpr_at_fpr(sim, labels, labels, 1e-3) == 49 / 50
