"""`verify_models`: each exported file against the PyTorch fp32 model on real images.

Two kinds of figures (export.parity), both on the runtime's path (export.answers), the PyTorch model going through
the same runtime code (export.torch_engine): the embeddings and local maps of the first pass (the images embedded
as photos, each whole, with the model's query crops), and the answers (top-1, decision, decision with text) as the
runtime gives them, each photo zoomed to its item. A file without a local re-rank has no zoom: its images are
cropped as items for both, as before.

A run trained with `int8_grid` ships weights rounded onto the int8 grid and keeps its trained float
weights next to them: every file is then compared with both, one row per reference. The exit status
(`passed`) judges the files against the shipped weights, the model they are exported from;
`passed_against_float` says whether they also meet the bars against the trained float model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.table import Table

from pocketvec.errors import ModelFileError
from pocketvec.export.answers import answers, text_checks
from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.parity import (
    DEFAULT_THRESHOLD,
    SHIPPED,
    TRAINED_FLOAT,
    Answers,
    Outputs,
    ParityRow,
    compare,
    row_dict,
)
from pocketvec.export.source import load_export_source
from pocketvec.export.torch_engine import TorchEngine
from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.metadata import INPUT_NAME, LOCAL_NAME, OUTPUT_NAME, ModelMetadata
from pocketvec.runtime.progress import progress_bar
from pocketvec.safe_text import safe
from pocketvec.train.checkpoint import load_float_reference
from pocketvec.train.evaluate import embed_batches

MAX_IMAGES = 256
CAPTION = ("max |Δ|, cos: the first pass (each photo whole); top-1, decision: the answers as the runtime gives them "
           "(zoomed to the item where the file re-ranks; zoomed: the photos the file answers from a region, "
           "regions: those whose region agrees with PyTorch's)")


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@dataclass
class ParityReport:
    run_dir: str
    images: int
    threshold: float
    margin: float
    rows: list[ParityRow]

    @property
    def passed(self) -> bool:
        """Every file meets its bars against the shipped weights (the exit status of `pocketvec verify`)."""
        return all(row.passed for row in self.rows if row.reference == SHIPPED)

    @property
    def passed_against_float(self) -> bool | None:
        """Every file meets its bars against the trained float weights; None when the run has none."""
        rows = [row for row in self.rows if row.reference == TRAINED_FLOAT]
        return all(row.passed for row in rows) if rows else None

    def to_json(self) -> str:
        return json.dumps({"run_dir": self.run_dir, "images": self.images, "threshold": self.threshold,
                           "margin": self.margin, "passed": self.passed,
                           "passed_against_float": self.passed_against_float,
                           "models": [row_dict(r) for r in self.rows]}, indent=2)

    def reference_label(self, reference: str) -> str:
        if self.passed_against_float is None:
            return "shipped = trained float"  # no rounding: one reference
        return "shipped (int8 grid)" if reference == SHIPPED else "trained float (unrounded)"

    def table(self) -> Table:
        table = Table(title=f"parity vs PyTorch fp32 ({self.images} images, threshold {self.threshold:.2f})",
                      caption=CAPTION)
        text = any(r.text_decision_agreement is not None for r in self.rows)
        zoom = any(r.zoomed is not None for r in self.rows)
        for column in ("model", "kind", "against", "max |Δ|", "mean cos", "min cos", "local cos", "top-1", "decision",
                       *(["decision+text"] if text else []), *(["zoomed", "regions"] if zoom else []), "result"):
            words = column in ("model", "kind", "against", "result")  # these wrap in a narrow terminal; numbers never
            table.add_column(column, justify="left" if words else "right", overflow="fold", no_wrap=not words)
        for r in self.rows:
            table.add_row(safe(r.model), f"{r.format} {r.kind}", self.reference_label(r.reference),
                          f"{r.max_abs_diff:.2e}", f"{r.mean_cosine:.6f}", f"{r.min_cosine:.6f}",
                          "-" if r.local_mean_cosine is None else f"{r.local_mean_cosine:.6f}",
                          f"{r.top1_agreement:.1%}",
                          f"{r.decision_agreement:.1%}",
                          *([f"{r.text_decision_agreement:.1%}"] if text else []),
                          *([_share(r.zoomed), _share(r.region_agreement)] if zoom else []),
                          "[green]pass[/]" if r.passed else f"[red]FAIL: {safe('; '.join(r.failures))}[/]")
        return table


def onnx_kind(path: Path) -> str:
    import onnx

    from pocketvec.runtime.onnx_options import is_weight_only_int8

    proto = onnx.load(str(path), load_external_data=False)
    ops = {node.op_type for node in proto.graph.node}
    if ops & {"QuantizeLinear", "QLinearConv"}:
        return "w8a8"  # activations quantized too
    if is_weight_only_int8(ops):
        return "int8"
    return "fp16" if any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer) else "fp32"


def coreml_kind(program) -> str:
    from pocketvec.runtime.mil.proto import load_spec

    types = {op.type for f in load_spec(program.path).mlProgram.functions.values()
             for b in f.block_specializations.values() for op in b.operations}
    if "quantize" in types:
        return "w8a8"
    if any(t.startswith("constexpr_") for t in types):
        return "int8"
    return "fp16" if "cast" in types else "fp32"


def checked_metadata(path: Path, metadata: ModelMetadata, space_id: str) -> ModelMetadata:
    """The file's metadata; a file exported from other weights than the run's (embedding-space ids differ)
    is refused."""
    if metadata.embedding_space_id != space_id:
        raise ModelFileError(f"{path}: exported from other weights (embedding space "
                             f"{metadata.embedding_space_id}, the run's {space_id})")
    return metadata


@dataclass(frozen=True)
class FileRun:
    """One exported file's outputs for a batch of pixels."""

    format: str
    kind: str
    embeddings: np.ndarray
    locals: np.ndarray | None  # with a local re-rank in the metadata
    metadata: ModelMetadata


