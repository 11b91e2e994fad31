"""The gallery store: labelled embeddings of the registered items, tied to one model.

Rows are stored as fp32, fp16 or int8 (round(x * 127) of the unit vector, decoded as q / 127).
Each row remembers the sha256 of its source image, so enrolling the same image twice is detected
and reported instead of silently duplicated. Several images per label are allowed.
A loaded gallery's rows are views of its file (`file.read`); `write` appends the rows added since it was
loaded as one segment of the file (`segments`) when that is all that changed, and rewrites the file otherwise.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from pocketvec.checks import check_text
from pocketvec.errors import GalleryError
from pocketvec.file_kinds import refuse_special
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.gallery.coded import CodedMaps, encode_maps
from pocketvec.runtime.gallery.header import MAX_LABEL, MAX_TEXT
from pocketvec.runtime.gallery.rows import Rows
from pocketvec.runtime.gallery.segments import append_segment
from pocketvec.runtime.local_codebook import LocalCodebook
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.unit_norm import dequantize, to_int8
from pocketvec.runtime.weights_digest import short
from pocketvec.version import __version__

DTYPE_CHOICES = tuple(gallery_file.DTYPES)
# how rows keep their local maps: every location as float16, or the content box's checkerboard coded with the
# model's local codebook (gallery/coded.py)
LOCAL_MAPS_CHOICES = ("full", "compact")


def check_dtype(dtype: str) -> None:
    if not isinstance(dtype, str) or dtype not in gallery_file.DTYPES:
        raise GalleryError(f"gallery dtype must be one of {list(DTYPE_CHOICES)}. Got {dtype!r}.")


def quantize(unit_vectors: np.ndarray, dtype: str) -> np.ndarray:
    """Unit float vectors -> the stored form (int8 = round(x * 127), clipped to [-127, 127])."""
    check_dtype(dtype)
    if dtype == "int8":
        return to_int8(unit_vectors)
    return np.asarray(unit_vectors, dtype=np.float32).astype(gallery_file.DTYPES[dtype])


def model_local_shape(metadata: ModelMetadata) -> tuple[int, int] | None:
    """The (locations, channels) of a model's local maps, None without a local re-rank."""
    return metadata.local_rerank.shape if metadata.local_rerank else None


def model_codebook(metadata: ModelMetadata) -> LocalCodebook | None:
    return metadata.local_rerank.codebook if metadata.local_rerank else None


def resolve_local_maps(wanted: str | None, dtype: str, metadata: ModelMetadata) -> str:
    """How a new gallery keeps its local maps: `wanted`, or by default compact for an int8 gallery of a model
    with a local codebook (the small file is what int8 is for), full otherwise (float32 and float16 keep the
    exact maps: docs/lab/compact-local-maps.md measures the difference)."""
    if wanted is None:
        return "compact" if dtype == "int8" and model_codebook(metadata) is not None else "full"
    if wanted not in LOCAL_MAPS_CHOICES:
        raise GalleryError(f"local maps must be one of {list(LOCAL_MAPS_CHOICES)}. Got {wanted!r}.")
    if wanted == "compact" and model_codebook(metadata) is None:
        what = "has no local re-rank" if metadata.local_rerank is None else "carries no local codebook"
        raise GalleryError(f"compact local maps need the model's local codebook; this model {what} "
                           "(export it again from a run folder with local_codebook.safetensors), or use "
                           "--local-maps full")
    return wanted


@dataclass(frozen=True)
class Skipped:
    """One enrollment that was not added, and why."""

    label: str
    source: str  # sha256 of the image
    reason: str


@dataclass
class AddReport:
    added: int = 0
    skipped: list[Skipped] = field(default_factory=list)


@dataclass(frozen=True)
class Saved:
    """What a loaded gallery's file holds: its rows can be appended to it when nothing else changed."""

    path: Path
    version: int
    end: int  # the committed bytes
    parts: int  # the base and its appended segments
    labels: list[str]
    sources: list[str]
    accept_rule: AcceptRule | None
    text_reader: str | None


