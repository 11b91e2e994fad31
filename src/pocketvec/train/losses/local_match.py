"""A loss on the local maps the matcher re-ranks with: each photo's map must match its own item's clean map
better than the other items' of its batch, under the runtime's own local score.

The re-rank (pocketvec.runtime.local_rerank) decides between look-alikes by the stride-16 maps, which the
margin loss trains only through the pooled embedding. Here the runtime's score, written in torch so it
can be trained through, is turned into a softmax over the batch's items (InfoNCE; the batch is built from
look-alike groups, so its other items are the hard negatives).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pocketvec.runtime.local_rerank import LocalRerank

LOCAL_SCALE = 32.0  # the softmax's inverse temperature, as the margin heads' scale


def local_similarity_matrix(photos: torch.Tensor, rows: torch.Tensor, config: LocalRerank) -> torch.Tensor:
    """The runtime's local score of every (photo, row) pair: photos (B, P, C), rows (K, P, C) -> (B, K).
    `local_similarity` in numpy scores one photo against its top-k candidates; here every row of the batch
    is a candidate of every photo (which photo locations are on the item is decided over all K rows), or,
    with rows (B, K, P, C), each photo has its own K candidates, as in the runtime."""
    equation = "bpc,kqc->bkqp" if rows.dim() == 3 else "bpc,bkqc->bkqp"
    cosines = torch.einsum(equation, photos, rows)  # (B, K, row locations, photo locations)
    best_in_photo = cosines.amax(dim=3)
    found = best_in_photo.mean(dim=2)
    if config.worst_fraction > 0:
        worst = max(1, int(config.worst_fraction * best_in_photo.shape[2]))
        found = 0.5 * (found + best_in_photo.topk(worst, dim=2, largest=False).values.mean(dim=2))
    if config.photo_weight == 0:
        return found
    best_in_row = cosines.amax(dim=2)  # (B, K, photo locations)
    on_item = (best_in_row.amax(dim=1, keepdim=True) > config.photo_threshold).to(best_in_row.dtype)
    explained = (best_in_row * on_item).sum(dim=2) / on_item.sum(dim=2).clamp(min=1.0)
    return (1 - config.photo_weight) * found + config.photo_weight * explained


class LocalMatchLoss(nn.Module):
    """InfoNCE over the local scores of each photo against the clean maps of its batch's classes."""

    def __init__(self, config: LocalRerank, scale: float = LOCAL_SCALE) -> None:
        super().__init__()
        self.config, self.scale = config, scale

    def forward(self, photo_maps: torch.Tensor, clean_maps: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """photo_maps (B, P, C) and clean_maps (K, P, C), L2-normalised per location; targets (B,): the
        index into clean_maps of each photo's own class."""
        scores = local_similarity_matrix(photo_maps.float(), clean_maps.float(), self.config)
        return F.cross_entropy(self.scale * scores, targets)


class LocalDistillLoss(nn.Module):
    """KL from the teacher's softmax over its local scores of each photo against its candidates (its own
    class and the teacher's nearest other classes, on the teacher's own stride-16 map; cached by
    pocketvec.train.local_scores) to the student's: the student's maps learn how well each look-alike's
    details match, as the teacher's re-rank sees them."""

    def __init__(self, config: LocalRerank, temperature: float) -> None:
        super().__init__()
        self.config, self.scale = config, 1.0 / temperature

    def forward(self, photo_maps: torch.Tensor, clean_maps: torch.Tensor, candidate_slots: torch.Tensor,
                teacher_scores: torch.Tensor) -> torch.Tensor:
        """photo_maps (B, P, C) and clean_maps (K, P, C) of the student; candidate_slots (B, k): each photo's
        candidates as indices into clean_maps; teacher_scores (B, k)."""
        scores = local_similarity_matrix(photo_maps.float(), clean_maps.float()[candidate_slots], self.config)
        return F.kl_div(F.log_softmax(self.scale * scores, dim=1), F.log_softmax(self.scale * teacher_scores.float(),
                        dim=1), log_target=True, reduction="batchmean")
