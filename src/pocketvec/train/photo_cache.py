"""Teacher embeddings per simulated photo, computed once and stored on disk, so a student can train
against a frozen teacher on a CPU without running the teacher (or the photo simulator) again.

A cache folder holds `cache.json` (teacher, photo size, pool digest, pseudo-classes, batch shape) and
one safetensors file per training step under `steps/`: the step's simulated photos (uint8 NCHW at the
teacher's input size), their pseudo-class labels and the teacher's L2-normalised embeddings. Steps are
the training batches of (seed, step) (pocketvec.train.batches), so a relational loss sees the same
class-grouped batches the live loop would. Building is resumable: finished steps are kept.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from pocketvec.atomic import atomic_output, write_bytes_atomic
from pocketvec.bounded_json import read_json
from pocketvec.data.items import ItemDataset, load_items
from pocketvec.errors import ConfigError, DatasetError, ModelFileError
from pocketvec.runtime.images import content_hash
from pocketvec.train.batches import Batch, BatchMaker, kept_side
from pocketvec.train.config import TrainConfig

CACHE_FILE = "cache.json"
STEPS_DIR = "steps"
FORMAT = "pocketvec-teacher-photos"
VERSION = 1


@dataclass(frozen=True)
class CacheSpec:
    teacher: str  # the teacher's name or folder, as the training config gives it
    teacher_id: str  # the teacher's weights (Teacher.teacher_id)
    photo_size: int  # the teacher's input size: photos are stored at it
    embedding_dim: int
    steps: int
    batch_size: int
    num_classes: int
    pool_digest: str  # items, labels, pseudo-class policy: a cache only serves the pool it was built from
    seed: int
    format: str = FORMAT
    version: int = VERSION


def pool_digest(items: ItemDataset, policy: str, merge_identical: bool) -> str:
    """Identity of a training pool as the pseudo-classes see it: file contents, labels and policy."""
    rows = sorted((entry.label, content_hash(entry.path)) for entry in items)
    return hashlib.sha256(json.dumps([policy, merge_identical, rows]).encode()).hexdigest()[:16]


def step_path(folder: Path, step: int) -> Path:
    return folder / STEPS_DIR / f"{step:06d}.safetensors"


def read_spec(folder: str | Path) -> CacheSpec:
    path = Path(folder) / CACHE_FILE
    if not path.is_file():
        raise DatasetError(f"{folder}: not a teacher-photo cache (no {CACHE_FILE}); build one with "
                           "`pocketvec train cache`")
    data: dict[str, Any] = read_json(path, "teacher-photo cache description", DatasetError)
    try:
        spec = CacheSpec(**data)
    except (ValueError, TypeError) as e:
        raise DatasetError(f"{path}: unreadable teacher-photo cache description ({e})") from e
    if spec.format != FORMAT or spec.version != VERSION:
        raise DatasetError(f"{path}: format {spec.format!r} v{spec.version}, expected {FORMAT!r} v{VERSION}")
    return spec


class PhotoCache:
    """Read side: the cached batch of a step, photos resized to the student's input size."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.spec = read_spec(self.folder)

    def check_pool(self, config: TrainConfig, items: ItemDataset) -> None:
        """Refuse a cache built from another pool, pseudo-class policy or teacher than the config's."""
        if config.teacher and config.teacher != self.spec.teacher:
            raise ConfigError(f"{self.folder}: cache of teacher {self.spec.teacher!r}, the config names "
                              f"{config.teacher!r}")
        if pool_digest(items, config.policy, config.merge_identical_classes) != self.spec.pool_digest:
            raise ConfigError(f"{self.folder}: built from another pool or pseudo-class policy than "
                              f"{items.root} with policy {config.policy!r}")

    def source_side(self) -> int:
        """The side the builder kept the items fit within: a BatchMaker given it numbers the pseudo-classes
        as the cached labels do, whatever the student's input size."""
        return kept_side(self.spec.photo_size)

    def check_classes(self, num_classes: int) -> None:
        if num_classes != self.spec.num_classes:
            raise ConfigError(f"{self.folder}: cached labels of {self.spec.num_classes} pseudo-classes, the pool "
                              f"gives {num_classes} here; rebuild the cache with this version of pocketvec")

    def batch(self, step: int, input_size: int) -> Batch:
        """The cached batch of `step` (modulo the cache's steps) at `input_size`. Each repeat past the first
        pass gets a seeded light jitter (a crop of 85-100 % of the side, brightness x0.85-1.15) that barely
        moves the teacher's embedding, so a small cache is not shown identical pixels every epoch."""
        path = step_path(self.folder, step % self.spec.steps)
        if not path.is_file():
            raise DatasetError(f"{path}: missing cached step; finish the cache with `pocketvec train cache`")
        try:
            entry = load_file(str(path))
            pixels, labels, embedding = entry["pixels"], entry["labels"], entry["embedding"]
        except Exception as e:  # safetensors raises its own error types
            raise ModelFileError(f"{path}: damaged cached step ({e}); delete it and rerun "
                                 "`pocketvec train cache`") from e
        size, n = self.spec.photo_size, self.spec.batch_size
        if (pixels.dtype != torch.uint8 or tuple(pixels.shape) != (n, 3, size, size)
                or tuple(labels.shape) != (n,) or tuple(embedding.shape) != (n, self.spec.embedding_dim)):
            raise ModelFileError(f"{path}: cached step with unexpected tensors (pixels {tuple(pixels.shape)} "
                                 f"{pixels.dtype}, labels {tuple(labels.shape)}, embedding {tuple(embedding.shape)})")
        photos = pixels.float()
        if step >= self.spec.steps:
            photos = jitter(photos, step, input_size)
        elif size != input_size:
            photos = resize(photos, input_size)
        return Batch(photos, labels.long(), torch.empty(0), [], embedding.float())


