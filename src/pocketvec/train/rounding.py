"""What rounding onto the int8 grid cost a run: recorded in its config as `int8_rounding`.

The float weights are kept next to the shipped ones (checkpoint.FLOAT_WEIGHTS_FILE); the record says
where, how many weight tensors were rounded and, with a held-out set, decision recall / Recall@1 of both.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from pocketvec.train.checkpoint import FLOAT_WEIGHTS_FILE, embedding_space_id, save_run, save_weights
from pocketvec.train.evaluate import HeldOut, evaluate
from pocketvec.train.keep_best import on_grid


def rounded_tensors(float_model: nn.Module, rounded_model: nn.Module) -> int:
    """How many weight tensors the rounding changed."""
    rounded = rounded_model.state_dict()
    return sum(not torch.equal(value, rounded[name]) for name, value in float_model.state_dict().items())


def rounding_record(float_model: nn.Module, rounded_model: nn.Module, held_out: HeldOut | None,
                    rounded_metrics: dict[str, Any] | None) -> dict[str, Any]:
    """The config's `int8_rounding` entry. `rounded_metrics`: the held-out numbers of the kept (rounded)
    weights, already measured by the training loop; the float weights are scored here."""
    record: dict[str, Any] = {"float_weights": FLOAT_WEIGHTS_FILE,
                              "float_embedding_space_id": embedding_space_id(float_model),
                              "rounded_weights": rounded_tensors(float_model, rounded_model)}
    if held_out is not None:
        rounded_metrics = rounded_metrics or evaluate(rounded_model, held_out)
        measured = evaluate(float_model, held_out)
        keys = ("decision_recall", "recall_at_1")
        record["held_out"] = {"float": {key: measured[key] for key in keys},
                              "rounded": {key: rounded_metrics[key] for key in keys},
                              "queries": len(held_out.photo_labels)}
    return record


def save_on_grid(run_dir: str | Path, float_model: nn.Module, extra: dict[str, Any],
                 held_out: HeldOut | None = None, rounded_metrics: dict[str, Any] | None = None) -> Path:
    """Write a run folder that ships `float_model` rounded onto the int8 grid, its float weights kept
    next to it (FLOAT_WEIGHTS_FILE) and the rounding's record in the config (`int8_rounding`)."""
    run_dir = Path(run_dir)
    rounded = on_grid(float_model, True)
    save_weights(run_dir / FLOAT_WEIGHTS_FILE, float_model)
    record = rounding_record(float_model, rounded, held_out, rounded_metrics)
    return save_run(run_dir, rounded, {**extra, "int8_rounding": record})
