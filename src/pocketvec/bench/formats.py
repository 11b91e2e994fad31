"""One model, several deployable forms: PyTorch fp32, ONNX fp32/int8/w8a8, Core ML int8 (interpreter).

Each form exports through the export package and embeds through the runtime's engines, exactly as a
user would; a form whose export code is not merged yet raises NotAvailable.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pocketvec.atomic import atomic_output, replace_folder, staging_folder
from pocketvec.bench.code_id import code_id
from pocketvec.bench.models import NotAvailable
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.views import GalleryViews, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.photo_crops import fuse_crops
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch

FORMATS = ("torch-fp32", "onnx-fp32", "onnx-int8", "onnx-w8a8", "coreml-int8")
ONNX_QUANTIZE = {"onnx-fp32": "none", "onnx-int8": "int8", "onnx-w8a8": "w8a8"}  # w8a8 calibrates on the gallery
GALLERY_CALIBRATED = ("onnx-w8a8",)  # the forms whose export depends on the tier's gallery


def exporter_id() -> str:
    """A short hash of pocketvec's export code and of the runtime code whose defaults it writes into the
    metadata: an export cached by another exporter is not reused."""
    import pocketvec.export
    import pocketvec.runtime.local_rerank
    import pocketvec.runtime.metadata

    return code_id(pocketvec.export, pocketvec.runtime.metadata, pocketvec.runtime.local_rerank)


def export_form(form: str, run_dir: Path, out_dir: Path, calibration_dir: Path,
                same_exports: Sequence[Path] = ()) -> Path | None:
    """The exported file of `form` (None for torch-fp32), made once and reused. `same_exports`: folders of the
    same weights' exports by the same exporter for other galleries (the other tiers'); a form that does not
    calibrate on the gallery is copied from there when one holds it (the exports are deterministic)."""
    if form == "torch-fp32":
        return None
    out_dir.mkdir(parents=True, exist_ok=True)
    if form in FORMATS and form not in GALLERY_CALIBRATED:
        copied = _copy_export(form, out_dir, same_exports)
        if copied is not None:
            return copied
    if form.startswith("onnx-"):
        out = out_dir / f"{form}.onnx"
        if out.is_file():
            return out
        try:
            from pocketvec.export.onnx_export import export_onnx
        except ImportError as e:
            if form != "onnx-fp32":
                raise NotAvailable(f"int8 ONNX export is not merged yet ({e})") from e
            from pocketvec.export.onnx_export import export_onnx_fp32
            from pocketvec.train.checkpoint import load_run

            return export_onnx_fp32(load_run(run_dir), out)
        return export_onnx(run_dir, out, quantize=ONNX_QUANTIZE[form], calibration_dir=calibration_dir)
    if form == "coreml-int8":
        out = out_dir / f"{form}.mlpackage"
        if out.exists():
            return out
        try:
            from pocketvec.export.coreml_export import export_coreml
        except ImportError as e:
            raise NotAvailable(f"Core ML export is not merged yet ({e})") from e
        return export_coreml(run_dir, out, quantize="int8", calibration_dir=calibration_dir)
    raise NotAvailable(f"unknown form {form!r}; valid: {', '.join(FORMATS)}")


def _copy_export(form: str, out_dir: Path, same_exports: Sequence[Path]) -> Path | None:
    """`form`'s file in `out_dir` (kept when there, else copied from the first of `same_exports` that holds
    it); None when neither holds it."""
    name = f"{form}.mlpackage" if form.startswith("coreml-") else f"{form}.onnx"
    out = out_dir / name
    if out.exists():
        return out
    source = next((folder / name for folder in same_exports if (folder / name).exists()), None)
    if source is None:
        return None
    if source.is_dir():
        with staging_folder(out) as staged:
            shutil.copytree(source, staged)
            replace_folder(staged, out)
    else:
        with atomic_output(out) as tmp:
            shutil.copyfile(source, tmp)
    return out


def _open_engine(path: Path, threads: int | None = None):
    try:
        from pocketvec.runtime.engines import open_engine
    except ImportError as e:
        raise NotAvailable(f"runtime engines are not merged yet ({e})") from e
    return open_engine(path, threads=threads)  # onnxruntime, or the Core ML interpreter for .mlpackage


def prepared_pixels(paths: list[Path], spec: PreprocessSpec, cache_dir: Path) -> np.ndarray:
    """(N, S, S, 3) uint8: the runtime's preprocessing of every image, done once per spec and cached.

    Preprocessing is idempotent (an S x S input comes out unchanged), so the models' forms all see
    exactly the pixels the runtime would feed them.
    """
    return _cached(cache_dir, [spec.to_dict(), _identities(paths)],
                   lambda: np.stack([preprocess(load_image(p), spec) for p in paths]))


def prepared_photo_pixels(paths: list[Path], spec: PreprocessSpec, cache_dir: Path) -> np.ndarray:
    """(N, crops, S, S, 3) uint8: every photo cropped with each of the spec's query crops (prepared_pixels)."""
    return np.stack([prepared_pixels(paths, queries, cache_dir) for queries in spec.query_specs()], axis=1)


