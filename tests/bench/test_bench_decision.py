"""Decision first: the accept rule calibrated on `data photos` of the gallery, scored on every benchmark photo,
and the report's tables leading with it."""

from __future__ import annotations

import numpy as np

from pocketvec.bench.measure import accuracy, accuracy_of, decision_operating_point
from pocketvec.bench.report import DECISION, accuracy_table, rerank_table, summary_table, write_markdown
from pocketvec.runtime.calibration import calibrate


def _scores(labels: list[str], gallery: list[str], rng: np.random.Generator, noise: float) -> np.ndarray:
    """Similarities of photos to gallery rows: about 0.8 for the right item, 0.3 for the others."""
    truth = (np.asarray(labels)[:, None] == np.asarray(gallery)[None, :]).astype(float)
    return 0.3 + 0.5 * truth + rng.normal(0, noise, truth.shape)


def test_rule_is_calibrated_on_the_calibration_photos_and_scored_on_every_query() -> None:
    rng = np.random.default_rng(0)
    gallery = [f"item{i}" for i in range(12)]
    queries = [label for label in gallery for _ in range(5)]
    calibration = [label for label in gallery for _ in range(4)]
    similarity, calibration_similarity = _scores(queries, gallery, rng, 0.08), _scores(calibration, gallery, rng, 0.08)
    d = decision_operating_point(similarity, queries, gallery, (calibration_similarity, calibration))
    assert d is not None
    assert d["calibration_queries"] == 48 and d["held_out_queries"] == 60  # every benchmark photo is scored
    assert d["recall"] == d["correct"] / 60 and 0 < d["recall"] <= 1
    assert d["precision"] == (d["correct"] / d["accepted"] if d["accepted"] else 1.0)
    chosen = calibrate(calibration_similarity, calibration, gallery, 0.99).chosen  # the calibration photos' rule
    assert (d["threshold"], d["margin"]) == (chosen.threshold, chosen.margin)
    assert decision_operating_point(similarity, queries, gallery, None) is None


def test_a_mask_over_the_queries_still_works_as_before() -> None:
    """pocketvec.bench.tiers and scripts pass a mask: calibrated on the masked photos, scored on the rest."""
    rng = np.random.default_rng(1)
    gallery = [f"item{i}" for i in range(8)]
    queries = [label for label in gallery for _ in range(5)]
    similarity = _scores(queries, gallery, rng, 0.1)
    mask = np.array([i % 5 < 2 for i in range(len(queries))])
    labels = np.asarray(queries)
    by_mask = decision_operating_point(similarity, queries, gallery, mask)
    by_photos = decision_operating_point(similarity[~mask], list(labels[~mask]), gallery,
                                         (similarity[mask], list(labels[mask])))
    assert by_mask == by_photos and by_mask["held_out_queries"] == 24 and by_mask["calibration_queries"] == 16
    assert decision_operating_point(similarity, queries, gallery, np.zeros(len(queries), bool)) is None


def test_accuracy_scores_calibration_embeddings_against_the_same_rows() -> None:
    rng = np.random.default_rng(2)
    rows = rng.normal(size=(6, 16))
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    gallery = [f"g{i}" for i in range(6)]
    photos = rows.repeat(3, axis=0) + rng.normal(0, 0.3, (18, 16))
    calibration = rows.repeat(2, axis=0) + rng.normal(0, 0.3, (12, 16))
    q_labels, c_labels = [g for g in gallery for _ in range(3)], [g for g in gallery for _ in range(2)]
    result = accuracy(photos, rows, q_labels, gallery, (calibration, c_labels))[0]
    same = accuracy_of(photos @ rows.T, q_labels, gallery, (calibration @ rows.T, c_labels))[0]
    assert result == same and result.decision["held_out_queries"] == 18


