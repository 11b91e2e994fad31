"""`run_benchmark`: build the public benchmark, measure every model in every form on every tier.

Each (tier, model, form) ends as one result record: its numbers, or the reason it is not available.
Each tier is its own gallery, and the enrolled model is fine-tuned on that tier's gallery alone, as a
user enrolls one catalogue. The decision rule (threshold + margin) is calibrated as a user calibrates:
on `pocketvec data photos` of the gallery, embedded and re-ranked exactly as the benchmark's photos,
and scored on all of those, which it never saw. Results go to `results.json` in the split's folder
(`<work>/` for test, `<work>/dev/`); report.py turns them into BENCHMARKS.md and the plots.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pocketvec.bench.dataset import CALIBRATION_SEED, BenchConfig, build_benchmark, split_folder
from pocketvec.bench.formats import (
    FORMATS,
    embed_form,
    embed_photos,
    embed_torch,
    export_form,
    exporter_id,
    prepared_photo_pixels,
    prepared_pixels,
    prepared_view_pixels,
    zoomed,
)
from pocketvec.bench.measure import (
    TEXT_TIMED_PHOTOS,
    accuracy,
    accuracy_of,
    onnx_latencies,
    parameters_and_flops,
    parity,
    text_read_ms,
)
from pocketvec.bench.models import ENROLL_TIME_FILE, MODEL_SPECS, BenchContext, NotAvailable
from pocketvec.bench.simulator import PhotoSimConfig
from pocketvec.bench.texts import TierTexts
from pocketvec.bounded_json import read_json
from pocketvec.data.photo_framing import DEFAULT_FRAMING
from pocketvec.errors import ConfigError
from pocketvec.file_kinds import file_size
from pocketvec.runtime.gallery.views import GalleryViews, blend_views
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.local_rerank import label_ids
from pocketvec.runtime.local_rerank import rerank as local_rerank
from pocketvec.runtime.photo_crops import fuse_crops
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.runtime.printed_text import text_available
from pocketvec.runtime.text_reader import DEFAULT_MODELS
from pocketvec.runtime.text_verify import verify_labelled
from pocketvec.train.checkpoint import FLOAT_WEIGHTS_FILE, WEIGHTS_FILE, read_run_config
from pocketvec.train.student import SHIPPED_MODELS
from pocketvec.train.teacher_base import file_digest

SLOW_FORMS = ("coreml-int8",)  # the numpy Core ML interpreter takes about a second per image on this CPU
QUICK = BenchConfig(pages=6, flags=6, lookalike_page_groups=1, lookalike_flag_groups=1, label_designs=2,
                    queries_per_item=2, full_fetch=False)
TEACHER_KEY = "teacher"


@dataclass(frozen=True)
class BenchOptions:
    work: Path
    config: BenchConfig = field(default_factory=BenchConfig)
    models: tuple[str, ...] = tuple(MODEL_SPECS)
    forms: tuple[str, ...] = FORMATS
    student_run: Path | None = None
    enroll_args: tuple[str, ...] = ()
    cache: Path | None = None
    simulator: PhotoSimConfig = field(default_factory=PhotoSimConfig)
    slow_form_items: int = 15  # items (with all their photos) that the slow forms embed
    gallery_views: GalleryViews = field(default_factory=GalleryViews)  # how gallery rows are made, as the runtime
    text_models: str | None = DEFAULT_MODELS  # text verification's OCR models (None: not measured)
    item_zoom: bool = True  # exported forms answer photos zoomed to their item, as the runtime (runtime/item_zoom)

    def __post_init__(self) -> None:
        for kind, chosen, valid in (("model", self.models, MODEL_SPECS), ("form", self.forms, FORMATS)):
            unknown = [c for c in chosen if c not in valid]
            if unknown:
                raise ConfigError(f"unknown {kind}(s) {unknown}. Valid: {', '.join(valid)}.")


class Pixels(NamedTuple):
    """A tier's images as the model is fed them: gallery (items, S, S, 3), benchmark photos and calibration
    photos (photos, crops, S, S, 3: each query crop) and, when rows are blended (`gallery_views`), each item's
    views, (items, views, crops, S, S, 3)."""

    gallery: np.ndarray
    queries: np.ndarray
    calibration: np.ndarray
    views: np.ndarray | None


class Embedded(NamedTuple):
    gallery: np.ndarray
    queries: np.ndarray
    rows: np.ndarray  # the gallery's rows as the runtime makes them (the gallery blended with its views)
    calibration: np.ndarray



def shipped_name(init: str) -> str:
    """A run's start as the report names it: `base` or `small` for a shipped model's folder (in whichever checkout
    made the run), else as the run recorded it."""
    parts = Path(init).parts[-3:] if init else ()
    return parts[-1] if len(parts) == 3 and parts[:2] == ("pocketvec", "assets") and parts[-1] in SHIPPED_MODELS \
        else init

def calibration_mask(query_paths: list[Path], queries_per_item: int) -> np.ndarray:
    """The first 2 of 5 photos per item (1 of 2): how the bench calibrated its decision rule before it used
    `data photos`; kept for pocketvec.bench.tiers and experiments/."""
    split = max(1, round(queries_per_item * 0.4))
    photo_index = [int(re.search(r"--q(\d+)$", p.stem).group(1)) for p in query_paths]  # type: ignore[union-attr]
    return np.asarray(photo_index) < split


def _subset(labels: list[str], items: int, *photo_labels: list[str]) -> tuple[np.ndarray, ...]:
    """Gallery row indices of `items` items spread over the gallery (all when it is smaller), then the row
    indices of each list of `photo_labels` (queries, calibration photos) that are of those items."""
    if items >= len(labels):
        return tuple(np.arange(len(rows)) for rows in (labels, *photo_labels))
    chosen = {labels[int(i)] for i in np.linspace(0, len(labels) - 1, items)}
    return tuple(np.array([i for i, label in enumerate(rows) if label in chosen], dtype=np.int64)
                 for rows in (labels, *photo_labels))


def _export_dir(ctx: BenchContext, key: str, run_dir: Path) -> Path:
    """Exports are reused only for the same weights (their digest: runs of one embedding space may differ),
    gallery (w8a8 calibrates on it) and export code; the forms that do not calibrate are copied between tiers
    (`_same_exports`)."""
    stamp = read_json(ctx.work / "benchmark.json", "benchmark stamp")["key"]
    return ctx.work / "exports" / _export_name(key, run_dir, stamp)


def _export_name(key: str, run_dir: Path, stamp: str) -> str:
    space = read_run_config(run_dir)["embedding_space_id"]
    weights = file_digest(run_dir / WEIGHTS_FILE)[:8]
    return f"{key}-{space}-{weights}-{stamp}-{exporter_id()}"


def _same_exports(ctx: BenchContext, key: str, run_dir: Path) -> list[Path]:
    """The export folders of the same weights by the same exporter in the split's other tiers (other
    galleries): what does not calibrate on the gallery is copied from there (formats.export_form)."""
    mine = _export_dir(ctx, key, run_dir)
    return sorted(d for d in ctx.work.parent.glob(f"*/exports/{_export_name(key, run_dir, '*')}") if d != mine)


def _gallery_rows(gallery: np.ndarray, views: np.ndarray | None, clean_weight: float) -> np.ndarray:
    """The gallery's rows as the runtime makes them: `gallery` blended with the embeddings of its views
    (`views`, each item's views in a row, in gallery order); `gallery` itself without views."""
    if views is None:
        return gallery
    return blend_views(gallery, views.reshape(len(gallery), -1, gallery.shape[1]), clean_weight)


def _float_reference(run_dir: Path, pixels: Pixels, clean_weight: float) -> Embedded | None:
    """The embeddings of an int8_grid run's trained float weights; None without them."""
    if not (run_dir / FLOAT_WEIGHTS_FILE).is_file():
        return None
    gallery, queries, calibration, views = (  # photos and views: one fused row per photo, as the runtime's
        None if images is None else fuse_crops(embed_torch(run_dir, images.reshape(-1, *images.shape[-3:]),
                                                           weights_file=FLOAT_WEIGHTS_FILE),
                                               None, 1 if images is pixels.gallery else images.shape[-4])[0]
        for images in pixels)
    return Embedded(gallery, queries, _gallery_rows(gallery, views, clean_weight), calibration)


def _measure_form(form: str, run_dir: Path, ctx: BenchContext, options: BenchOptions, pixels: Pixels,
                  reference: Embedded | None, key: str,
                  float_reference: Embedded | None = None) -> tuple[dict, Embedded, Path | None]:
    """One form's record fields, its embeddings and its exported file.

    `reference`: the shipped PyTorch model's embeddings; `float_reference`: the trained float weights'
    of an int8_grid run (exported forms get a second parity, the PyTorch form the float accuracy). The
    calibration photos go through the form as the benchmark's photos do (query crop, local re-rank), and
    every decision rule is calibrated on them and scored on the benchmark's photos."""
    bench = ctx.bench
    exported = export_form(form, run_dir, _export_dir(ctx, key, run_dir), bench.gallery_dir,
                           _same_exports(ctx, key, run_dir))
    items = options.slow_form_items if form in SLOW_FORMS else len(bench.gallery_labels)
    g_idx, q_idx, c_idx = _subset(bench.gallery_labels, items, bench.query_labels, bench.calibration_labels)
    g_labels, q_labels = [bench.gallery_labels[i] for i in g_idx], [bench.query_labels[i] for i in q_idx]
    c_labels = [bench.calibration_labels[i] for i in c_idx]
    gallery, gallery_locals, rerank = embed_form(form, run_dir, exported, pixels.gallery[g_idx])
    queries, query_locals, _ = embed_photos(form, run_dir, exported, pixels.queries[q_idx])
    calibration, calibration_locals, _ = embed_photos(form, run_dir, exported, pixels.calibration[c_idx])
    views = None if pixels.views is None else pixels.views[g_idx]  # the gallery's rows as `gallery build` makes them
    embedded = None if views is None else embed_photos(form, run_dir, exported, views)[0]
    rows_of_gallery = _gallery_rows(gallery, embedded, options.gallery_views.clean_weight)
    result, rows = accuracy(queries, rows_of_gallery, q_labels, g_labels, (calibration, c_labels))
    fields = {"status": "ok", "accuracy": result.to_dict(), "items": len(g_idx), "queries": len(q_idx),
              "calibration_photos": len(c_idx), "subset": len(g_idx) < len(bench.gallery_labels),
              "sweep": [[r.threshold, r.precision, r.recall, r.f1] for r in rows]}
    regions = None, None  # the item regions text verification reads (per photo set; None: the whole photos)
    if rerank is not None:  # the matcher as it answers with this form: the best labels re-ranked locally
        ids = label_ids(g_labels)
        answered, answered_calibration = (queries, query_locals), (calibration, calibration_locals)
        if options.item_zoom and exported is not None:  # and its photos zoomed to their item, as the runtime's
            (*answered, q_regions), (*answered_calibration, c_regions) = zoomed(
                exported, rows_of_gallery, g_labels, gallery_locals,
                [(answered, [bench.query_paths[i] for i in q_idx]),
                 (answered_calibration, [bench.calibration_paths[i] for i in c_idx])])
            regions = q_regions, c_regions
            fields["item_zoom"] = True
        reranked = local_rerank(answered[0] @ rows_of_gallery.T, ids, answered[1], gallery_locals, rerank)
        reranked_calibration = local_rerank(answered_calibration[0] @ rows_of_gallery.T, ids, answered_calibration[1],
                                            gallery_locals, rerank)
        fields["reranked_accuracy"] = accuracy_of(reranked, q_labels, g_labels,
                                                  (reranked_calibration, c_labels))[0].to_dict()
    else:
        reranked, reranked_calibration = queries @ rows_of_gallery.T, calibration @ rows_of_gallery.T
    if ctx.texts is not None:  # then the printed text, as the matcher verifies it
        fields.update(_text_fields(ctx, g_idx, q_idx, c_idx, reranked, reranked_calibration, regions))
    if float_reference is not None and form == "torch-fp32":
        unrounded = accuracy(float_reference.queries, float_reference.rows, q_labels, g_labels,
                             (float_reference.calibration, c_labels))[0]
        fields["unrounded_accuracy"] = unrounded.to_dict()
    if float_reference is not None and form != "torch-fp32":
        fields["parity_float"] = parity(float_reference.gallery[g_idx], float_reference.queries[q_idx], gallery,
                                        queries)
    if reference is not None and form != "torch-fp32":
        ref_gallery, ref_queries = reference.gallery[g_idx], reference.queries[q_idx]
        fields["parity"] = parity(ref_gallery, ref_queries, gallery, queries)
        if fields["subset"]:
            same_images = accuracy(ref_queries, reference.rows[g_idx], q_labels, g_labels,
                                   (reference.calibration[c_idx], c_labels))[0]
            fields["reference_accuracy"] = same_images.to_dict()  # torch-fp32 on the same subset
    if exported is not None:
        fields["file_bytes"] = file_size(exported)
    return fields, Embedded(gallery, queries, rows_of_gallery, calibration), exported


def _text_fields(ctx: BenchContext, g_idx: np.ndarray, q_idx: np.ndarray, c_idx: np.ndarray,
                 answered: np.ndarray, answered_calibration: np.ndarray,
                 regions: tuple[list[PhotoRegion | None] | None, list[PhotoRegion | None] | None]) -> dict:
    """The accuracy with text verification on the matcher's scores (`answered`; each photo read in its item's
    region, where `regions` gives one per photo set), and the share of photos read."""
    bench, texts = ctx.bench, ctx.texts
    g_labels = [bench.gallery_labels[i] for i in g_idx]
    item_texts = texts.items([bench.gallery_paths[i] for i in g_idx])
    verified = []
    for scores, paths, photo_regions in ((answered, [bench.query_paths[i] for i in q_idx], regions[0]),
                                         (answered_calibration, [bench.calibration_paths[i] for i in c_idx],
                                          regions[1])):
        photos = texts.photos(paths, photo_regions)
        verified.append(verify_labelled(scores, g_labels, item_texts, photos.read))
        texts.keep(photos)
    (queries, read), (calibration, _) = verified
    result = accuracy_of(queries, [bench.query_labels[i] for i in q_idx], g_labels,
                         (calibration, [bench.calibration_labels[i] for i in c_idx]))[0]
    return {"text_accuracy": result.to_dict(), "text_read_share": float(read.mean()) if len(read) else 0.0}


def _measure_model(key: str, ctx: BenchContext, options: BenchOptions,
                   progress: Progress) -> tuple[list[dict], dict[str, Path]]:
    spec = MODEL_SPECS[key]
    base = {"tier": ctx.work.name, "model": key, "title": spec.title, "protocol": spec.protocol}
    task = progress.add_task(f"{ctx.work.name}: prepare {key}", total=None)
    try:
        run_dir = spec.prepare(ctx)
        params, flops = parameters_and_flops(run_dir)
    except NotAvailable as e:
        return [{**base, "form": form, "status": f"not available: {e}"} for form in options.forms], {}
    finally:
        progress.remove_task(task)
    if (run_dir / ENROLL_TIME_FILE).is_file():  # measured when the run was made, also when it is reused
        base["enroll_s"] = read_json(run_dir / ENROLL_TIME_FILE, "enrollment time")["seconds"]
    bench = ctx.bench
    run_config = read_run_config(run_dir)
    preprocess_spec = PreprocessSpec.from_dict(run_config["encoder"]["preprocess"])
    base.update(backbone=run_config["encoder"]["backbone"], embedding_dim=run_config["encoder"]["embedding_dim"],
                init=shipped_name(run_config.get("train", {}).get("init", run_config.get("bench_model", ""))),
                crop_mode=preprocess_spec.crop_description())
    task = progress.add_task(f"{ctx.work.name}: {key}: preprocess images", total=None)
    cache = ctx.work / "pixels"
    views = None
    if options.gallery_views.count:
        views = prepared_view_pixels(bench.gallery_paths, preprocess_spec, options.gallery_views, cache)
    pixels = Pixels(prepared_pixels(bench.gallery_paths, preprocess_spec, cache),
                    prepared_photo_pixels(bench.query_paths, preprocess_spec, cache),
                    prepared_photo_pixels(bench.calibration_paths, preprocess_spec, cache), views)
    progress.remove_task(task)
    if run_config.get("int8_rounding"):
        base["int8_rounding"] = run_config["int8_rounding"]
    records, onnx_files, reference = [], {}, None
    float_reference = _float_reference(run_dir, pixels, options.gallery_views.clean_weight)
    for form in options.forms:
        task = progress.add_task(f"{ctx.work.name}: {key} {form}", total=None)
        record = {**base, "form": form, "params": params, "flops": flops, "input_size": preprocess_spec.input_size}
        try:
            fields, embeddings, exported = _measure_form(form, run_dir, ctx, options, pixels, reference, key,
                                                         float_reference)
            record.update(fields)
            reference = embeddings if form == "torch-fp32" else reference
            if exported is not None and exported.suffix == ".onnx":  # the same architecture on every tier
                onnx_files[f"{key}/{form}"] = exported
        except NotAvailable as e:
            record["status"] = f"not available: {e}"
        except Exception as e:  # a merged piece that fails on this model: reported, never hidden
            record["status"] = f"failed: {type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else ''}"
        records.append(record)
        progress.remove_task(task)
    if key == TEACHER_KEY and f"{key}/onnx-fp32" not in onnx_files:  # the latency reference, always
        with contextlib.suppress(NotAvailable):
            onnx_files[f"{key}/onnx-fp32"] = export_form(  # type: ignore[assignment]
                "onnx-fp32", run_dir, _export_dir(ctx, key, run_dir), bench.gallery_dir,
                _same_exports(ctx, key, run_dir))
    return records, onnx_files


def run_benchmark(options: BenchOptions) -> dict:
    """Run everything; returns (and writes to <work>/results.json) the result document."""
    import torch

    started = time.monotonic()
    torch.manual_seed(options.config.seed)
    torch.set_num_threads(1)  # on a shared 2-core machine one thread is faster and steadier
    config = options.config
    folder = split_folder(options.work, config.split)
    folder.mkdir(parents=True, exist_ok=True)
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    records: list[dict] = []
    onnx_files: dict[str, Path] = {}
    with progress:
        tiers = build_benchmark(options.work, options.config, options.simulator, options.cache, progress)
        overall = progress.add_task("tiers x models", total=len(tiers) * len(options.models))
        tier_texts = []  # each tier's printed text, when text verification is measured
        for bench in tiers.values():
            texts = None
            if options.text_models is not None and text_available(options.text_models):
                texts = TierTexts(bench.gallery_dir.parent, options.text_models)
                tier_texts.append(texts)
            ctx = BenchContext(bench.gallery_dir.parent, bench, options.student_run, options.enroll_args, texts)
            for key in options.models:
                model_records, files = _measure_model(key, ctx, options, progress)
                records += model_records
                onnx_files.update(files)
                progress.advance(overall)
        latency_task = progress.add_task("onnxruntime latency (1 thread, batch 1)", total=None)
        latencies = onnx_latencies(onnx_files) if onnx_files else {}
        read = [photo for texts in tier_texts for photo in texts.read_photos()]
        text_ms = text_read_ms(read, options.text_models) if read else None
        progress.remove_task(latency_task)
    teacher_latency = latencies.get(f"{TEACHER_KEY}/onnx-fp32")
    for record in records:
        seconds = latencies.get(f"{record['model']}/{record['form']}")
        if seconds is not None:
            record["latency_s"] = seconds
            record["latency_vs_teacher"] = seconds / teacher_latency if teacher_latency else None
    document = {
        "benchmark": {"tiers": {tier: bench.summary() for tier, bench in tiers.items()},
                      "config": asdict(config), "split": config.split, "photo_seed": config.photo_seed,
                      "simulator": options.simulator.to_dict(), "calibration_seed": CALIBRATION_SEED,
                      "decision_calibration": f"`pocketvec data photos` of the gallery ({config.calibration_photos} "
                      f"per item, seed {CALIBRATION_SEED}, {DEFAULT_FRAMING} framing), embedded and re-ranked as the "
                      "benchmark's photos; scored on every benchmark photo of the tier",
                      "gallery_views": asdict(options.gallery_views),
                      "text_verification": {"models": options.text_models, "ms_per_read_photo": text_ms,
                                            "photos_timed": min(len(read), TEXT_TIMED_PHOTOS)}},
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(), "torch": torch.__version__, "threads": 1},
        "duration_s": round(time.monotonic() - started, 1),
        "results": records,
    }
    (folder / "results.json").write_text(json.dumps(document, indent=1, sort_keys=True))
    document["bench_sets"] = tiers  # not serialised: the report draws example photos from them
    return document
