"""The issue's goals, checked against one results document: numbers and met / not met, never adjectives."""

from __future__ import annotations

TEACHER_LATENCY_MS = 16.0  # the figure for the teacher (Lite2, 260 px, fp32, 1 thread) on its machine
STUDENT_LATENCY_MS = 1.5
MAX_INT8_BYTES = 1_000_000  # the int8 student file's bar (1 MB), the base student's and the small one's
SMALL_GAP = 0.03  # the small student's zero-shot int8 R@1 may trail the base student's by this much
SMALL_LATENCY_SHARE = 0.1  # of the teacher's fp32 latency, in the same run


def _find(results: list[dict], model: str, form: str) -> dict | None:
    return next((r for r in results if r["model"] == model and r["form"] == form and r.get("status") == "ok"
                 and not r.get("subset")), None)


def answered(record: dict) -> dict:
    """The accuracy of what the matcher answers with this form: re-ranked by the local maps when the form
    has them (the default export), else plain cosine; then verified by the printed text when measured."""
    return record.get("text_accuracy") or record.get("reranked_accuracy") or record["accuracy"]


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "not met")


def goal_rows(results: list[dict]) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) rows: the enroll issue's per tier, then the benchmark issue's per tier."""
    by_tier: dict[str, list[dict]] = {}
    for r in results:
        by_tier.setdefault(r["tier"], []).append(r)
    rows = [row for tier, of_tier in by_tier.items() for row in enroll_rows(tier, of_tier)]
    rows += [row for tier, of_tier in by_tier.items() for row in small_rows(tier, of_tier)]
    return rows + [(f"{tier}: {goal}", measured, verdict)
                   for tier, of_tier in by_tier.items() for goal, measured, verdict in tier_rows(of_tier)]


def enroll_rows(tier: str, results: list[dict]) -> list[tuple[str, str, str]]:
    """Enrolment never ends below zero-shot; on the look-alike tier R@1 >= 0.90, decision recall >= 0.70."""
    zero_shot, enrolled = _find(results, "student", "onnx-int8"), _find(results, "enrolled", "onnx-int8")
    if zero_shot is None or enrolled is None:
        return [(f"{tier}: enrolled int8 >= zero-shot int8 (R@1)", "n/a", _verdict(None))]
    z, e = answered(zero_shot), answered(enrolled)
    rows = [(f"{tier}: enrolled int8 >= zero-shot int8 (R@1)", f"{e['recall_at_1']:.3f} vs {z['recall_at_1']:.3f}",
             _verdict(e["recall_at_1"] >= z["recall_at_1"]))]
    if tier == "lookalikes":
        decision = e.get("decision")
        rows.append((f"{tier}: enrolled int8 R@1 >= 0.90", f"{e['recall_at_1']:.3f}",
                     _verdict(e["recall_at_1"] >= 0.9)))
        rows.append((f"{tier}: enrolled int8 decision recall >= 0.70 at precision >= 0.99 (held-out photos)",
                     f"recall {decision['recall']:.3f} at precision {decision['precision']:.3f}" if decision else "n/a",
                     _verdict(decision["recall"] >= 0.7 and decision["precision"] >= 0.99 if decision else None)))
    return rows


def small_rows(tier: str, results: list[dict]) -> list[tuple[str, str, str]]:
    """The small student's bars: its int8 file <= 1 MB and <= 0.1 of the teacher's latency, zero-shot R@1
    within SMALL_GAP of the base student's (both int8, as the matcher answers)."""
    small, base = _find(results, "small", "onnx-int8"), _find(results, "student", "onnx-int8")
    if small is None:
        return []
    rows = []
    if base is not None:
        s, b = answered(small)["recall_at_1"], answered(base)["recall_at_1"]
        rows.append((f"{tier}: small int8 R@1 within {SMALL_GAP} of the base student's", f"{s:.3f} vs {b:.3f}",
                     _verdict(s >= b - SMALL_GAP)))
    if "file_bytes" in small:
        rows.append((f"{tier}: small int8 file <= 1 MB", f"{small['file_bytes'] / 1e6:.3f} MB",
                     _verdict(small["file_bytes"] <= MAX_INT8_BYTES)))
    ratio = small.get("latency_vs_teacher")
    if ratio is not None:
        rows.append((f"{tier}: small int8 latency <= {SMALL_LATENCY_SHARE} of the teacher's fp32", f"{ratio:.3f}",
                     _verdict(ratio <= SMALL_LATENCY_SHARE)))
    return rows


