"""The w8a8 ladder: which rung a file keeps, on embeddings whose error is known."""

from __future__ import annotations

import logging
from itertools import pairwise

import numpy as np

from pocketvec.export.parity import BARS
from pocketvec.export.w8a8 import LADDER, LADDER_BARS, Rung, check_rung, quantize_on_ladder

QUERIES, ITEMS, DIM = 40, 8, 32


def _reference() -> np.ndarray:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(ITEMS, DIM))
    photos = items[np.arange(QUERIES) % ITEMS] + 0.3 * rng.normal(size=(QUERIES, DIM))
    out = np.concatenate([photos, items])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _embed_with_noise(reference: np.ndarray, noise: dict[Rung, float]):
    def embed(rung: Rung) -> np.ndarray:
        rng = np.random.default_rng(LADDER.index(rung))
        return reference + noise[rung] * rng.normal(size=reference.shape)
    return embed


def test_the_first_rung_that_passes_is_kept():
    reference = _reference()
    noise = dict(zip(LADDER, [0.2, 0.05, 0.003, 0.001, 0.0, 0.0, 0.0], strict=True))
    tried: list[Rung] = []

    def quantize(rung: Rung) -> Rung:
        tried.append(rung)
        return rung

    chosen, check = quantize_on_ladder(quantize, _embed_with_noise(reference, noise), reference, QUERIES)
    assert chosen == Rung(2, True) and tried == [Rung(0, False), Rung(0, True), Rung(2, True)] and check.passed
    assert check.min_cosine >= LADDER_BARS["min_cosine"] >= BARS["w8a8"]["min_cosine"][0] and check.top1_agreement == 1
    assert "float activations in the first 2 convolutions and the head" in check.describe()


def test_the_ladder_goes_from_all_8_bit_to_more_float():
    assert LADDER[0] == Rung(0, False) and Rung(0, False).describe() == "every activation 8-bit"
    assert all(b.float_convs >= a.float_convs and b.float_head >= a.float_head for a, b in pairwise(LADDER))


def test_float_parts_are_the_leading_convolutions_and_what_runs_after_the_last():
    names = ["pad", "stem", "act", "dw", "act1", "pw", "pool", "fc", "norm"]
    convs = [1, 3, 5]
    assert Rung(0, False).float_parts(names, convs) == []
    assert Rung(2, False).float_parts(names, convs) == ["pad", "stem", "act", "dw"]
    assert Rung(0, True).float_parts(names, convs) == ["pool", "fc", "norm"]
    assert Rung(16, True).float_parts(names, convs) == names
    assert Rung(2, True).float_parts(names, []) == []


def test_without_a_passing_rung_the_best_is_kept_and_said(caplog):
    reference = _reference()
    noise = dict.fromkeys(LADDER, 0.5) | {Rung(4, True): 0.15}
    with caplog.at_level(logging.WARNING, logger="pocketvec.export.w8a8"):
        chosen, check = quantize_on_ladder(lambda rung: rung, _embed_with_noise(reference, noise), reference, QUERIES)
    assert chosen == Rung(4, True) and not check.passed
    assert "at every rung of the ladder" in caplog.text


def test_without_a_passing_rung_the_closest_file_beats_one_more_agreeing_near_tie():
    """A rung that flips one near-tie but keeps every embedding is kept over one that keeps every top-1 but
    bends one photo's embedding far (top-1 on a few check photos moves by one near-tie)."""
    reference = _reference()
    items = reference[QUERIES:]
    reference[0] = (1.01 * items[0] + items[1]) / np.linalg.norm(1.01 * items[0] + items[1])  # a near-tie
    flipped, bent = reference.copy(), reference.copy()
    flipped[0] = (items[0] + 1.01 * items[1]) / np.linalg.norm(items[0] + 1.01 * items[1])
    bent[5] = bent[5] + 0.6 * np.linalg.svd(bent[5][None])[2][1]  # a direction orthogonal to the photo
    rows = {Rung(8, True): bent, Rung(16, True): flipped}
    noisy = _embed_with_noise(reference, dict.fromkeys(LADDER, 0.5))

    def embed(rung: Rung) -> np.ndarray:
        return rows[rung] if rung in rows else noisy(rung)

    chosen, check = quantize_on_ladder(lambda rung: rung, embed, reference, QUERIES)
    assert chosen == Rung(16, True) and check.top1_agreement == (QUERIES - 1) / QUERIES and not check.passed
    other = check_rung(Rung(8, True), reference, bent, QUERIES)
    assert other.top1_agreement == 1.0 and other.min_cosine < 0.9 < check.min_cosine
