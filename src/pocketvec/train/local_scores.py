"""The teacher's local re-rank scores, cached next to a teacher-photo cache, and the cached steps that carry
them with the clean renderings of their classes.

The matcher decides between look-alikes by the stride-16 maps (pocketvec.runtime.local_rerank); the
embedding distillation trains a student's maps only through its pooled embedding. For each cached step,
`build_local_scores` scores every photo against the clean rendering of each of the step's classes with the
runtime's local score on the teacher's own map, and stores the (photos, classes) matrix under
`local_scores/` in the cache folder. A student trained with `local_distill_weight` scores the same pairs
on its maps and matches the teacher's softmax (pocketvec.train.losses.local_match.LocalDistillLoss).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from pocketvec.atomic import atomic_output
from pocketvec.data.items import load_items
from pocketvec.errors import ConfigError, DatasetError, ModelFileError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.batches import Batch, BatchMaker
from pocketvec.train.config import TrainConfig
from pocketvec.train.losses.local_match import local_similarity_matrix
from pocketvec.train.photo_cache import CachedSteps, PhotoCache

SCORES_DIR = "local_scores"


def scores_path(folder: Path, step: int) -> Path:
    return folder / SCORES_DIR / f"{step:06d}.safetensors"


def step_classes(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A step's classes in order of first appearance, and each photo's index into them."""
    index: dict[int, int] = {}
    slots = [index.setdefault(label, len(index)) for label in labels.tolist()]
    return torch.tensor(list(index), dtype=torch.int64), torch.tensor(slots, dtype=torch.int64)


def clean_views(maker: BatchMaker, classes: torch.Tensor, spec: PreprocessSpec | None = None) -> torch.Tensor:
    """(K, 3, S, S) float32 0-255: the clean renderings of `classes`, as the gallery sees them."""
    return torch.from_numpy(np.stack([maker.clean_view(c, spec) for c in classes.tolist()])).permute(0, 3, 1, 2)


def build_local_scores(config: TrainConfig, data: str | Path, folder: str | Path) -> Path:
    """Score every cached step's photos against its classes' clean renderings on the cache's teacher's
    stride-16 map; steps already scored are kept (an interrupted build resumes)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from pocketvec.train.parts import local_settings
    from pocketvec.train.teachers import RunTeacher, load_teacher

    folder = Path(folder)
    cache, items = PhotoCache(folder), load_items(data)
    cache.check_pool(config, items)
    teacher = load_teacher(cache.spec.teacher)
    if teacher.teacher_id != cache.spec.teacher_id:
        raise ConfigError(f"{folder}: cached with teacher weights {cache.spec.teacher_id}, "
                          f"{cache.spec.teacher!r} is now {teacher.teacher_id}")
    if not isinstance(teacher, RunTeacher) or not teacher.model.has_local_stage():
        raise ConfigError(f"{folder}: local scores need a pocketvec teacher with a stride-16 map; "
                          f"{cache.spec.teacher!r} has none")
    model, size = teacher.model, cache.spec.photo_size
    maker = BatchMaker(items, config.policy, size, config.batch_classes, config.views_per_class, cache.spec.seed,
                       merge_identical=config.merge_identical_classes)
    cache.check_classes(maker.num_classes)
    local, spec = local_settings(model), model.config.preprocess  # its input size is the photos'
    todo = [step for step in range(cache.spec.steps) if not scores_path(folder, step).is_file()]
    columns = [TextColumn("[bold]local scores"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns) as progress, torch.no_grad():
        task = progress.add_task("scores", total=cache.spec.steps, completed=cache.spec.steps - len(todo))
        for step in todo:
            batch = cache.batch(step, size)
            classes = step_classes(batch.labels)[0]
            clean_maps = model.local_maps(clean_views(maker, classes, spec).float())
            scores = local_similarity_matrix(model.local_maps(batch.pixels), clean_maps, local)
            with atomic_output(scores_path(folder, step)) as tmp:
                save_file({"classes": classes, "scores": scores.contiguous()}, str(tmp))
            progress.advance(task)
    return folder


def read_local_scores(folder: Path, step: int, classes: torch.Tensor) -> torch.Tensor:
    """The teacher's (photos, classes) local scores of a cached step, checked against its classes."""
    path = scores_path(folder, step)
    if not path.is_file():
        raise DatasetError(f"{path}: missing local scores; add them with `pocketvec train cache --local-scores`")
    try:
        entry = load_file(str(path))
        stored, scores = entry["classes"], entry["scores"]
    except Exception as e:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: damaged local scores ({e}); delete it and rerun "
                             "`pocketvec train cache --local-scores`") from e
    if not torch.equal(stored, classes) or scores.shape[1] != len(classes):
        raise ModelFileError(f"{path}: local scores of other classes than the cached step {step}; delete "
                             f"{path.parent} and rerun `pocketvec train cache --local-scores`")
    return scores.float()


class StepsWithClassViews(torch.utils.data.Dataset):
    """Cached steps, each with its classes' clean renderings as the student's gallery sees them (the
    maker's clean spec) and, when asked, the teacher's local scores of its photos against them."""

    def __init__(self, steps: CachedSteps, maker: BatchMaker, teacher_scores: bool) -> None:
        self.steps, self.maker, self.teacher_scores = steps, maker, teacher_scores

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> Batch:
        step = self.steps.step_of(index)
        batch = self.steps.cache.batch(step, self.steps.input_size)
        classes, batch.class_slot = step_classes(batch.labels)
        batch.class_views = clean_views(self.maker, classes).float()
        if self.teacher_scores:
            cache = self.steps.cache
            batch.teacher_local = read_local_scores(cache.folder, step % cache.spec.steps, classes)
        return batch

