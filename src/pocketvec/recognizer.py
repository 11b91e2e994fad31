"""The Python API in a few lines, torch-free (numpy, Pillow, onnxruntime):

    rec = pocketvec.Recognizer("items.onnx", "items.pvg")
    rec.match("photo.jpg")            # -> Recognition(answer="wine_07", accepted=True, score=0.83, ...)
    rec.enroll("new_items/")          # a folder (file or sub-folder name = label) or CSV
    rec.enroll("card.jpg", label="card_12")
    rec.save()                        # to items.pvg, under its lock, keeping other writers' rows

It prints nothing and draws no progress unless asked (progress=True); every call returns named
results. `enroll` blends each item's row with simulated phone photos of it (pocketvec.runtime.gallery.views:
numpy, OpenCV, albumentations; the latter imports torch where torch is installed, and the base install has
none); `views=NO_VIEWS` enrols the clean embeddings alone.
The accept rule is the gallery's, else the model's, else the uncalibrated default: `rec.calibrated`
says which, and `rec.calibrate("photos/")` chooses one on labelled photos. With the OCR models of the
`pocketvec[text]` extra installed, a new gallery keeps each item's printed text (`text=False`: not; `text=True`:
required), and look-alikes whose texts differ are then told apart by reading the photo
(pocketvec.runtime.text_verify); a gallery that keeps texts is verified by them unless `text=False`. Photos are
zoomed to their item before they are answered (pocketvec.runtime.item_zoom: a second pass on the region the local
maps locate; `item_zoom=False`: the first pass alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.file_kinds import real_path
from pocketvec.runtime.calibration import Calibration, calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import (
    EnrollReport,
    embed_labelled,
    enroll,
    gallery_text_models,
    item_boxes,
    open_gallery,
    query_layout,
)
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.item_rows import item_rows
from pocketvec.runtime.gallery.update import save_merged
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.images import content_hash
from pocketvec.runtime.item_zoom import ItemZoom, PhotoRegion
from pocketvec.runtime.matcher import UNKNOWN, Match, Matcher, resolve_rule, scores
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.printed_text import PhotoTexts, read_item_texts, text_verification
from pocketvec.runtime.progress import progress_bar
from pocketvec.runtime.text_reader import DEFAULT_MODELS
from pocketvec.runtime.text_verify import TextVerify
from pocketvec.runtime.zoomed_photos import zoom_to_items

ImageInput = str | Path | np.ndarray


@dataclass(frozen=True)
class Candidate:
    label: str
    score: float  # cosine similarity of the label's best gallery row


@dataclass(frozen=True)
class Recognition:
    """The answer for one photo: the accepted label, or "unknown"."""

    answer: str  # the label, or "unknown"
    accepted: bool
    score: float  # the best label's score
    margin: float  # best score - best other label's score (inf when the gallery holds one label)
    top: tuple[Candidate, ...]  # best first, one per label

    @property
    def label(self) -> str | None:
        """The accepted label, None for "unknown"."""
        return self.answer if self.accepted else None

    @classmethod
    def from_match(cls, match: Match) -> Recognition:
        top = tuple(Candidate(label, float(score)) for label, score in match.top)
        return cls(match.answer, match.accepted, top[0].score, float(match.margin), top)


class Recognizer:
    """An exported model and its gallery. `gallery` may name a file that does not exist yet: the
    recognizer then starts empty, and `save()` creates it, with `dtype` rows and `local_maps` full or compact
    (None: compact for int8 when the model carries a local codebook, runtime.gallery.store.resolve_local_maps)."""

    def __init__(self, model: str | Path, gallery: str | Path | None = None, *, dtype: str = "float32",
                 local_maps: str | None = None, engine: str = "auto", threads: int | None = None,
                 views: GalleryViews | None = None,
                 text: bool | None = None, text_models: str = DEFAULT_MODELS,
                 text_verify: TextVerify | None = None, item_zoom: ItemZoom | bool = True) -> None:
        self.engine = open_engine(model, engine, threads)
        # photos embedded again from their item's region (pocketvec.runtime.item_zoom; a model with a local
        # re-rank); True: the default settings, False: the first pass answers
        self.item_zoom = ItemZoom() if item_zoom is True else item_zoom or None
        self.views = views or GalleryViews()  # how enrolled images become gallery rows
        meta = self.engine.metadata
        self.gallery_path = Path(gallery) if gallery is not None else None
        if self.gallery_path is not None and self.gallery_path.exists():
            self.gallery = open_gallery(self.engine, self.gallery_path)
        else:
            self.gallery = Gallery.for_model(meta, dtype, local_maps=local_maps)
        self.text_models = text_verification(self.gallery, text, text_models)  # None: no text verification
        self.text_verify = text_verify or TextVerify()
        self._matcher: Matcher | None = None
        self._saved = set(self.gallery.sources)  # the rows the gallery file holds (as last read or written)
        self._rule_changed = False

    @property
    def rule(self) -> AcceptRule:
        return resolve_rule(self.gallery.accept_rule, self.engine.metadata.accept_rule)[0]

    @property
    def rule_source(self) -> str:
        """"gallery", "model", or "default" (never calibrated: its precision is unknown)."""
        return resolve_rule(self.gallery.accept_rule, self.engine.metadata.accept_rule)[1]

    @property
    def calibrated(self) -> bool:
        return self.rule_source != "default"

    @property
    def labels(self) -> list[str]:
        return sorted(set(self.gallery.labels))

    def embed(self, images: Sequence[ImageInput], batch_size: int = 32, progress: bool = False,
              query: bool = False) -> np.ndarray:
        """(N, dim) float32 unit vectors of items, or with `query` of photos to recognise (the model's query
        crop); a file that does not decode raises ImageLoadError naming it."""
        return self.engine.embed(list(images), batch_size, progress, query)

    def match(self, image: ImageInput, top_k: int = 3) -> Recognition:
        """Which enrolled item `image` (a path or an RGB uint8 array) shows, or "unknown"."""
        return self.match_many([image], top_k)[0]

    def match_many(self, images: Sequence[ImageInput], top_k: int = 3, progress: bool = False) -> list[Recognition]:
        if not len(images):
            return []
        found = self.engine.embed_all(list(images), progress=progress, query=True)
        found, regions = zoom_to_items(self.engine, self.gallery, found, list(images), self.item_zoom)
        matches = self._get_matcher().match_embedded(found, top_k, self._photo_texts(images, regions))
        return [Recognition.from_match(m) for m in matches]

    def enroll(self, images: ImageInput | Sequence[ImageInput], label: str | None = None,
               progress: bool = False) -> EnrollReport:
        """Add items. Without `label`: a folder or CSV whose layout names the labels. With `label`:
        one image (path or array) or a list of them, all of that item. Images already enrolled
        (same bytes) are reported in `skipped`, not added twice."""
        if label is None:
            if isinstance(images, (str, Path)) and (Path(images).is_dir() or Path(images).suffix.lower() == ".csv"):
                report = enroll(self.engine, self.gallery, images, progress=progress, views=self.views,
                                text_models=self.text_models)
            else:
                raise ConfigError("enroll(image, label=...) needs a label; only a folder or CSV names its own")
        else:
            batch = [images] if isinstance(images, (str, Path, np.ndarray)) else list(images)
            sources = [content_hash(x) if isinstance(x, (str, Path)) else _array_hash(x) for x in batch]
            with progress_bar(f"gallery rows ({self.views.count} photos per item)", len(batch),
                              enabled=progress) as advance:
                found, _ = item_rows(self.engine, [Path(x) if isinstance(x, str) else x for x in batch], self.views,
                                     sources, advance=advance)
            models = gallery_text_models(self.gallery, self.text_models)
            texts = None if models is None else read_item_texts(batch, models)
            added = self.gallery.add(found.embeddings, [label] * len(batch), sources, found.locals,
                                     self.engine.metadata, texts, models, item_boxes(self.engine, found))
            report = EnrollReport(added.added, added.skipped)
        self._matcher = None
        return report

    def calibrate(self, photos: str | Path, target_precision: float = 0.99, progress: bool = False) -> Calibration:
        """Choose the accept rule on labelled photos (folder per label or CSV; labels not enrolled are
        distractors) and keep it in the gallery (saved by `save()`)."""
        found = embed_labelled(self.engine, photos, progress=progress, layout=query_layout(photos), query=True)
        found, regions = zoom_to_items(self.engine, self.gallery, found, found.paths, self.item_zoom)
        similarity = scores(self.gallery, found.embeddings, found.locals, self.engine.metadata.local_rerank,
                            self._photo_texts(found.paths, regions))
        result = calibrate(similarity, found.labels, self.gallery.labels, target_precision)
        self.gallery.accept_rule = result.rule
        self._rule_changed = True
        self._matcher = None
        return result

    def save(self, path: str | Path | None = None) -> Path:
        """Write the gallery to `path`, or to the file it was opened from, as the CLI does: under the file's
        lock, re-read, with the rows enrolled here (and the rule calibrated here) added, so another writer's
        rows are kept. Saved to its own file, the recognizer then holds the file as written."""
        target = Path(path) if path is not None else self.gallery_path
        if target is None:
            raise ConfigError("save() needs a path: this recognizer was made without a gallery file")
        own = self.gallery_path is not None and real_path(target) == real_path(self.gallery_path)
        rows = [i for i, source in enumerate(self.gallery.sources) if source not in self._saved] if own else None
        saved = save_merged(target, self.gallery, self.engine.metadata, rows, keep_rule=self._rule_changed or not own)
        if own:
            self.gallery, self._saved, self._rule_changed, self._matcher = saved, set(saved.sources), False, None
        return target

    def _photo_texts(self, photos: Sequence[ImageInput], regions: list[PhotoRegion | None]) -> PhotoTexts | None:
        """The photos to read for text verification (each in its item's region, where zoom found one), None when
        it is off or the gallery keeps no text."""
        if self.text_models is None or not self.gallery.reads_text:
            return None
        return PhotoTexts(list(photos), self.text_models, self.text_verify, regions=regions)

    def _get_matcher(self) -> Matcher:
        if self.gallery.count == 0:
            raise GalleryError("the gallery is empty: enroll items first (Recognizer.enroll)")
        if self._matcher is None:
            self._matcher = Matcher.for_model(self.engine.metadata, self.gallery, self.rule)
        return self._matcher

    def __repr__(self) -> str:
        return (f"Recognizer({str(self.engine.path)!r}, {len(self.labels)} labels, "
                f"rule {self.rule.threshold:.2f}/{self.rule.margin:.2f} ({self.rule_source}))")


def _array_hash(array: np.ndarray) -> str:
    import hashlib

    data = np.ascontiguousarray(array)
    return "array:" + hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()


__all__ = ["UNKNOWN", "Candidate", "Recognition", "Recognizer"]
