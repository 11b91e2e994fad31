"""The safety net of fine-tuning: score the weights that would ship, keep the best, never ship worse.

Every held-out evaluation (pocketvec.train.evaluate: the gallery as `gallery build` makes it, validation
photos with the query crop, the re-rank, decision recall first) scores a *shipped copy* of the model
(adapters merged, weights rounded onto the int8 grid when the run ends there, blended with the start when
the run asks for a weight-space ensemble), so the start and every epoch are compared as the file a user
would export. The start counts as epoch 0: when no epoch beats it, the run ends on the start weights.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import nn

from pocketvec.int8_grid import round_to_int8_grid
from pocketvec.train.adapters import merge_adapters
from pocketvec.train.evaluate import DECISION_PRECISION, score_key


def merged_copy(model: nn.Module) -> nn.Module:
    """A plain, frozen eval copy of `model` with its adapters merged: the trained float weights."""
    merged = merge_adapters(copy.deepcopy(model)).eval()
    for param in merged.parameters():
        param.requires_grad_(False)
    return merged


def blend(trained: nn.Module, start: nn.Module, alpha: float) -> nn.Module:
    """WiSE-FT (Wortsman et al., 2022), in place: every float tensor of `trained` (weights and BatchNorm
    statistics) becomes start + alpha * (trained - start). Fine-tuning on a few hundred items fits the
    training photos' look; halfway back towards the start keeps what the start knew of other photos."""
    if alpha == 1.0:
        return trained
    start_state = start.state_dict()
    for name, tensor in trained.state_dict().items():
        if tensor.is_floating_point():
            tensor.copy_(start_state[name].to(tensor.device).lerp(tensor, alpha))
    return trained


def on_grid(merged: nn.Module, int8_grid: bool) -> nn.Module:
    """`merged` as it ships: a copy rounded onto the int8 grid if asked, else `merged` itself."""
    if not int8_grid:
        return merged
    rounded = copy.deepcopy(merged)
    round_to_int8_grid(rounded)
    return rounded


def better(metrics: dict[str, Any], than: dict[str, Any]) -> bool:
    """Held-out decision recall decides; Recall@1 breaks ties (pocketvec.train.evaluate.score_key)."""
    return score_key(metrics) > score_key(than)


def describe(metrics: dict[str, Any], kept_epoch: float) -> str:
    """One progress line per held-out evaluation."""
    name = "start" if metrics["epoch"] == 0 else f"epoch {metrics['epoch']}"
    return (f"{name}: held-out decision recall {metrics['decision_recall']:.3f} at precision >= "
            f"{DECISION_PRECISION}  Recall@1 {metrics['recall_at_1']:.3f}  mean cos {metrics['mean_cosine']:.2f}"
            + ("  (kept)" if metrics["epoch"] == kept_epoch else ""))


def verdict(history: list[dict[str, Any]], kept_epoch: float) -> str:
    """One line saying which weights the run ends on and why, on the held-out measure that chose them."""
    start, last = history[0], history[-1]
    kept = next(h for h in history if h["epoch"] == kept_epoch)
    if kept_epoch == 0 and len(history) > 1:
        best = max(history[1:], key=score_key)
        return (f"kept the starting weights: no fine-tuned weights beat them on held-out photos (decision recall "
                f"{start['decision_recall']:.3f}, Recall@1 {start['recall_at_1']:.3f}; last "
                f"{last['decision_recall']:.3f} / {last['recall_at_1']:.3f}, best {best['decision_recall']:.3f} / "
                f"{best['recall_at_1']:.3f})")
    if kept_epoch == 0:
        return f"kept the starting weights (held-out decision recall {start['decision_recall']:.3f}): no epoch finished"
    return (f"kept epoch {kept_epoch}: held-out decision recall {start['decision_recall']:.3f} at the start -> "
            f"{kept['decision_recall']:.3f}, Recall@1 {start['recall_at_1']:.3f} -> {kept['recall_at_1']:.3f}")