def open_file(path: Path, space_id: str) -> Engine:
    """The runtime's engine for one exported file (Core ML: the program interpreter, on any machine; the runtime's
    session options for ONNX: what is verified is what the runtime runs), refused when exported from other
    weights than the run's."""
    if path.suffix == ".onnx":
        from pocketvec.runtime.engines.onnx_engine import OnnxEngine

        engine: Engine = OnnxEngine(path)
    elif path.suffix == ".mlpackage":
        from pocketvec.runtime.engines.coreml_engine import InterpreterEngine

        engine = InterpreterEngine(path)
    else:
        raise ModelFileError(f"{path}: not an exported model (expected .onnx or .mlpackage)")
    checked_metadata(path, engine.metadata, space_id)
    return engine


def file_outputs(engine: Engine, pixels: np.ndarray) -> FileRun:
    """An opened file's outputs for `pixels` (NCHW float32 0-255); Core ML in the precision of its kind."""
    metadata = engine.metadata
    if engine.path.suffix == ".onnx":
        names = [OUTPUT_NAME, LOCAL_NAME] if metadata.local_rerank else [OUTPUT_NAME]
        runs = [engine.session.run(names, {INPUT_NAME: pixels[i : i + 16]})  # type: ignore[attr-defined]
                for i in range(0, len(pixels), 16)]
        outputs = [np.concatenate([run[k] for run in runs]) for k in range(len(names))]
        return FileRun("onnx", onnx_kind(engine.path), outputs[0], outputs[1] if len(outputs) > 1 else None,
                       metadata)
    program = engine.program  # type: ignore[attr-defined]
    kind = coreml_kind(program)
    outputs = program.predict_outputs(pixels, "fp16" if kind == "fp16" else "fp32")
    local = outputs[LOCAL_NAME] if metadata.local_rerank else None
    return FileRun("coreml", kind, outputs[OUTPUT_NAME], local, metadata)


def embed_with(path: Path, pixels: np.ndarray, space_id: str) -> FileRun:
    """One exported file's outputs for `pixels`."""
    return file_outputs(open_file(path, space_id), pixels)


def torch_outputs(model: torch.nn.Module, pixels: np.ndarray, gallery_pixels: np.ndarray | None) -> Outputs:
    """PyTorch's embeddings and, when the backbone has a stride-16 stage, local maps (forward_with_locals
    computes the same embeddings as forward) of the queries and of the gallery (None: the queries), each
    in one batch."""
    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        return embed_batches(model, [torch.from_numpy(images)], model.has_local_stage())

    queries = run(pixels)
    gallery = run(gallery_pixels) if gallery_pixels is not None else queries
    return Outputs(queries[0], gallery[0], queries[1], gallery[1])