@dataclass
class Gallery:
    embedding_space_id: str
    dim: int
    dtype: str = "float32"
    labels: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    vectors: np.ndarray | None = None  # stored form, (count, dim)
    accept_rule: AcceptRule | None = None
    created_by: str = f"pocketvec {__version__}"
    local_shape: tuple[int, int] | None = None  # (locations, channels) for a model with a local re-rank
    # (count, locations, channels) float16 with local_shape (an array is wrapped), or compact maps (CodedMaps)
    locals: Rows | CodedMaps | None = None
    model_digest: str | None = None  # weights digest of the model that last added rows; None: unknown
    texts: list[str] | None = None  # the text printed on each row's image (runtime/text_verify.py), or None
    text_reader: str | None = None  # the OCR models that read `texts`
    saved: Saved | None = field(default=None, compare=False, repr=False)  # set by `load`

    def __post_init__(self) -> None:
        check_dtype(self.dtype)
        if self.vectors is None:
            self.vectors = np.zeros((0, self.dim), dtype=gallery_file.DTYPES[self.dtype])
        if self.local_shape is not None and self.locals is None:
            self.locals = np.zeros((0, *self.local_shape), dtype=gallery_file.LOCAL_DTYPE)
        if self.locals is not None and not isinstance(self.locals, (Rows, CodedMaps)):
            self.locals = Rows.of(np.asarray(self.locals, gallery_file.LOCAL_DTYPE))

    @property
    def count(self) -> int:
        return len(self.labels)

    def label_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.labels).items()))

    def embeddings(self) -> np.ndarray:
        """Decoded float32 rows (count, dim)."""
        return dequantize(self.vectors)

    @property
    def compact(self) -> bool:
        """Whether the rows keep compact local maps (content box + codes) rather than full float16 maps."""
        return isinstance(self.locals, CodedMaps)

    @property
    def reads_text(self) -> bool:
        """Whether the gallery keeps its items' printed text (for text verification)."""
        return self.texts is not None

    def add(self, embeddings: np.ndarray, labels: list[str], sources: list[str],
            locals_: np.ndarray | CodedMaps | None = None, model: ModelMetadata | None = None,
            texts: list[str] | None = None, text_reader: str | None = None,
            boxes: np.ndarray | None = None) -> AddReport:
        """Enroll rows (with their local maps when the gallery keeps them, and their printed text when it
        keeps texts); an image already enrolled (same sha256) is skipped and reported. `model`: the model
        that made the rows, whose weights digest the gallery then records. A compact gallery codes the maps
        with the model's codebook over each row's content box (`boxes` (N, 4), runtime/content_box.py), or
        takes rows another gallery coded with the same codebook (`locals_` a CodedMaps)."""
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != self.dim:
            raise GalleryError(f"embeddings must have shape (N, {self.dim}). Got {embeddings.shape}.")
        self._check_locals(locals_, len(embeddings))
        self._check_texts(texts, text_reader, len(embeddings))
        full_maps = None if locals_ is None or isinstance(locals_, CodedMaps) else np.asarray(locals_, np.float32)
        gallery_file.check_unit(embeddings, full_maps, "enroll",
                                "rows are L2-normalised embeddings, as a pocketvec model makes them")
        coded = self._coded(locals_, boxes, model, len(embeddings))
        if not (len(embeddings) == len(labels) == len(sources)):
            raise GalleryError(f"got {len(embeddings)} embeddings, {len(labels)} labels, {len(sources)} sources")
        known = dict(zip(self.sources, self.labels, strict=True))
        report, keep = AddReport(), []
        for i, (label, source) in enumerate(zip(labels, sources, strict=True)):
            check_text(f"row {i}: label", label, MAX_LABEL, error=GalleryError)
            if source in known:
                same = known[source] == label
                reason = (f"already enrolled as {label!r}" if same
                          else f"the same image is already enrolled as {known[source]!r}")
                report.skipped.append(Skipped(label, source, reason))
                continue
            known[source] = label
            keep.append(i)
        if keep:
            self.vectors = np.concatenate([self.vectors, quantize(embeddings[keep], self.dtype)])
            if coded is not None:
                picked = coded.select(keep)
                self.locals = self.locals.extend(picked.parts[0].boxes, picked.parts[0].codes)
            elif locals_ is not None:
                self.locals = self.locals.extend(np.asarray(locals_)[keep].astype(gallery_file.LOCAL_DTYPE))
            self.labels += [labels[i] for i in keep]
            self.sources += [sources[i] for i in keep]
            if texts is not None:
                self.texts = (self.texts or []) + [texts[i] for i in keep]
                self.text_reader = text_reader
            if model is not None:
                self.model_digest = model.weights_digest
        report.added = len(keep)
        return report

    def remove(self, label: str) -> int:
        """Remove every row of `label`; returns how many rows went."""
        keep = [i for i, row_label in enumerate(self.labels) if row_label != label]
        removed = self.count - len(keep)
        if removed == 0:
            raise GalleryError(f"label {label!r} is not in the gallery ({len(self.label_counts())} labels)")
        self.vectors = self.vectors[keep]
        if self.locals is not None:
            self.locals = self.locals.select(keep)  # views of the rows kept: nothing copied
        self.labels = [self.labels[i] for i in keep]
        self.sources = [self.sources[i] for i in keep]
        if self.texts is not None:
            self.texts = [self.texts[i] for i in keep]
        return removed

    def _coded(self, locals_: np.ndarray | CodedMaps | None, boxes: np.ndarray | None, model: ModelMetadata | None,
               rows: int) -> CodedMaps | None:
        """A compact gallery's new rows, coded (None for a gallery of full maps)."""
        if not self.compact:
            if isinstance(locals_, CodedMaps):
                raise GalleryError("this gallery keeps full local maps; rows with compact maps cannot join it")
            return None
        if isinstance(locals_, CodedMaps):
            if locals_.digest != self.locals.digest:
                raise GalleryError(f"rows coded with codebook {short(locals_.digest)} cannot join a gallery coded "
                                   f"with {short(self.locals.digest)}")
            return locals_
        codebook = None if model is None else model_codebook(model)
        if codebook is None or codebook.digest != self.locals.digest:
            raise GalleryError(f"this gallery codes its local maps with codebook {short(self.locals.digest)}: add rows "
                               "made by the model that carries it")
        if boxes is None or np.shape(boxes) != (rows, 4):
            raise GalleryError(f"compact local maps need each row's content box: expected ({rows}, 4), got "
                               f"{None if boxes is None else np.shape(boxes)}")
        box_bytes, codes = encode_maps(np.asarray(locals_), np.asarray(boxes), codebook)
        return CodedMaps.empty(codebook.subvectors, codebook.digest).extend(box_bytes, codes)

    def _check_texts(self, texts: list[str] | None, reader: str | None, rows: int) -> None:
        if self.texts is not None and texts is None:
            raise GalleryError("this gallery keeps each item's printed text (text verification): read the new "
                               "items' text too (pip install 'pocketvec[text]')")
        if texts is None:
            return
        if self.count and self.texts is None:
            raise GalleryError("this gallery keeps no printed text: its items were enrolled without reading it")
        if len(texts) != rows or not reader:
            raise GalleryError(f"got {len(texts)} texts for {rows} rows (and reader {reader!r})")
        for i, text in enumerate(texts):
            check_text(f"row {i}: text", text, MAX_TEXT, empty=True, error=GalleryError)

    def _check_locals(self, locals_: np.ndarray | None, rows: int) -> None:
        if self.local_shape is None:
            if locals_ is not None:
                raise GalleryError("this gallery keeps no local maps (it was made for a model without a local re-rank)")
            return
        if isinstance(locals_, CodedMaps) and len(locals_) == rows:
            return
        if locals_ is None or np.shape(locals_) != (rows, *self.local_shape):
            raise GalleryError(f"this gallery keeps each row's local map: expected ({rows}, {self.local_shape[0]}, "
                               f"{self.local_shape[1]}), got {None if locals_ is None else np.shape(locals_)}")
        if not np.isfinite(locals_).all():
            raise GalleryError("local maps must be finite")

    def local_maps(self, rows: np.ndarray | list[int] | None = None) -> np.ndarray | CodedMaps | None:
        """The local maps of `rows` (None: every row, the whole size in float32) as float32 (rows, locations,
        channels), or, for a compact gallery, those rows' compact maps (CodedMaps); None without maps."""
        if self.locals is None:
            return None
        if self.compact:
            return self.locals.select(range(self.count) if rows is None else rows)
        return (self.locals.copy() if rows is None else self.locals[rows]).astype(np.float32)

    def check_codebook(self, codebook: LocalCodebook | None, source: str = "gallery") -> None:
        """Refuse a compact gallery coded with another codebook than the model's (`codebook`)."""
        if self.compact:
            self.locals.decoder(codebook, source)

    def check_model(self, embedding_space_id: str, dim: int | None = None, source: str = "gallery",
                    local_shape: tuple[int, int] | str | None = "any") -> None:
        """Refuse a gallery made by another model: its embeddings live in another space; and one whose
        local maps do not fit the model's local re-rank (`local_shape` None: the model has none)."""
        if embedding_space_id != self.embedding_space_id:
            raise GalleryError(
                f"{source} was made by another model (embedding space {self.embedding_space_id}, "
                f"this model is {embedding_space_id}); rebuild it with `pocketvec gallery build`"
            )
        if dim is not None and dim != self.dim:
            raise GalleryError(f"{source}: gallery rows have {self.dim} values, the model makes {dim}; "
                               "rebuild it with `pocketvec gallery build`")
        if local_shape != "any" and local_shape != self.local_shape:
            has = f"local maps of {self.local_shape}" if self.local_shape else "no local maps"
            wants = f"local maps of {local_shape} (local re-rank)" if local_shape else "none (no local re-rank)"
            raise GalleryError(f"{source} holds {has}, the model makes {wants}; rebuild it with "
                               "`pocketvec gallery build`")

    def other_export_note(self, metadata: ModelMetadata, source: str = "gallery") -> str | None:
        """One line when another export of the same run built the gallery (same embedding space, other weights
        digest: int8 and fp32, say): its rows are in this model's space, so it is used, not refused. None when
        the digests agree, either is unknown, or the space differs (check_model refuses that)."""
        built, used = self.model_digest, metadata.weights_digest
        if built is None or used is None or built == used or metadata.embedding_space_id != self.embedding_space_id:
            return None
        return (f"{source} was built by another export of this model (weights {short(built)}, this model's "
                f"{short(used)}): same embedding space, so it is used as it is")

    def header(self) -> dict:
        """The file header of these rows."""
        header = {
            "embedding_space_id": self.embedding_space_id, "dim": self.dim, "count": self.count,
            "dtype": self.dtype, "labels": self.labels, "sources": self.sources,
            "accept_rule": asdict(self.accept_rule) if self.accept_rule else None, "created_by": self.created_by,
        }
        if self.local_shape is not None:
            header["local_shape"] = list(self.local_shape)
        if self.compact:
            header["local_codes"] = {"digest": self.locals.digest, "subvectors": self.locals.subvectors}
            header["coded_locations"] = self.locals.coded
        if self.model_digest is not None:
            header["model_digest"] = self.model_digest
        if self.texts is not None:
            header["texts"], header["text_reader"] = self.texts, self.text_reader
        return header

    def to_bytes(self) -> bytes:
        return gallery_file.encode(self.header(), self.vectors, self.locals)

    def save(self, path: str | Path) -> Path:
        """Write the whole gallery as one file (atomically, streamed a few MB at a time)."""
        return gallery_file.write_atomic(path, gallery_file.encode_parts(self.header(), self.vectors, self.locals))

    def appendable(self, path: str | Path) -> bool:
        """Whether `write(path)` appends: the gallery was loaded from `path` (the current version) and has only
        gained rows since (and perhaps a model digest)."""
        saved, n = self.saved, 0 if self.saved is None else len(self.saved.labels)
        return (saved is not None and saved.version == gallery_file.VERSION and saved.path == Path(path).resolve()
                and self.count > n and self.labels[:n] == saved.labels and self.sources[:n] == saved.sources
                and self.accept_rule == saved.accept_rule and self.text_reader == saved.text_reader)

    def write(self, path: str | Path) -> int:
        """Save to the file this gallery was loaded from, under its lock (runtime.gallery.update): the rows added
        since as one appended segment when that is all that changed, else the whole file. -> bytes written."""
        if not self.appendable(path):
            self.save(path)
            return Path(path).stat().st_size
        n = len(self.saved.labels)
        header = {"count": self.count - n, "labels": self.labels[n:], "sources": self.sources[n:]}
        if self.texts is not None:
            header["texts"] = self.texts[n:]
        if self.model_digest is not None:
            header["model_digest"] = self.model_digest
        added = None if self.locals is None else self.locals.select(range(n, self.count))
        if isinstance(added, CodedMaps):
            header["coded_locations"] = added.coded
        maps = () if added is None else added.chunks()
        return append_segment(Path(path), self.saved.end, header, self.vectors[n:], maps)

    @classmethod
    def for_model(cls, metadata: ModelMetadata, dtype: str = "float32", accept_rule: AcceptRule | None = None,
                  local_maps: str | None = None) -> Gallery:
        """An empty gallery tied to a model (its space, dim, local maps and weights digest); `local_maps`: full
        or compact (None: `resolve_local_maps`'s default for `dtype`)."""
        compact = model_local_shape(metadata) is not None and resolve_local_maps(local_maps, dtype,
                                                                                  metadata) == "compact"
        codebook = model_codebook(metadata)
        maps = CodedMaps.empty(codebook.subvectors, codebook.digest) if compact else None
        return cls(metadata.embedding_space_id, metadata.embedding_dim, dtype, accept_rule=accept_rule,
                   local_shape=model_local_shape(metadata), locals=maps, model_digest=metadata.weights_digest)

    @classmethod
    def load_for(cls, path: str | Path, metadata: ModelMetadata) -> Gallery:
        """Load a gallery and refuse it unless the model of `metadata` made it (and, for compact local maps,
        carries the codebook that coded them)."""
        gallery = cls.load(path, metadata.embedding_space_id, metadata.embedding_dim, model_local_shape(metadata))
        gallery.check_codebook(model_codebook(metadata), str(path))
        return gallery

    @classmethod
    def load(cls, path: str | Path, embedding_space_id: str | None = None, dim: int | None = None,
             local_shape: tuple[int, int] | str | None = "any") -> Gallery:
        """Read and verify a `.pvg`; with `embedding_space_id` (`dim`, `local_shape`), refuse a foreign gallery."""
        path = Path(path)
        refuse_special(path, GalleryError)
        if not path.is_file():
            raise GalleryError(f"{path}: no such gallery file")
        try:
            decoded = gallery_file.read(path)
        except OSError as e:
            raise GalleryError(f"{path}: cannot read the gallery ({e.strerror or e})") from e
        header = decoded.header
        saved = Saved(path.resolve(), decoded.version, decoded.committed_end, decoded.parts, list(header["labels"]),
                      list(header["sources"]), decoded.accept_rule, header.get("text_reader"))
        gallery = cls(header["embedding_space_id"], header["dim"], header["dtype"], list(header["labels"]),
                      list(header["sources"]), decoded.vectors, decoded.accept_rule, header["created_by"],
                      tuple(header["local_shape"]) if "local_shape" in header else None, decoded.locals,
                      header.get("model_digest"), header.get("texts"), header.get("text_reader"), saved)
        if embedding_space_id is not None:
            gallery.check_model(embedding_space_id, dim, str(path), local_shape)
        return gallery