def prepared_view_pixels(paths: list[Path], spec: PreprocessSpec, views: GalleryViews, cache_dir: Path) -> np.ndarray:
    """(N, views.count, crops, S, S, 3) uint8: the gallery views of every image (pocketvec.runtime.gallery.views),
    cropped as the runtime crops photos (each query crop), made once per spec and cached."""
    specs = spec.query_specs()

    def make() -> np.ndarray:
        return np.stack([[[preprocess(photo, queries) for queries in specs]
                          for photo in view_photos(load_image(p), content_hash(p), views, spec.input_size)]
                         for p in paths])

    crops = specs[0].to_dict() if len(specs) == 1 else [queries.to_dict() for queries in specs]
    pixels = _cached(cache_dir, ["views", views.count, views.aspect, crops, _identities(paths)], make)
    return pixels.reshape(len(paths), views.count, len(specs), *pixels.shape[-3:])


def _identities(paths: list[Path]) -> list[list[str]]:
    """Each image's path and bytes: a photo rebuilt under its old name (another framing) is prepared again."""
    return [[str(p), content_hash(p)] for p in paths]


def _cached(cache_dir: Path, identity: list, make) -> np.ndarray:
    key = hashlib.sha256(json.dumps(identity).encode()).hexdigest()[:16]
    cached = cache_dir / f"pixels-{key}.npy"
    if cached.is_file():
        return np.load(cached, allow_pickle=False)
    pixels = make()
    cache_dir.mkdir(parents=True, exist_ok=True)
    with atomic_output(cached) as tmp, open(tmp, "wb") as f:
        np.save(f, pixels, allow_pickle=False)
    return pixels


def embed_torch(run_dir: Path, pixels: np.ndarray, batch_size: int = 32, weights_file: str | None = None) -> np.ndarray:
    """(N, dim) embeddings from the PyTorch model (`weights_file`: another weights file of the run, such
    as the trained float weights of an int8_grid run)."""
    from pocketvec.train.checkpoint import WEIGHTS_FILE, load_run

    return _torch_outputs(load_run(run_dir, weights_file or WEIGHTS_FILE).eval(), pixels, batch_size, False)[0]


def _torch_outputs(model, pixels: np.ndarray, batch_size: int,
                   with_locals: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Embeddings (and local maps) of preprocessed NHWC pixels, `batch_size` at a time."""
    import torch

    from pocketvec.train.evaluate import embed_batches

    batches = (torch.from_numpy(to_batch(list(pixels[start : start + batch_size])))
               for start in range(0, len(pixels), batch_size))
    return embed_batches(model, batches, with_locals)


def embed_photos(form: str, run_dir: Path, exported: Path | None,
                 photos: np.ndarray) -> tuple[np.ndarray, np.ndarray | None, LocalRerank | None]:
    """embed_form for photos prepared once per query crop, (..., crops, S, S, 3): one fused embedding (and
    local map) per photo, as the runtime's engines make them (pocketvec.runtime.photo_crops)."""
    embeddings, maps, rerank = embed_form(form, run_dir, exported, photos.reshape(-1, *photos.shape[-3:]))
    return *fuse_crops(embeddings, maps, photos.shape[-4]), rerank


def embed_form(form: str, run_dir: Path, exported: Path | None, pixels: np.ndarray,
               batch_size: int = 32) -> tuple[np.ndarray, np.ndarray | None, LocalRerank | None]:
    """(N, dim) embeddings of preprocessed pixels through one form (the runtime engine for exports), their
    local maps and the form's local re-rank (the PyTorch form: the export's defaults; None without one)."""
    if form == "torch-fp32":
        from pocketvec.export.source import local_rerank_of
        from pocketvec.train.checkpoint import load_run

        model = load_run(run_dir).eval()
        if not model.has_local_stage():  # a backbone without a stride-16 stage
            return *_torch_outputs(model, pixels, batch_size, False), None
        return *_torch_outputs(model, pixels, batch_size, True), local_rerank_of(model)
    assert exported is not None
    engine = _open_engine(exported, threads=1)
    outputs = [engine.run_outputs(pixels[start : start + batch_size]) for start in range(0, len(pixels), batch_size)]
    rerank = engine.metadata.local_rerank
    maps = np.concatenate([local for _, local in outputs]).astype(np.float32) if rerank else None
    return np.concatenate([embedding for embedding, _ in outputs]).astype(np.float32), maps, rerank


def zoomed(exported: Path, rows: np.ndarray, labels: list[str], maps: np.ndarray,
           photo_sets: list[tuple[tuple[np.ndarray, np.ndarray], list[Path]]]
           ) -> list[tuple[np.ndarray, np.ndarray, list[PhotoRegion | None]]]:
    """Each set of photos' first-pass (embeddings, local maps), with each photo zoomed to its item as the runtime
    does (pocketvec.runtime.zoomed_photos) through the exported file's engine, against the benchmark's gallery
    rows (and their local maps) held as an in-memory gallery of that model; with each photo's region (None: not
    zoomed), which text verification reads."""
    from pocketvec.runtime.engines.base import EmbedResult
    from pocketvec.runtime.item_zoom import ItemZoom
    from pocketvec.runtime.zoomed_photos import zoom_to_items

    engine = _open_engine(exported, threads=1)
    gallery = Gallery.for_model(engine.metadata, "float32")
    gallery.add(rows, labels, [f"{label}#{i}" for i, label in enumerate(labels)], maps, engine.metadata)
    found = [zoom_to_items(engine, gallery, EmbedResult(embeddings, locals=photo_maps), paths, ItemZoom())
             for (embeddings, photo_maps), paths in photo_sets]
    return [(result.embeddings, result.locals, regions) for result, regions in found]