def verify_models(run_dir: str | Path, model_paths: list[str | Path], images_dir: str | Path,
                  gallery_dir: str | Path | None = None, text: bool = False) -> ParityReport:
    """Compare every file in `model_paths` with the run's PyTorch model on the images of `images_dir`:
    with the shipped weights and, when the run kept them (int8_grid), with the trained float weights.

    Gallery: the images of `gallery_dir` (embedded as items), else the query images themselves (leave-one-out).
    The query images are embedded as photos: the embeddings and local maps are compared on this first pass (each
    image whole); top-1 and decisions on the answers as the runtime gives them, each photo zoomed to its item
    (export.answers), PyTorch's through the same runtime code. A file without a local re-rank: no zoom, the
    images cropped as items for both.
    Decisions use the run's accept rule (threshold, margin), else DEFAULT_THRESHOLD. With `text` (the OCR models
    of the `pocketvec[text]` extra), the decisions with text verification are compared too.
    """
    paths = [Path(p) for p in model_paths]
    for path in paths:
        if not path.exists():
            raise ModelFileError(f"{path}: no such model file")
    model, metadata = load_export_source(run_dir)
    models = {SHIPPED: model}
    float_model = load_float_reference(run_dir)
    if float_model is not None:
        models[TRAINED_FLOAT] = float_model
    query_paths = list_images(images_dir, MAX_IMAGES)
    gallery_paths = list_images(gallery_dir, MAX_IMAGES) if gallery_dir else query_paths
    item_pixels = load_batch(gallery_paths, metadata.preprocess)  # the gallery images, cropped as items
    if text:
        from pocketvec.runtime.text_reader import find_models

        find_models()  # raises, naming the extra, when the OCR models are not installed
    check = text_checks(query_paths, gallery_paths) if text else None
    rule = metadata.accept_rule
    threshold, margin = (rule.threshold, rule.margin) if rule else (DEFAULT_THRESHOLD, 0.0)
    leave_one_out = gallery_dir is None
    items = {name: torch_outputs(weights, item_pixels, None) for name, weights in models.items()}
    reference_answers: dict[tuple[str, str], tuple[Outputs, Answers]] = {}  # by reference and answering settings
    rows = []
    with progress_bar("verifying", len(paths)) as advance:  # stderr, on a terminal only: stdout is the report
        for path in paths:
            engine = open_file(path, metadata.embedding_space_id)
            gallery = file_outputs(engine, item_pixels)
            if gallery.embeddings.shape != items[SHIPPED].gallery.shape:
                raise ModelFileError(f"{path}: outputs {gallery.embeddings.shape}, "
                                     f"the run's model {items[SHIPPED].gallery.shape}")
            candidate, file_answers = answers(engine, (gallery.embeddings, gallery.locals), query_paths,
                                              leave_one_out, check)
            rerank = engine.metadata.local_rerank
            for name, item_outputs in items.items():
                # the gallery's local maps only for a file that re-ranks (plain cosine: the embeddings alone)
                reference_items = item_outputs.gallery, item_outputs.gallery_locals if rerank else None
                key = (name, answering_key(engine.metadata))
                if key not in reference_answers:
                    reference_answers[key] = answers(TorchEngine(models[name], engine.metadata), reference_items,
                                                     query_paths, leave_one_out, check)
                reference, ref_answers = reference_answers[key]
                rows.append(compare(path.name, gallery.format, gallery.kind, reference, candidate,
                                    (ref_answers, file_answers), leave_one_out, threshold, margin,
                                    reference_name=name, local_rerank=rerank))
            advance(1)
    return ParityReport(str(run_dir), len(query_paths), threshold, margin, rows)


def answering_key(metadata: ModelMetadata) -> str:
    """What PyTorch's answers depend on in a file's metadata: its preprocessing and local re-rank."""
    rerank = metadata.local_rerank
    return json.dumps([metadata.preprocess.to_dict(), rerank.to_dict() if rerank else None], sort_keys=True,
                      default=str)