def tier_rows(results: list[dict]) -> list[tuple[str, str, str]]:
    """The benchmark issue's goals on one tier."""
    teacher = _find(results, "teacher", "torch-fp32")
    teacher_onnx = _find(results, "teacher", "onnx-fp32")
    rows: list[tuple[str, str, str]] = []
    for model, protocol in (("student", "zero-shot"), ("enrolled", "enrolled")):
        student = _find(results, model, "onnx-int8")
        goal = f"{protocol}: int8 student beats the frozen teacher on R@1 and best F1"
        if student is None or teacher is None:
            rows.append((goal, "n/a", _verdict(None)))
            continue
        s, t = answered(student), answered(teacher)
        rows.append((goal,
                     f"R@1 {s['recall_at_1']:.3f} vs {t['recall_at_1']:.3f}; F1 {s['f1']:.3f} vs {t['f1']:.3f}",
                     _verdict(s["recall_at_1"] > t["recall_at_1"] and s["f1"] > t["f1"])))
    enrolled = _find(results, "enrolled", "onnx-int8")
    if enrolled and teacher:
        ratio = teacher["flops"] / enrolled["flops"]
        rows.append((">= 20x fewer FLOPs than the teacher", f"{ratio:.1f}x", _verdict(ratio >= 20)))
    else:
        rows.append((">= 20x fewer FLOPs than the teacher", "n/a", _verdict(None)))
    if enrolled and teacher_onnx and "file_bytes" in enrolled:
        share = enrolled["file_bytes"] / teacher_onnx["file_bytes"]
        rows.append(("int8 file <= 1/10 of the teacher's (fp32 ONNX)", f"{share:.3f}", _verdict(share <= 0.1)))
        rows.append(("int8 student file <= 1 MB", f"{enrolled['file_bytes'] / 1e6:.2f} MB",
                     _verdict(enrolled["file_bytes"] <= MAX_INT8_BYTES)))
    if enrolled:
        decision = answered(enrolled).get("decision")
        rows.append(("enrolled: Recall@1 >= 0.99", f"{answered(enrolled)['recall_at_1']:.3f}",
                     _verdict(answered(enrolled)["recall_at_1"] >= 0.99)))
        if decision:
            rows.append(("enrolled, decision level: recall >= 0.95 at precision >= 0.99 (held-out photos)",
                         f"recall {decision['recall']:.3f} at precision {decision['precision']:.3f}",
                         _verdict(decision["recall"] >= 0.95 and decision["precision"] >= 0.99)))
        ratio = enrolled.get("latency_vs_teacher")
        if ratio is not None:
            bound = STUDENT_LATENCY_MS / TEACHER_LATENCY_MS
            rows.append((f"int8 student latency <= {STUDENT_LATENCY_MS} ms where the teacher takes "
                         f"{TEACHER_LATENCY_MS:.0f} ms (ratio <= {bound:.3f})", f"ratio {ratio:.3f}",
                         _verdict(ratio <= bound)))
    return rows


def goals_section(results: list[dict]) -> list[str]:
    lines = ["Accuracy goals are judged on what the matcher answers: re-ranked by the local maps for forms that "
             "have them (the default export), plain cosine otherwise.", "",
             "| goal | measured | verdict |", "|---|---|---|"]
    lines += [f"| {goal} | {measured} | {verdict} |" for goal, measured, verdict in goal_rows(results)]
    return lines
