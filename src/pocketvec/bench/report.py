"""BENCHMARKS.md and its plots, written from one results document (nothing typed in by hand).

Every accuracy table leads with the decision a user meets: recall at precision >= 0.99 of the accept rule
calibrated on `data photos` of the gallery, with its held-out precision; Recall@1 comes second.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pocketvec.atomic import atomic_output
from pocketvec.bench.goals import goals_section
from pocketvec.runtime.local_rerank import LocalRerank

NA = "n/a"
DECISION = "decision recall at precision ≥ 0.99 (held-out precision)"


def _f(value, digits: int = 3) -> str:
    return NA if value is None else f"{value:.{digits}f}"


def _decision(d: dict | None) -> str:
    return f"{d['recall']:.3f} ({d['precision']:.3f})" if d else NA


def _ok(results: list[dict]) -> list[dict]:
    return [r for r in results if r.get("status") == "ok"]


def _full(results: list[dict]) -> list[dict]:
    return [r for r in _ok(results) if not r.get("subset")]


def models_table(results: list[dict]) -> list[str]:
    lines = ["| model | what it is | protocol | backbone | input | crop | embedding | initial weights |",
             "|---|---|---|---|---|---|---|---|"]
    seen = set()
    for r in results:
        if r["model"] in seen or "backbone" not in r:
            continue
        seen.add(r["model"])
        lines.append(f"| {r['model']} | {r['title']} | {r['protocol']} | {r['backbone']} | {r['input_size']} px | "
                     f"{r['crop_mode']} | {r['embedding_dim']}-d | {r['init'] or NA} |")
    return lines


def summary_table(results: list[dict]) -> list[str]:
    """Per tier, side by side: zero-shot and enrolled int8 against the frozen baselines."""
    lines = [f"| tier | model | form | {DECISION} | R@1 | best F1 (pairs) | TPR@FPR 1e-3 | enroll time |",
             "|---|---|---|---|---|---|---|---|"]
    for r in _full(results):
        if r["form"] != ("onnx-fp32" if r["protocol"] == "frozen" else "onnx-int8"):
            continue
        a = r["accuracy"]
        enroll = f"{r['enroll_s'] / 60:.1f} min" if "enroll_s" in r else ""
        lines.append(f"| {r['tier']} | {r['model']} | {r['form']} | {_decision(a.get('decision'))} | "
                     f"{_f(a['recall_at_1'])} | {_f(a['f1'])} | {_f(a['tpr_at_fpr_1e3'])} | {enroll} |")
    return lines


def parity_table(results: list[dict]) -> list[str]:
    """Exported forms against the PyTorch fp32 embeddings of the very same images: against the shipped
    weights and, for a run on the int8 grid, also against its trained float weights (one row each)."""
    lines = ["| tier | model | form | images | against | mean cosine to torch-fp32 | min cosine | top-1 agreement | "
             "R@1 (form) | R@1 (torch-fp32, same images) |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in _ok(results):
        if "parity" not in r:
            continue
        reference = r.get("reference_accuracy")
        same = reference["recall_at_1"] if reference else next(
            (x["accuracy"]["recall_at_1"] for x in _full(results)
             if x["tier"] == r["tier"] and x["model"] == r["model"] and x["form"] == "torch-fp32"), None)
        images = f"{r['items']} items + {r['queries']} photos" + (" (subset)" if r.get("subset") else "")
        against = [("shipped (int8 grid)", r["parity"]), ("trained float (unrounded)", r["parity_float"])] \
            if "parity_float" in r else [("shipped = trained float", r["parity"])]
        for label, p in against:
            lines.append(f"| {r['tier']} | {r['model']} | {r['form']} | {images} | {label} | {p['mean_cosine']:.4f} | "
                         f"{p['min_cosine']:.4f} | {p['top1_agreement']:.3f} | {_f(r['accuracy']['recall_at_1'])} | "
                         f"{_f(same)} |")
    return lines


def _change(before: float | None, after: float | None) -> str:
    if before is None or after is None:
        return NA
    return f"{before:.3f} -> {after:.3f} ({after - before:+.3f})"


def rounding_table(results: list[dict]) -> list[str]:
    """What rounding onto the int8 grid cost each run that did it: the run's own held-out numbers (its
    config's `int8_rounding`) and this benchmark's, trained float weights -> shipped (rounded) weights."""
    lines = ["| tier | model | rounded weight tensors | held-out R@1, float -> rounded | held-out decision recall, "
             "float -> rounded | benchmark R@1, float -> rounded (torch-fp32) | benchmark best F1, float -> rounded |",
             "|---|---|---|---|---|---|---|"]
    for r in _full(results):
        if r["form"] != "torch-fp32" or "int8_rounding" not in r:
            continue
        rounding, held_out = r["int8_rounding"], r["int8_rounding"].get("held_out", {})
        float_held, rounded_held = held_out.get("float", {}), held_out.get("rounded", {})
        unrounded, a = r.get("unrounded_accuracy", {}), r["accuracy"]
        lines.append(f"| {r['tier']} | {r['model']} | {rounding['rounded_weights']} | "
                     f"{_change(float_held.get('recall_at_1'), rounded_held.get('recall_at_1'))} | "
                     f"{_change(float_held.get('decision_recall'), rounded_held.get('decision_recall'))} | "
                     f"{_change(unrounded.get('recall_at_1'), a['recall_at_1'])} | "
                     f"{_change(unrounded.get('f1'), a['f1'])} |")
    return lines if len(lines) > 2 else []


def accuracy_table(results: list[dict]) -> list[str]:
    lines = [f"| tier | model | protocol | form | {DECISION} | decision rule (thr / margin) | R@1 | R@5 | "
             "best F1 (pairs) | threshold | precision | recall | F0.5 | positives | negatives | TPR@FPR 1e-3 | "
             "TPR@FPR 1e-4 |", "|" + "---|" * 17]
    for r in _full(results):
        a, d = r["accuracy"], r["accuracy"].get("decision")
        rule = f"{d['threshold']:.2f} / {d['margin']:.2f}" if d else NA
        lines.append(
            f"| {r['tier']} | {r['model']} | {r['protocol']} | {r['form']} | {_decision(d)} | {rule} | "
            f"{_f(a['recall_at_1'])} | {_f(a['recall_at_5'])} | "
            f"{_f(a['f1'])} | {a['best_threshold']:.2f} | {_f(a['precision'])} | {_f(a['recall'])} | "
            f"{_f(a['f05'])} | {a['positives']} | {a['negatives']} | {_f(a['tpr_at_fpr_1e3'])} | "
            f"{_f(a['tpr_at_fpr_1e4'])} |")
    return lines


def rerank_table(results: list[dict]) -> list[str]:
    """Plain cosine matching against the matcher with the local re-rank, on the same embeddings."""
    lines = ["| tier | model | form | decision recall at precision ≥ 0.99, cosine -> re-ranked | held-out "
             "precision, cosine -> re-ranked | R@1, cosine -> re-ranked | R@5, cosine -> re-ranked |",
             "|---|---|---|---|---|---|---|"]
    for r in _full(results):
        if "reranked_accuracy" not in r:
            continue
        a, b = r["accuracy"], r["reranked_accuracy"]
        da, db = a.get("decision") or {}, b.get("decision") or {}
        lines.append(f"| {r['tier']} | {r['model']} | {r['form']} | {_change(da.get('recall'), db.get('recall'))} | "
                     f"{_change(da.get('precision'), db.get('precision'))} | "
                     f"{_change(a['recall_at_1'], b['recall_at_1'])} | {_change(a['recall_at_5'], b['recall_at_5'])} |")
    return lines if len(lines) > 2 else []


def text_table(results: list[dict]) -> list[str]:
    """The matcher's scores (re-ranked where the form has local maps) against the same with text verification."""
    lines = ["| tier | model | form | decision recall at precision ≥ 0.99, without -> with text | held-out "
             "precision, without -> with | R@1, without -> with | photos read |", "|---|---|---|---|---|---|---|"]
    for r in _full(results):
        if "text_accuracy" not in r:
            continue
        a, b = r.get("reranked_accuracy") or r["accuracy"], r["text_accuracy"]
        da, db = a.get("decision") or {}, b.get("decision") or {}
        lines.append(f"| {r['tier']} | {r['model']} | {r['form']} | {_change(da.get('recall'), db.get('recall'))} | "
                     f"{_change(da.get('precision'), db.get('precision'))} | "
                     f"{_change(a['recall_at_1'], b['recall_at_1'])} | {r['text_read_share']:.0%} |")
    return lines if len(lines) > 2 else []


