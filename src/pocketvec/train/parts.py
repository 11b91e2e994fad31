"""The pieces the training loop is assembled from: LR schedule, trainable-parameter selection, the
per-step batch dataset, the loss modules, and class-centre imprinting."""

from __future__ import annotations

import contextlib
import fnmatch
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from pocketvec.errors import ConfigError
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.adapters import add_adapters
from pocketvec.train.batches import BatchMaker
from pocketvec.train.config import TrainConfig
from pocketvec.train.evaluate import embed
from pocketvec.train.losses.distill import DistillationLoss
from pocketvec.train.losses.local_match import LocalDistillLoss, LocalMatchLoss
from pocketvec.train.losses.metric import CenterLoss, TripletPairLoss
from pocketvec.train.losses.partial_fc import PartialFC


def warmup_cosine(total_steps: int, warmup_fraction: float):
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def select_trainable(model: nn.Module, config: TrainConfig) -> None:
    """Adapters (if any) plus the encoder parameters matching `config.trainable` are trained."""
    if config.adapters.kind != "none":
        add_adapters(model, config.adapters)
    for name, param in model.named_parameters():
        wanted = any(fnmatch.fnmatchcase(name, pattern) for pattern in config.trainable)
        param.requires_grad_(("lora_" in name) or (wanted and ".base_layer." not in name))
    if not any(p.requires_grad for p in model.parameters()):
        raise ConfigError(f"nothing to train: trainable patterns {list(config.trainable)} match no parameter "
                          "and there are no adapters")


# channels_last on every device. Measured for Lite0 at 224 px: 2.4x the images/s on an H100 (bf16); on a
# 2-core CPU (oneDNN) 0.89 s instead of 1.09 s per enroll step, 19 instead of 39 ms per eval image.
MEMORY_FORMAT = torch.channels_last


@contextlib.contextmanager
def single_threaded_opencv(enabled: bool) -> Iterator[None]:
    """One OpenCV thread while data-loader processes run (they are the parallelism). Set in the parent
    before the processes fork: calling cv2.setNumThreads inside a forked child can deadlock."""
    import cv2

    before = cv2.getNumThreads()
    if enabled:
        cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


class StepBatches(torch.utils.data.Dataset):
    """Steps [start, stop) of this rank: rank r of w reads batch number step * w + r."""

    def __init__(self, maker: BatchMaker, start: int, stop: int, rank: int, world: int) -> None:
        self.maker, self.start, self.stop, self.rank, self.world = maker, start, stop, rank, world

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, index: int):
        return self.maker((self.start + index) * self.world + self.rank)


def build_losses(cfg: TrainConfig, classes: int, teacher, cached_teacher_dim: int = 0,
                 local: LocalRerank | None = None) -> nn.ModuleDict:
    """The loss modules of a config (their parameters are trained with the encoder's). With cached teacher
    embeddings (`cached_teacher_dim`), the distillation term is built without the teacher; `local` (the
    model's re-rank settings) is needed when the config weighs the local maps."""
    dim = cfg.encoder.embedding_dim
    losses = nn.ModuleDict()
    if cfg.loss in ("margin", "center"):
        losses["partial_fc"] = PartialFC(dim, classes, cfg.margin, cfg.sample_rate)
    if cfg.loss == "center":
        losses["center"] = CenterLoss(classes, dim)
    if cfg.loss == "triplet":
        losses["triplet"] = TripletPairLoss()
    if teacher is not None:
        probe = teacher.outputs(torch.zeros(1, 3, teacher.input_size, teacher.input_size))
        classes_out = probe["logits"].shape[1] if "logits" in probe else 0
        losses["distill"] = DistillationLoss(dim, probe["embedding"].shape[1], cfg.distill_temperature,
                                             classes_out, cfg.kd_temperature, cfg.kd_weight, cfg.distill_align_weight)
    elif cached_teacher_dim and cfg.distill_weight > 0:
        losses["distill"] = DistillationLoss(dim, cached_teacher_dim, cfg.distill_temperature,
                                             align_weight=cfg.distill_align_weight)
    if (cfg.local_weight > 0 or cfg.local_distill_weight > 0) and local is None:
        raise ConfigError("local_weight and local_distill_weight need a backbone with a stride-16 stage (the local "
                          "re-rank's map)")
    if cfg.local_weight > 0:
        losses["local_match"] = LocalMatchLoss(local)
    if cfg.local_distill_weight > 0:
        losses["local_distill"] = LocalDistillLoss(local, cfg.distill_temperature)
    return losses


def class_embeddings(maker: BatchMaker, model: nn.Module, spec: PreprocessSpec, classes: range,
                     chunk: int = 512) -> np.ndarray:
    """The model's embeddings of the clean renderings of `classes` (pseudo-class ids), (len, D)."""
    device, rows = next(model.parameters()).device, []
    for start in range(classes.start, classes.stop, chunk):  # in chunks: 100k classes of pixels would not fit
        rows.append(embed(model, maker.clean_views(range(start, min(classes.stop, start + chunk)), spec).to(device)))
    return np.concatenate(rows)


def imprint_centres(pfc: PartialFC, embeddings: np.ndarray) -> None:
    """Weight imprinting: each local class centre starts at the student's embedding of the clean
    rendering of its pseudo-class (`embeddings`: class_embeddings of this process's classes, pfc.class_start
    onwards), so the margin loss starts from the right neighbourhood."""
    with torch.no_grad():
        pfc.weight.copy_(torch.from_numpy(embeddings).to(pfc.weight))
