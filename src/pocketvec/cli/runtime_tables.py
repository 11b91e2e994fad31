"""Rich tables and messages shared by the runtime commands (gallery, match, eval, calibrate, demo)."""

from __future__ import annotations

from collections.abc import Sequence
from os import PathLike

from rich.table import Table

from pocketvec.cli.output import console, safe
from pocketvec.errors import ImageLoadError
from pocketvec.runtime.calibration import PAIR_LEVEL_WARNING
from pocketvec.runtime.gallery import Skipped
from pocketvec.runtime.matcher import Match, uncalibrated_note
from pocketvec.runtime.metrics import SweepRow


def report_problems(failures: Sequence[ImageLoadError], skipped: Sequence[Skipped] = ()) -> None:
    for failure in failures:
        console.print(f"[yellow]skipped (unreadable):[/] {safe(failure)}", highlight=False)
    for item in skipped:
        console.print(f"[yellow]skipped (duplicate):[/] {safe(repr(item.label))} {safe(item.source[:12])}: "
                      f"{safe(item.reason)}", highlight=False)


def match_table(names: Sequence[str | PathLike[str]], matches: Sequence[Match],
                truth: Sequence[str] | None = None) -> Table:
    table = Table(title="matches")
    for column in ("image", "answer", "top labels (score)", "margin") + (("expected",) if truth else ()):
        table.add_column(column, overflow="fold")
    for i, (name, match) in enumerate(zip(names, matches, strict=True)):
        answer = f"[green]{safe(match.answer)}[/]" if match.accepted else "[yellow]unknown[/]"
        top = ", ".join(f"{safe(label)} ({score:.3f})" for label, score in match.top)
        margin = "-" if match.margin == float("inf") else f"{match.margin:.3f}"
        extra = (safe(truth[i]),) if truth else ()
        table.add_row(safe(name), answer, top, margin, *extra)
    return table


def sweep_table(rows: Sequence[SweepRow], best: SweepRow, title: str, lowest: float = 0.0) -> Table:
    """Pair-level sweep rows from `lowest` up (every 0.05, plus the best-F1 row); fits 80 columns."""
    counts = f" ({rows[0].positives} positive, {rows[0].negatives} negative pairs)" if rows else ""
    table = Table(title=title + counts, title_justify="left")
    for column in ("threshold", "TP", "FP", "precision", "recall", "F1", "F0.5"):
        table.add_column(column, justify="right", no_wrap=True)
    for r in rows:
        if r.threshold < lowest - 1e-9 or (round(r.threshold * 100) % 5 and r is not best):
            continue
        style = "bold green" if r is best else None
        table.add_row(f"{r.threshold:.2f}", str(r.true_accepts), str(r.false_accepts), f"{r.precision:.4f}",
                      f"{r.recall:.4f}", f"{r.f1:.4f}", f"{r.f05:.4f}", style=style)
    return table


def print_calibration(result) -> None:
    """The pair-level sweep, the decision-level table (best threshold per margin) and the chosen rule."""
    console.print(sweep_table(result.pair_rows, result.pair_best, "1. pair level: query x label pairs", lowest=0.0))
    best = result.pair_best
    console.print(f"pair-level best-F1 threshold {best.threshold:.2f} "
                  f"(precision {best.precision:.4f}, recall {best.recall:.4f})", highlight=False)
    console.print(f"[italic]{PAIR_LEVEL_WARNING}[/]", highlight=False)
    table = Table(title=f"2. decision level: one answer per photo ({result.queries} photos, "
                        f"{result.distractors} distractors); best threshold per margin", title_justify="left")
    for column in ("margin", "threshold", "accepted", "correct", "precision", "recall", "F1"):
        table.add_column(column, justify="right")
    for r in result.decision_rows:
        if round(r.margin * 100) % 5 and r.margin != result.chosen.margin:
            continue
        style = "bold green" if r.margin == result.chosen.margin and r.threshold == result.chosen.threshold else None
        table.add_row(f"{r.margin:.2f}", f"{r.threshold:.2f}", str(r.accepted), str(r.correct),
                      f"{r.precision:.4f}", f"{r.recall:.4f}", f"{r.f1:.4f}", style=style)
    console.print(table)
    c = result.chosen
    note = "" if result.target_reached else (
        f" [bold red]target precision {result.rule.target_precision} not reached on these photos; "
        "this is the most precise rule found[/]")
    console.print(f"chosen rule: score >= {c.threshold:.2f} and margin >= {c.margin:.2f}: precision {c.precision:.4f}, "
                  f"recall {c.recall:.4f} ({c.correct}/{c.accepted} accepted answers correct){note}", highlight=False)


def rule_text(rule) -> str:
    return f"score >= {rule.threshold:.2f} and margin >= {rule.margin:.2f}"


def print_eval(report, gallery: str, model: str) -> None:
    """Decisions first (what a user meets), then retrieval and pair-level numbers; fits 80 columns."""
    d = report.decisions
    source = {"gallery": "the gallery's calibrated rule", "model": "the model's calibrated rule",
              "default": "the default rule: not calibrated"}[d.rule_source]
    console.print(f"decisions, one answer per photo: {rule_text(d.rule)} ({source})", highlight=False)
    table = Table()
    for column, justify in (("", "left"), ("value", "right"), ("what it counts", "left")):
        table.add_column(column, justify=justify)
    table.add_row("photos", f"{d.item_photos} + {d.distractor_photos}", "of enrolled items + distractors")
    table.add_row("answered", f"{d.correct}/{d.accepted}", "right / answers with a label")
    table.add_row("precision", f"{d.precision:.4f}", "right answers / answers")
    table.add_row("recall", f"{d.recall:.4f}", "right answers / photos of items")
    if d.unknown_accuracy is not None:
        table.add_row("unknown right", f"{d.unknown_accuracy:.4f}",
                      f"{d.distractors_rejected}/{d.distractor_photos} distractors answered unknown")
    console.print(table)
    if d.rule_source == "default":
        console.print(f"[yellow]{safe(uncalibrated_note(gallery, model))}[/]", highlight=False)
    console.print(f"query photos {len(report.queries.labels)}, gallery rows {len(report.gallery_labels)} "
                  f"({len(set(report.gallery_labels))} labels)", highlight=False)
    console.print(f"Recall@1 {report.recall_at_1:.4f}  Recall@5 {report.recall_at_5:.4f} (photos of items)  "
                  f"pair best-F1 threshold {report.best.threshold:.2f} (F1 {report.best.f1:.4f})", highlight=False)
    console.print("  ".join(f"TPR@FPR={fpr:g} {tpr:.4f}" for fpr, tpr in report.tpr_at_fpr.items()), highlight=False)