def _text_section(bench: dict, results: list[dict]) -> list[str]:
    text = bench.get("text_verification") or {}
    table = text_table(results)
    if not table:
        return []
    ms = text.get("ms_per_read_photo")
    timing = (f"Reading one photo takes {ms:.0f} ms (median of {text['photos_timed']} photos, one thread, "
              "measured after the models ran)." if ms is not None else "")
    return ["## Text verification", "",
            f"Where the best labels' printed texts differ, the photo's text is read (`{text.get('models')}` OCR "
            "models, `pocketvec.runtime.text_reader`) and the labels are re-scored on the words that tell them apart "
            "(`pocketvec.runtime.text_verify`); the rule is calibrated on the `data photos` scored the same way. "
            f"{timing}", "", *table, ""]


def cost_table(results: list[dict]) -> list[str]:
    lines = ["| model | form | parameters | GFLOPs / image | file size | onnxruntime latency vs teacher fp32 |",
             "|---|---|---|---|---|---|"]
    seen = set()
    for r in _ok(results):
        if (r["model"], r["form"]) in seen:  # the same architecture on every tier
            continue
        seen.add((r["model"], r["form"]))
        size = f"{r['file_bytes'] / 1e6:.2f} MB" if "file_bytes" in r else NA
        ratio = f"{r['latency_vs_teacher']:.3f}" if r.get("latency_vs_teacher") is not None else NA
        lines.append(f"| {r['model']} | {r['form']} | {r['params'] / 1e6:.2f} M | {r['flops'] / 1e9:.3f} | "
                     f"{size} | {ratio} |")
    return lines


