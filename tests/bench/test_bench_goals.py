"""Goal verdicts follow the numbers: met, not met, or not measured when a model is missing."""

from __future__ import annotations

from pocketvec.bench.goals import goal_rows


def _row(model, form, r1, f1, flops, size, **extra):
    accuracy = {"recall_at_1": r1, "f1": f1, "decision": extra.pop("decision", None)}
    return {"model": model, "form": form, "status": "ok", "accuracy": accuracy, "flops": flops,
            "file_bytes": size, **extra}


def test_goal_verdicts() -> None:
    results = [
        _row("teacher", "torch-fp32", 0.60, 0.50, 1.7e9, 0),
        _row("teacher", "onnx-fp32", 0.60, 0.50, 1.7e9, 19_000_000),
        _row("enrolled", "onnx-int8", 0.995, 0.90, 5e7, 900_000, latency_vs_teacher=0.2,
             decision={"recall": 0.96, "precision": 0.995}),
        {"model": "student", "form": "onnx-int8", "status": "not available: no base student"},
    ]
    verdicts = {goal: (measured, verdict) for goal, measured, verdict in goal_rows(results)}
    assert verdicts["enrolled: int8 student beats the frozen teacher on R@1 and best F1"][1] == "met"
    assert verdicts["zero-shot: int8 student beats the frozen teacher on R@1 and best F1"][1] == "not measured"
    assert verdicts[">= 20x fewer FLOPs than the teacher"] == ("34.0x", "met")
    assert verdicts["int8 student file <= 1 MB"][1] == "met"
    assert verdicts["enrolled: Recall@1 >= 0.99"][1] == "met"
    latency = next(v for g, v in verdicts.items() if g.startswith("int8 student latency"))
    assert latency == ("ratio 0.200", "not met")  # 1.5 ms / 16 ms = 0.094