def _record(tier: str, model: str, form: str, protocol: str, recall: float, precision: float) -> dict:
    decision = {"threshold": 0.61, "margin": 0.04, "recall": recall, "precision": precision, "accepted": 10,
                "correct": 9, "calibration_queries": 40, "held_out_queries": 50, "target_reached_on_calibration": True}
    accuracy = {"recall_at_1": 0.9, "recall_at_5": 0.98, "best_threshold": 0.5, "precision": 0.8, "recall": 0.7,
                "f1": 0.75, "f05": 0.78, "positives": 50, "negatives": 450, "tpr_at_fpr_1e3": 0.6,
                "tpr_at_fpr_1e4": 0.5, "decision": decision}
    return {"tier": tier, "model": model, "title": model, "protocol": protocol, "form": form, "status": "ok",
            "backbone": "lcnet_050", "input_size": 224, "crop_mode": "center", "embedding_dim": 128, "init": "",
            "params": 1e6, "flops": 1e8, "items": 10, "queries": 50, "accuracy": accuracy,
            "reranked_accuracy": {**accuracy, "recall_at_1": 0.95, "decision": {**decision, "recall": 0.9}},
            "sweep": [[t / 100, 0.5, 0.5, 0.5] for t in range(-20, 100)]}


def test_tables_lead_with_the_decision() -> None:
    results = [_record("lookalikes", "student", "onnx-int8", "zero-shot", 0.812, 0.993)]
    summary, table, rerank = summary_table(results), accuracy_table(results), rerank_table(results)
    assert summary[0].startswith(f"| tier | model | form | {DECISION} | R@1 |")
    assert summary[2] == "| lookalikes | student | onnx-int8 | 0.812 (0.993) | 0.900 | 0.750 | 0.600 |  |"
    assert table[0].startswith(f"| tier | model | protocol | form | {DECISION} | decision rule (thr / margin) | R@1 |")
    assert table[2].startswith("| lookalikes | student | zero-shot | onnx-int8 | 0.812 (0.993) | 0.61 / 0.04 | 0.900 |")
    assert all(line.count("|") == table[0].count("|") for line in table)
    assert rerank[0].startswith("| tier | model | form | decision recall at precision ≥ 0.99, cosine -> re-ranked |")
    assert rerank[2].startswith("| lookalikes | student | onnx-int8 | 0.812 -> 0.900 (+0.088) |")


def _document(benchmark: dict) -> dict:
    return {"benchmark": {"tiers": {"lookalikes": {"items": 10, "queries": 50, "backgrounds": "synthetic clutter"}},
                          "simulator": {}, "gallery_views": {"count": 0}, **benchmark},
            "machine": {"platform": "linux", "processor": "x86_64", "cpus": 2, "torch": "2"}, "duration_s": 60,
            "results": [_record("lookalikes", "student", "onnx-int8", "zero-shot", 0.8, 0.995)]}


def test_markdown_says_which_split_and_how_the_rule_is_calibrated(tmp_path) -> None:
    from pocketvec.bench.dataset import DEV

    config = {"pages": 100, "flags": 100, "lookalike_page_groups": 20, "lookalike_flag_groups": 20,
              "queries_per_item": 5, "seed": 0, "split": "dev", "calibration_photos": 4, "full_fetch": True}
    assert all(config[k] == getattr(DEV, k) for k in config)
    dev = _document({"config": config, "split": "dev", "photo_seed": 1, "calibration_seed": 0,
                     "decision_calibration": "`pocketvec data photos` of the gallery (4 per item, seed 0), embedded "
                     "and re-ranked as the benchmark's photos; scored on every benchmark photo of the tier"})
    dev["benchmark"]["tiers"]["lookalikes"]["notes"] = ["dev split: 18 flag groups of the 20 asked (only 18 ...)"]
    text = write_markdown(dev, tmp_path / "dev.md", [], "pocketvec bench --split dev", []).read_text()
    assert text.startswith("# Benchmarks: dev split (for choosing settings, never reported)")
    assert "photo seed (1)" in text and "is calibrated on `pocketvec data photos` of the gallery (4 per item" in text
    assert "18 flag groups of the 20 asked" in text and "not the default" not in text
    # a results.json from before the dev split (no split, no seeds of its own) still makes a report
    old = _document({"config": {k: v for k, v in config.items() if k not in ("split", "calibration_photos")},
                     "decision_calibration": "first 40% of each item's photos; scored on the rest"})
    old["benchmark"]["config"].update(pages=150, flags=150, lookalike_page_groups=25, lookalike_flag_groups=26)
    text = write_markdown(old, tmp_path / "old.md", [], "pocketvec bench", []).read_text()
    assert text.startswith("# Benchmarks\n") and "**Test split**" in text and "Photo seed 0." in text
    assert "is calibrated on first 40% of each item's photos" in text and "not the default" not in text