def missing_list(results: list[dict]) -> list[str]:
    """One line per model and reason: "teacher (all forms): not available: ..." or per form."""
    reasons: dict[tuple[str, str, str], list[str]] = {}
    for r in results:
        if r.get("status") != "ok":
            reasons.setdefault((r["tier"], r["model"], r["status"]), []).append(r["form"])
    forms = {(r["tier"], r["model"]): sum(x["model"] == r["model"] and x["tier"] == r["tier"] for x in results)
             for r in results}
    return [f"- {tier}: {model} ({'all forms' if len(done) == forms[tier, model] else ', '.join(done)}): {status}"
            for (tier, model, status), done in reasons.items()]


def write_plots(results: list[dict], images_dir: Path, stem: str = "bench") -> list[Path]:
    """Precision-recall curves of every form, and each model's threshold sweep; PNG via Agg."""
    import matplotlib

    matplotlib.use("Agg")
    images_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for tier in dict.fromkeys(r["tier"] for r in results):
        written += _tier_plots([r for r in results if r["tier"] == tier], images_dir, f"{stem}_{tier}")
    return written


def _tier_plots(results: list[dict], images_dir: Path, stem: str) -> list[Path]:
    import matplotlib.pyplot as plt

    ok = _full(results)  # subset rows (Core ML) have fewer negatives: their curves are not comparable
    styles = {"torch-fp32": "-", "onnx-fp32": ":", "onnx-int8": "--", "coreml-int8": "-."}
    colours = {key: f"C{i}" for i, key in enumerate(dict.fromkeys(r["model"] for r in results))}
    written = []
    fig, ax = plt.subplots(figsize=(7, 5), dpi=110)
    for r in ok:
        sweep = [row for row in r["sweep"] if row[1] + row[2] > 0]
        ax.plot([row[2] for row in sweep], [row[1] for row in sweep], styles.get(r["form"], "-"),
                color=colours[r["model"]], label=f"{r['model']} {r['form']}")
    ax.set(xlabel="recall (pairs)", ylabel="precision (pairs)",
           title=f"{results[0]['tier']}: precision-recall over the threshold sweep",
           xlim=(0, 1.01), ylim=(0, 1.01))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    written.append(_save(fig, images_dir / f"{stem}_pr.png"))
    models = list(dict.fromkeys(r["model"] for r in ok))
    if models:
        fig, axes = plt.subplots(1, len(models), figsize=(4 * len(models), 3.6), dpi=110, squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            record = next(r for r in ok if r["model"] == model)  # the first form measured (torch-fp32 by default)
            thresholds = [row[0] for row in record["sweep"]]
            for column, name in ((1, "precision"), (2, "recall"), (3, "F1")):
                ax.plot(thresholds, [row[column] for row in record["sweep"]], label=name)
            ax.axvline(record["accuracy"]["best_threshold"], color="grey", ls="--", lw=1)
            ax.set(title=f"{model} ({record['form']})", xlabel="cosine threshold", xlim=(-0.2, 1.0), ylim=(0, 1.02))
            ax.grid(alpha=0.3)
        axes[0][0].legend(fontsize=8)
        written.append(_save(fig, images_dir / f"{stem}_sweep.png"))
    return written


def write_query_sheet(gallery_paths: list[Path], query_paths: list[Path], query_labels: list[str],
                      gallery_labels: list[str], out: Path, rows: int = 4) -> Path:
    """A few items: the clean gallery image, then its simulated photos, one item per row."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pocketvec.runtime.images import load_image

    picks = [int(i) for i in np.linspace(0, len(gallery_labels) - 1, min(rows, len(gallery_labels)))]
    columns = 1 + max(query_labels.count(gallery_labels[i]) for i in picks)
    fig, axes = plt.subplots(len(picks), columns, figsize=(2.2 * columns, 2.0 * len(picks)), dpi=90, squeeze=False)
    for row, index in zip(axes, picks, strict=True):
        label = gallery_labels[index]
        images = [gallery_paths[index]] + [p for p, q in zip(query_paths, query_labels, strict=True) if q == label]
        for col, ax in enumerate(row):
            ax.axis("off")
            if col < len(images):
                ax.imshow(load_image(images[col]))
                ax.set_title("gallery" if col == 0 else f"photo {col}", fontsize=8)
    return _save(fig, out)


def _save(fig, path: Path) -> Path:
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _size_notes(config: dict) -> list[str]:
    from pocketvec.bench.dataset import DEV, TEST

    sizes = ("pages", "flags", "lookalike_page_groups", "lookalike_flag_groups", "label_designs", "queries_per_item")
    split = config.get("split", "test")
    default = DEV if split == "dev" else TEST
    config = {key: config.get(key, getattr(default, key)) for key in sizes}  # results from before a size existed
    if all(config[key] == getattr(default, key) for key in sizes):
        return []
    return [f"This run is not the default {split} split ({', '.join(f'{k} {getattr(default, k)}' for k in sizes)}): "
            f"{', '.join(f'{k} {config[k]}' for k in sizes)}. `pocketvec bench --split {split}` without the size "
            "options runs the default."]


def _tier_size(bench: dict, tier: str) -> str:
    summary = bench["tiers"].get(tier)
    if not summary:
        return "not in this run"
    notes = "".join(f"; {note}" for note in summary.get("notes", []))
    return f"{summary['items']} items, {summary['queries']} photos{notes}"


def _split_note(bench: dict, config: dict) -> str:
    """Which split this is, and its seeds (results from before the dev split were the test split)."""
    seed = bench.get("photo_seed", config["seed"])
    if bench.get("split", "test") == "dev":
        return (f"- **Dev split**: its own items (none of them in the test split: the pages after the test's, flags "
                "and look-alike groups no test tier uses, label designs of its own seed and producers) and its own "
                f"photo seed ({seed}). For choosing settings; its numbers are never reported "
                "(`pocketvec.bench.dataset`).")
    return (f"- **Test split**: reported only; every setting is chosen on the validation simulator and the "
            f"benchmark's dev split (`pocketvec bench --split dev`: its own items and photo seed). Photo seed {seed}.")


def _rounding_section(results: list[dict]) -> list[str]:
    table = rounding_table(results)
    if not table:
        return []
    return ["## Cost of rounding onto the int8 grid", "",
            "A run trained with `int8_grid` (the enroll preset) ships its weights rounded onto the int8 export's "
            "grid and keeps its trained float weights next to them; the parity rows above compare each exported "
            "file with both. Held-out: the run's own held-out views, measured when it was trained; benchmark: "
            "this run's photos, torch-fp32 with each set of weights.", "", *table, ""]


def write_markdown(document: dict, out: Path, images: list[Path], command: str, notes: list[str]) -> Path:
    bench, machine, results = document["benchmark"], document["machine"], document["results"]
    config = bench["config"]
    split = bench.get("split", "test")
    lines = [
        "# Benchmarks" if split == "test" else "# Benchmarks: dev split (for choosing settings, never reported)",
        "",
        "Every number and plot on this page was written by one command, on this machine's CPU:",
        "",
        f"```\n{command}\n```",
        "",
        "## The public benchmark",
        "",
        "- Four tiers, each its own gallery of clean images (one per item), as a user enrolls one catalogue: "
        f"**pages** ({_tier_size(bench, 'pages')}: texlive-humanities-doc manuals, spread evenly across documents), "
        f"**flags** ({_tier_size(bench, 'flags')}: the npm package flag-icons), the **look-alike stress tier** "
        f"({_tier_size(bench, 'lookalikes')}: groups of five near-identical items that differ in small printed "
        "details: a page, the next page of its manual, and the page with a serial number, a seal or a printed "
        "frame; a flag, its editions with one colour shifted in hue, a serial number, a seal or a frame; "
        "`pocketvec.bench.lookalikes`), and **labels** "
        f"({_tier_size(bench, 'labels')}: wine-like labels of our own making, each design in five editions that "
        "differ in one printed field: the vintage, the volume, the grape, one word of the cuvée, a small printed line "
        "or a small medal; `pocketvec.bench.label_editions`). None of these sources is ever used for training. "
        "The enrolled model is fine-tuned on each tier's gallery alone.",
        f"- Queries: synthetic phone photos ({config['queries_per_item']} per item) from the "
        "benchmark photo simulator (`pocketvec.bench.simulator`, its own code path, not the training "
        "augmentation): perspective, rotation, lighting ramp, gain/contrast/gamma, white balance, shadow, "
        f"glare, defocus or motion blur, sensor noise, JPEG; backgrounds: "
        f"{next(iter(bench['tiers'].values()))['backgrounds']}.",
        _split_note(bench, config),
        f"- Decision level, first in every table (one answer per photo, threshold + margin, "
        "`pocketvec.runtime.calibration`): the rule with the highest recall at precision >= 0.99 is calibrated on "
        f"{bench['decision_calibration']}. Its precision and recall are held out: the rule never saw those photos, "
        "as a user's rule never saw the photos it answers.",
        "- Pair level: every query x label pair is a yes/no decision; the cosine threshold is swept in 0.01 "
        "steps and the best-F1 row is reported with its positive/negative pair counts and F0.5.",
        _gallery_rows_note(bench.get("gallery_views", {"count": 0})),
        "- Latency: onnxruntime, 1 thread, batch 1, median of 150 runs per model, the models taking turns; "
        "reported as a ratio to the EfficientNet-Lite2 teacher's fp32 ONNX measured in the same run.",
        f"- Machine: {machine['platform']}, {machine['processor']}, {machine.get('cpus')} CPUs, torch "
        f"{machine['torch']}; the run took {document.get('duration_s', 0) / 60:.1f} min of wall time.",
        *[f"- {note}" for note in _size_notes(config) + notes],
        "",
        "## Per tier: zero-shot and enrolled, side by side",
        "",
        "The int8 ONNX file of each student (zero-shot and enrolled) and the fp32 ONNX of the frozen baselines; "
        "enroll time is the wall time of `pocketvec train --preset enroll` (`enroll-small` for the small student) "
        "on the tier's gallery, on this CPU.",
        "",
        *summary_table(results),
        "",
        "## The local re-rank",
        "",
        "What the matcher answers with a model exported with its `local` output (the default of `pocketvec export "
        f"onnx`; `pocketvec.runtime.local_rerank`): the {LocalRerank.top_k} best labels by cosine re-scored by "
        f"the local score of the stride-16 map (weight {LocalRerank.weight:g}; the item's locations found in the "
        f"photo, their worst {LocalRerank.worst_fraction:g} included, and the photo's item locations explained by "
        f"the item, weight {LocalRerank.photo_weight:g}), on the very same embeddings as the cosine numbers. The "
        "PyTorch form uses the same settings.",
        "",
        *rerank_table(results),
        "",
        *_text_section(bench, results),
        "## Models",
        "",
        *models_table(results),
        "",
        "## Goals of the benchmark issue",
        "",
        *goals_section(results),
        "",
        "## Accuracy",
        "",
        *accuracy_table(results),
        "",
        "Frozen models (teacher, Lite0) have no training step: their numbers hold for both protocols.",
        "",
        "## Exported forms against PyTorch",
        "",
        "Each exported file runs through the runtime's engine (onnxruntime; Core ML through the numpy ML-program "
        "interpreter, about a second per image here, so it embeds a spread subset of the items with all their "
        "photos) and is compared with the PyTorch fp32 embeddings of the same preprocessed pixels.",
        "",
        *parity_table(results),
        "",
        *_rounding_section(results),
        "## Size and speed",
        "",
        *cost_table(results),
        "",
        "## Plots",
        "",
        *[f"![{p.stem}]({os.path.relpath(p, out.parent)})" for p in images],
        "",
    ]
    missing = missing_list(results)
    if missing:
        lines += ["## Not available in this run", "", *missing, ""]
    with atomic_output(out) as tmp:
        tmp.write_text("\n".join(lines))
    return out


def _frame(aspect: float) -> str:
    """A gallery views' frame in words (aspect = height / width)."""
    return "square" if aspect == 1 else f"{'portrait' if aspect > 1 else 'landscape'} (height / width {aspect:.3g})"


def _gallery_rows_note(views: dict) -> str:
    """How the benchmark made each gallery row (`pocketvec.runtime.gallery.views`), as `gallery build` does."""
    if not views["count"]:
        return "- Gallery rows: each item's clean image alone (`--gallery-views 0`)."
    return (f"- Gallery rows, as `pocketvec gallery build` makes them: the clean image's embedding blended "
            f"{views['clean_weight']:g} : {1 - views['clean_weight']:g} with the mean of {views['count']} "
            "simulated phone photos of it from the *training* photo simulator (`pocketvec.runtime.gallery.views`, "
            f"embedded backgrounds; never the benchmark's simulator), framed {_frame(views.get('aspect', 1.0))} and "
            "cropped with the model's photos' crop. The re-rank's local maps are the clean "
            "image's. Parity compares the models' outputs on the same images, before any blend.")
