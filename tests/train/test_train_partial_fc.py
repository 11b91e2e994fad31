"""PartialFC in one process: equals the full margin softmax at rate 1.0, keeps positives when sampling,
never builds batch × classes logits when sampling (test_train_world.py: two gloo processes)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from pocketvec.errors import ConfigError
from pocketvec.train.losses.margins import MarginConfig, MarginHead
from pocketvec.train.losses.partial_fc import PartialFC, shard_range

DIM, CLASSES, BATCH = 16, 10, 8


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(BATCH, DIM, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g),
            torch.randn(CLASSES, DIM, generator=g))


@pytest.mark.parametrize("kind", ["arcface", "cosface", "adacos"])
def test_rate_one_equals_full_margin_softmax(kind: str) -> None:
    emb, labels, centres = _inputs()
    config = MarginConfig(kind=kind, scale=16.0, label_smoothing=0.1)
    pfc = PartialFC(DIM, CLASSES, config, sample_rate=1.0)
    with torch.no_grad():
        pfc.weight.copy_(centres)
    loss = pfc(emb, labels)
    cos = F.normalize(emb) @ F.normalize(centres).T
    reference = F.cross_entropy(MarginHead(config)(cos, labels, CLASSES), labels, label_smoothing=0.1)
    torch.testing.assert_close(loss, reference)


def test_sampling_keeps_every_positive_and_the_rate() -> None:
    torch.manual_seed(1)
    pfc = PartialFC(DIM, 1000, sample_rate=0.1)
    labels = torch.tensor([3, 999, 500, 3, 77])
    kept, target = pfc.sample(labels)
    assert kept.numel() == 100
    assert set(labels.tolist()) <= set(kept.tolist())
    assert torch.equal(kept[target], labels)  # remapped targets point at the right centres
    loss = pfc(torch.randn(5, DIM, requires_grad=True), labels)
    loss.backward()
    touched = (pfc.weight.grad.abs().sum(1) > 0).sum()
    assert 5 <= touched <= 100  # only sampled centres get gradient


def test_shards_cover_all_classes_once() -> None:
    ranges = [shard_range(11, r, 3) for r in range(3)]
    assert ranges == [(0, 4), (4, 8), (8, 11)]


def test_labels_out_of_range_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"labels must be in \[0, 10\)"):
        PartialFC(DIM, CLASSES)(torch.randn(2, DIM), torch.tensor([0, 10]))
