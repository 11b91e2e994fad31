"""Training the local maps: the loss scores as the runtime's re-rank does, and batches of look-alike groups."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pocketvec.data.items import load_items
from pocketvec.runtime.local_rerank import LocalRerank, local_similarity
from pocketvec.train.batches import BatchMaker
from pocketvec.train.losses.local_match import LocalMatchLoss, local_similarity_matrix

SETTINGS = ({}, {"worst_fraction": 0.0, "photo_weight": 0.0}, {"photo_threshold": -1.0}, {"worst_fraction": 0.3})


def _maps(rng: np.random.Generator, n: int, locations: int = 16, channels: int = 8) -> np.ndarray:
    maps = rng.normal(size=(n, locations, channels)).astype(np.float32)
    return maps / np.linalg.norm(maps, axis=2, keepdims=True)


@pytest.mark.parametrize("settings", SETTINGS)
def test_the_loss_scores_as_the_runtime_re_rank(settings: dict) -> None:
    rng = np.random.default_rng(0)
    photos, rows = _maps(rng, 3), _maps(rng, 5)
    config = LocalRerank(locations=16, channels=8, **settings)
    matrix = local_similarity_matrix(torch.from_numpy(photos), torch.from_numpy(rows), config).numpy()
    for photo, scores in zip(photos, matrix, strict=True):
        np.testing.assert_allclose(scores, local_similarity(photo, rows, config), rtol=1e-5, atol=1e-6)


def test_the_loss_is_lower_when_each_photo_matches_its_own_row_and_trains_the_photo_maps() -> None:
    rng = np.random.default_rng(1)
    rows = torch.from_numpy(_maps(rng, 4))
    loss = LocalMatchLoss(LocalRerank(locations=16, channels=8))
    targets = torch.tensor([0, 1, 2, 3])
    own = rows + 0.05 * torch.from_numpy(_maps(rng, 4))
    shuffled = own[[1, 2, 3, 0]]
    assert loss(own, rows, targets) < loss(shuffled, rows, targets)
    photos = shuffled.clone().requires_grad_(True)
    loss(photos, rows, targets).backward()
    assert photos.grad is not None and photos.grad.abs().sum() > 0


def test_look_alike_groups_fill_batches_and_visit_every_class_once(lookalike_items: Path) -> None:
    maker = BatchMaker(load_items(lookalike_items), "single", 64, 3, 2, seed=0, class_views=True)
    labels = [maker.variants[members[0]].item_index for members in maker._by_class.values()]
    assert len(labels) == 9
    # three families of three editions: a family's classes are each other's nearest neighbours
    family = np.repeat(np.eye(3, dtype=np.float32), 3, axis=0) + 0.01 * np.arange(9)[:, None]
    embeddings = family / np.linalg.norm(family, axis=1, keepdims=True)
    maker.group_lookalikes(embeddings, group_size=3)
    for epoch in range(2):
        batches = [maker(epoch * maker.steps_per_epoch() + step) for step in range(maker.steps_per_epoch())]
        classes = [int(c) for b in batches for c in b.labels[::2]]
        assert sorted(classes) == list(range(9))
        for b in batches:
            assert len({c // 3 for c in b.labels.tolist()}) == 1  # one family per batch
            assert b.class_views is not None and b.class_views.shape[0] == 3
            assert b.labels.tolist() == [int(b.labels[2 * s]) for s in b.class_slot.tolist()]


def test_local_distillation_is_zero_at_the_teachers_scores_and_trains_the_photo_maps() -> None:
    from pocketvec.train.losses.local_match import LocalDistillLoss

    rng = np.random.default_rng(2)
    config = LocalRerank(locations=16, channels=8)
    photos, rows = torch.from_numpy(_maps(rng, 4)), torch.from_numpy(_maps(rng, 5))
    candidates = torch.tensor([[0, 1, 2], [1, 3, 4], [2, 0, 4], [3, 2, 1]])  # each photo's own rows
    loss = LocalDistillLoss(config, temperature=0.1)
    teacher = torch.stack([local_similarity_matrix(photo[None], rows[ids], config)[0]
                           for photo, ids in zip(photos, candidates, strict=True)])
    assert float(loss(photos, rows, candidates, teacher)) == pytest.approx(0.0, abs=1e-6)
    moved = (photos + 0.5 * torch.from_numpy(_maps(rng, 4))).requires_grad_(True)
    value = loss(moved, rows, candidates, teacher)
    assert value > 1e-4
    value.backward()
    assert moved.grad is not None and moved.grad.abs().sum() > 0
