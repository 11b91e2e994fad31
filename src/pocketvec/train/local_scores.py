"""The teacher's local re-rank scores, cached next to a teacher-photo cache, and the cached steps that carry
them with the clean renderings of the classes they score.

The matcher decides between look-alikes by the stride-16 maps (pocketvec.runtime.local_rerank); the
embedding distillation trains a student's maps only through its pooled embedding. `build_local_scores`
gives every cached photo candidates as the runtime's re-rank has them: its own class and the classes whose
clean renderings the teacher embeds nearest to it (the look-alikes the re-rank must tell apart), and stores
the teacher's local score of the photo against each under `local_scores/` in the cache folder. A student
trained with `local_distill_weight` scores the same pairs on its maps and matches the teacher's softmax
(pocketvec.train.losses.local_match.LocalDistillLoss).
"""

from __future__ import annotations

from pathlib import Path

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
CANDIDATES = 4  # each photo's own class and the teacher's 3 nearest other classes


def scores_path(folder: Path, step: int) -> Path:
    return folder / SCORES_DIR / f"{step:06d}.safetensors"


def step_classes(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The distinct classes of `labels` in order of first appearance, and each label's index into them."""
    index: dict[int, int] = {}
    slots = [index.setdefault(label, len(index)) for label in labels.flatten().tolist()]
    return torch.tensor(list(index), dtype=torch.int64), torch.tensor(slots, dtype=torch.int64).view(labels.shape)


def class_maps_and_neighbours(model: torch.nn.Module, maker: BatchMaker, spec: PreprocessSpec, neighbours: int,
                              chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's stride-16 maps of every class's clean rendering ((N, P, C), float16) and each class's
    `neighbours` nearest other classes by the model's embedding of them ((N, neighbours))."""
    maps, embeddings, count = [], [], maker.num_classes
    for start in range(0, count, chunk):
        embedding, local = model.forward_with_locals(maker.clean_views(range(start, min(count, start + chunk)), spec))
        embeddings.append(embedding)
        maps.append(local.half())
    rows, nearest = torch.cat(embeddings), []
    for start in range(0, count, chunk):
        similarity = rows[start:start + chunk] @ rows.T
        own = torch.arange(start, min(count, start + chunk))
        similarity[own - start, own] = -torch.inf
        nearest.append(similarity.topk(neighbours, dim=1).indices)
    return torch.cat(maps), torch.cat(nearest)


def build_local_scores(config: TrainConfig, data: str | Path, folder: str | Path, candidates: int = CANDIDATES) -> Path:
    """Score every cached photo against its candidates on the cache's teacher's stride-16 map; steps already
    scored are kept (an interrupted build resumes)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from pocketvec.train.evaluate import local_settings
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
    todo = [step for step in range(cache.spec.steps) if not scores_path(folder, step).is_file()]
    if not todo:
        return folder
    local = local_settings(model)
    with torch.no_grad():  # the teacher's input size is the photos': its own preprocess renders the classes
        maps, nearest = class_maps_and_neighbours(model, maker, model.config.preprocess,
                                                  min(candidates, maker.num_classes) - 1)
    columns = [TextColumn("[bold]local scores"), BarColumn(), TextColumn("{task.completed}/{task.total} steps"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns) as progress, torch.no_grad():
        task = progress.add_task("scores", total=cache.spec.steps, completed=cache.spec.steps - len(todo))
        for step in todo:
            batch = cache.batch(step, size)
            ids = torch.cat([batch.labels[:, None], nearest[batch.labels]], dim=1)
            scores = local_similarity_matrix(model.local_maps(batch.pixels), maps[ids].float(), local)
            with atomic_output(scores_path(folder, step)) as tmp:
                save_file({"candidates": ids.contiguous(), "scores": scores.contiguous()}, str(tmp))
            progress.advance(task)
    return folder


def read_local_scores(folder: Path, step: int, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The candidate classes (B, k) of a cached step's photos, their own class first, and the teacher's
    local scores of them (B, k)."""
    path = scores_path(folder, step)
    if not path.is_file():
        raise DatasetError(f"{path}: missing local scores; add them with `pocketvec train cache --local-scores`")
    try:
        entry = load_file(str(path))
        candidates, scores = entry["candidates"], entry["scores"]
    except Exception as e:  # safetensors raises its own error types
        raise ModelFileError(f"{path}: damaged local scores ({e}); delete it and rerun "
                             "`pocketvec train cache --local-scores`") from e
    if candidates.shape != scores.shape or not torch.equal(candidates[:, 0], labels):
        raise ModelFileError(f"{path}: local scores of other photos than the cached step {step}; delete "
                             f"{path.parent} and rerun `pocketvec train cache --local-scores`")
    return candidates, scores.float()


class StepsWithClassViews(torch.utils.data.Dataset):
    """Cached steps, each with the clean renderings (as the student's gallery sees them: the maker's clean
    spec) of its classes, or with `teacher_scores`, of its photos' candidates, with the teacher's scores."""

    def __init__(self, steps: CachedSteps, maker: BatchMaker, teacher_scores: bool) -> None:
        self.steps, self.maker, self.teacher_scores = steps, maker, teacher_scores

    def __len__(self) -> int:
        return len(self.steps)

    def __getitem__(self, index: int) -> Batch:
        step, cache = self.steps.step_of(index), self.steps.cache
        batch = self.steps[index]
        candidates = batch.labels[:, None]
        if self.teacher_scores:
            candidates, batch.teacher_local = read_local_scores(cache.folder, step % cache.spec.steps, batch.labels)
        classes, slots = step_classes(candidates)
        batch.class_views, batch.class_slot = self.maker.clean_views(classes.tolist()), slots[:, 0]
        batch.candidate_slot = slots if self.teacher_scores else None
        return batch
