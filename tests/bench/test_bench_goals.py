"""Goal verdicts follow the numbers: met, not met, or not measured when a model is missing."""

from __future__ import annotations

from pocketvec.bench.goals import goal_rows


def _row(model, form, r1, f1, flops, size, **extra):
    accuracy = {"recall_at_1": r1, "f1": f1, "decision": extra.pop("decision", None)}
    return {"tier": "lookalikes", "model": model, "form": form, "status": "ok", "accuracy": accuracy, "flops": flops,
            "file_bytes": size, **extra}


def test_goal_verdicts() -> None:
    results = [
        _row("teacher", "torch-fp32", 0.60, 0.50, 1.7e9, 0),
        _row("teacher", "onnx-fp32", 0.60, 0.50, 1.7e9, 19_000_000),
        _row("enrolled", "onnx-int8", 0.995, 0.90, 5e7, 900_000, latency_vs_teacher=0.2,
             decision={"recall": 0.96, "precision": 0.995}),
        {"tier": "lookalikes", "model": "student", "form": "onnx-int8", "status": "not available: no base student"},
    ]
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["lookalikes: enrolled: int8 student beats the frozen teacher on R@1 and best F1"][1] == "met"
    zero_shot = "lookalikes: zero-shot: int8 student beats the frozen teacher on R@1 and best F1"
    assert verdicts[zero_shot][1] == "not measured"
    assert verdicts["lookalikes: >= 20x fewer FLOPs than the teacher"] == ("34.0x", "met")
    assert verdicts["lookalikes: int8 student file <= 1 MB"][1] == "met"
    assert verdicts["lookalikes: enrolled: Recall@1 >= 0.99"][1] == "met"
    latency = next(v for g, v in verdicts.items() if g.startswith("lookalikes: int8 student latency"))
    assert latency == ("ratio 0.200", "not met")  # 1.5 ms / 16 ms = 0.094


def test_enroll_goals_per_tier() -> None:
    results = [
        _row("student", "onnx-int8", 0.61, 0.40, 4e8, 4_000_000),
        _row("enrolled", "onnx-int8", 0.93, 0.80, 4e8, 4_000_000, decision={"recall": 0.72, "precision": 0.993}),
        {**_row("student", "onnx-int8", 0.95, 0.85, 4e8, 4_000_000), "tier": "pages"},
        {**_row("enrolled", "onnx-int8", 0.94, 0.86, 4e8, 4_000_000), "tier": "pages"},
    ]
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["lookalikes: enrolled int8 >= zero-shot int8 (R@1)"] == ("0.930 vs 0.610", "met")
    assert verdicts["lookalikes: enrolled int8 R@1 >= 0.90"][1] == "met"
    assert verdicts["lookalikes: enrolled int8 decision recall >= 0.70 at precision >= 0.99 (held-out photos)"][1] \
        == "met"
    assert verdicts["pages: enrolled int8 >= zero-shot int8 (R@1)"] == ("0.940 vs 0.950", "not met")
    assert "pages: enrolled int8 R@1 >= 0.90" not in verdicts


def test_goals_judge_what_the_matcher_answers() -> None:
    """A form with local maps answers re-ranked: its re-ranked numbers decide, not the plain cosine ones."""
    plain = _row("enrolled", "onnx-int8", 0.82, 0.60, 4e8, 4_000_000, decision={"recall": 0.52, "precision": 0.99})
    reranked = {"recall_at_1": 0.91, "f1": 0.60, "decision": {"recall": 0.71, "precision": 0.992}}
    results = [_row("student", "onnx-int8", 0.61, 0.40, 4e8, 4_000_000), {**plain, "reranked_accuracy": reranked}]
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["lookalikes: enrolled int8 R@1 >= 0.90"] == ("0.910", "met")
    assert verdicts["lookalikes: enrolled int8 decision recall >= 0.70 at precision >= 0.99 (held-out photos)"] == \
        ("recall 0.710 at precision 0.992", "met")
    verdicts = {goal: v for goal, *v in goal_rows([_row("student", "onnx-int8", 0.61, 0.40, 4e8, 0), plain])}
    assert verdicts["lookalikes: enrolled int8 R@1 >= 0.90"] == ["0.820", "not met"]


def test_small_student_goals() -> None:
    """The small student's bars: R@1 within 0.03 of the base student's, its int8 file <= 1 MB, latency <= 0.1."""
    results = [
        _row("student", "onnx-int8", 0.90, 0.70, 4e8, 4_000_000),
        _row("small", "onnx-int8", 0.86, 0.60, 4e7, 865_000, latency_vs_teacher=0.04),
    ]
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["lookalikes: small int8 R@1 within 0.03 of the base student's"] == ("0.860 vs 0.900", "not met")
    assert verdicts["lookalikes: small int8 file <= 1 MB"] == ("0.865 MB", "met")
    assert verdicts["lookalikes: small int8 latency <= 0.1 of the teacher's fp32"] == ("0.040", "met")
    results[1]["accuracy"]["recall_at_1"] = 0.875
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["lookalikes: small int8 R@1 within 0.03 of the base student's"][1] == "met"
    assert not any(goal.startswith("lookalikes: small") for goal, _, _ in goal_rows(results[:1]))
