"""The safety net of fine-tuning: score the weights that would ship, keep the best (of equals, the latest),
never ship worse.

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

# Held-out results this many photos apart are within the safety net's noise (one photo in 600 is 0.0017).
TIE_PHOTOS = 2


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


def keeps(history: list[dict[str, Any]], tie_photos: int = TIE_PHOTOS) -> bool:
    """Whether the newest held-out evaluation's weights (`history[-1]`) replace the kept ones. The start (the
    first) is kept first; a later evaluation replaces the kept weights when it is not below the start
    (pocketvec.train.evaluate.score_key: decision recall, then Recall@1) and neither its decision recall nor
    its Recall@1 is more than `tie_photos` photos' worth below the best evaluation's so far: within the
    measure's noise the weights trained longest are kept, and enrolment never ends below its start."""
    newest, start = history[-1], history[0]
    if len(history) == 1:
        return True
    best = max(history, key=score_key)
    slack = tie_photos / newest["photos"] if newest.get("photos") else 0.0  # older histories: strict
    return (score_key(newest) >= score_key(start) and newest["decision_recall"] >= best["decision_recall"] - slack
            and newest["recall_at_1"] >= best["recall_at_1"] - slack)


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