def resize(photos: torch.Tensor, size: int) -> torch.Tensor:
    return F.interpolate(photos, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def jitter(photos: torch.Tensor, step: int, size: int) -> torch.Tensor:
    """One seeded crop (85-100 % of the side, anywhere) and brightness factor per photo, at `size` px."""
    rng = np.random.default_rng([step, 7])
    full = photos.shape[-1]
    out = []
    for photo in photos:
        side = round(full * rng.uniform(0.85, 1.0))
        top, left = rng.integers(0, full - side + 1, 2)
        out.append(resize(photo[None, :, top:top + side, left:left + side], size)[0])
    brightness = torch.from_numpy(rng.uniform(0.85, 1.15, (len(out), 1, 1, 1))).float()
    return (torch.stack(out) * brightness).clamp(0, 255)


class CachedSteps(torch.utils.data.Dataset):
    """Steps [start, stop) of this rank from a cache; the cache repeats once its steps are used up."""

    def __init__(self, cache: PhotoCache, input_size: int, start: int, stop: int, rank: int, world: int) -> None:
        self.cache, self.input_size = cache, input_size
        self.start, self.stop, self.rank, self.world = start, stop, rank, world

    def __len__(self) -> int:
        return self.stop - self.start

    def step_of(self, index: int) -> int:
        return (self.start + index) * self.world + self.rank

    def __getitem__(self, index: int) -> Batch:
        return self.cache.batch(self.step_of(index), self.input_size)


def build_photo_cache(config: TrainConfig, data: str | Path, out: str | Path, steps: int,
                      workers: int = 0) -> Path:
    """Simulate `steps` training batches at the teacher's input size, embed them with the frozen teacher
    (config.teacher) and store both; steps already on disk are kept (an interrupted build resumes)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from pocketvec.train.parts import StepBatches, single_threaded_opencv
    from pocketvec.train.teachers import load_teacher

    if not config.teacher:
        raise ConfigError("a teacher-photo cache needs a teacher (--teacher NAME or --set teacher=...)")
    if steps < 1:
        raise ConfigError(f"--steps must be >= 1. Got {steps!r}.")
    out = Path(out)
    items = load_items(data)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher = load_teacher(config.teacher).to(device)
    maker = BatchMaker(items, config.policy, teacher.input_size, config.batch_classes, config.views_per_class,
                       config.seed, config.augment, config.backgrounds, 0, config.merge_identical_classes)
    probe = teacher(torch.zeros(1, 3, teacher.input_size, teacher.input_size, device=device))
    spec = CacheSpec(config.teacher, teacher.teacher_id, teacher.input_size, int(probe.shape[1]), steps,
                     maker.batch_classes * maker.views_per_class, maker.num_classes,
                     pool_digest(items, config.policy, config.merge_identical_classes), config.seed)
    if (out / CACHE_FILE).is_file():
        old = read_spec(out)
        if {**asdict(old), "steps": steps} != asdict(spec):
            raise ConfigError(f"{out}: holds a cache of another teacher, pool or batch shape; choose another --out")
    (out / STEPS_DIR).mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(out / CACHE_FILE, json.dumps(asdict(spec), indent=2).encode())
    todo = [step for step in range(steps) if not step_path(out, step).is_file()]
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(StepBatches(maker, 0, steps, 0, 1), todo),
                                         batch_size=None, num_workers=workers)
    columns = [TextColumn("[bold]teacher cache"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with single_threaded_opencv(workers > 0), Progress(*columns) as progress:
        task = progress.add_task("cache", total=steps, completed=steps - len(todo))
        for step, batch in zip(todo, loader, strict=True):
            pixels = batch.pixels.round().clamp(0, 255).to(torch.uint8).contiguous()
            entry = {"pixels": pixels, "labels": batch.labels.to(torch.int64).contiguous(),
                     "embedding": teacher(pixels.to(device).float()).cpu().contiguous()}  # the photo as stored
            with atomic_output(step_path(out, step)) as tmp:
                save_file(entry, str(tmp))
            progress.advance(task)
    return out

