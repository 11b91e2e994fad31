"""The documented range of every number a user types or a file holds, in one table: the checks (CLI
options, --set, --config, model metadata, gallery headers), their messages and --help all read it.
Integers are compared exactly (pocketvec.checks.check_number), never through a float."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pocketvec.checks import check_number, number_text
from pocketvec.errors import ConfigError, PocketvecError

MAX_COUNT = 10**9  # epochs, steps, workers: "no limit" in practice, but an integer of bounded size
MAX_DIM = 65536  # an embedding's length in a model's metadata or a gallery


@dataclass(frozen=True)
class Range:
    """A closed range [low, high]; `integer` ranges take ints only."""

    low: float
    high: float
    integer: bool = False

    def check(self, name: str, value: Any, error: type[PocketvecError] = ConfigError) -> None:
        check_number(name, value, self.low, self.high, self.integer, error)

    def __str__(self) -> str:
        return f"{'an integer' if self.integer else 'a number'} in [{number_text(self.low)}, {number_text(self.high)}]"


def _counts(low: int, *names: str) -> dict[str, Range]:
    return {name: Range(low, MAX_COUNT, integer=True) for name in names}


# training settings, by their key in --set and --config (TrainConfig checks each of these)
TRAIN_RANGES: dict[str, Range] = {
    **_counts(1, "epochs", "batch_classes", "views_per_class", "checkpoint_every"),
    **_counts(0, "steps_per_epoch", "eval_views", "early_stopping_patience", "workers", "max_steps", "threads",
              "lookalike_group", "evaluations"),
    "seed": Range(0, 2**31 - 1, integer=True),
    "sample_rate": Range(0.0, 1.0), "lr": Range(0.0, 10.0), "weight_decay": Range(0.0, 10.0),
    "warmup_fraction": Range(0.0, 1.0), "grad_clip": Range(0.0, 1e6), "center_weight": Range(0.0, 1e6),
    "distill_weight": Range(0.0, 1e6), "distill_temperature": Range(0.0, 1e6), "distill_align_weight": Range(0.0, 1e6),
    "kd_weight": Range(0.0, 1e6), "kd_temperature": Range(0.0, 1e6), "time_limit_s": Range(0.0, 1e9),
    "clean_view_fraction": Range(0.0, 1.0), "wise_alpha": Range(0.0, 1.0), "local_weight": Range(0.0, 1e6),
    "local_distill_weight": Range(0.0, 1e6), "preserve_weight": Range(0.0, 1e6),
    "budget_s": Range(0.0, 7 * 24 * 3600.0),
}

RANGES: dict[str, Range] = {
    **TRAIN_RANGES,
    "encoder.embedding_dim": Range(8, 8192, integer=True),  # a trained encoder's (its head is dim x dim)
    "encoder.dropout": Range(0.0, 1.0),  # and < 1
    "preprocess.input_size": Range(32, 1024, integer=True),  # px: training, exports, model metadata
    "preprocess.mean": Range(0.0, 1.0),  # of pixels scaled to [0, 1]
    "preprocess.std": Range(1e-3, 10.0),
    "dim": Range(1, MAX_DIM, integer=True),  # embedding_dim in model metadata, dim in a gallery header
    "count": Range(0, 2**31, integer=True),  # a gallery's rows
    "accept_rule.threshold": Range(-2.0, 2.0),  # beyond ±1: never / always
    "accept_rule.margin": Range(0.0, 2.0),
    "port": Range(0, 65535, integer=True),  # 0: a free port
}
SEED = RANGES["seed"]  # every --seed: training, data photos and preview, demo, bench, data pool
