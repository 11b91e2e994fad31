"""The w8a8 float-prefix ladder: which rung a file keeps, on embeddings whose error is known."""

from __future__ import annotations

import logging

import numpy as np

from pocketvec.export.parity import BARS
from pocketvec.export.w8a8 import FLOAT_PREFIX_LADDER, LADDER_BARS, quantize_with_float_prefix

QUERIES, ITEMS, DIM = 40, 8, 32


def _reference() -> np.ndarray:
    rng = np.random.default_rng(0)
    items = rng.normal(size=(ITEMS, DIM))
    photos = items[np.arange(QUERIES) % ITEMS] + 0.3 * rng.normal(size=(QUERIES, DIM))
    out = np.concatenate([photos, items])
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _embed_with_noise(reference: np.ndarray, noise: dict[int, float]):
    def embed(k: int) -> np.ndarray:
        rng = np.random.default_rng(k)
        return reference + noise[k] * rng.normal(size=reference.shape)
    return embed


def test_the_first_rung_that_passes_is_kept():
    reference = _reference()
    noise = {0: 0.2, 2: 0.003, 4: 0.001, 8: 0.0, 16: 0.0}
    tried: list[int] = []

    def quantize(k: int) -> int:
        tried.append(k)
        return k

    chosen, check = quantize_with_float_prefix(quantize, _embed_with_noise(reference, noise), reference, QUERIES)
    assert chosen == 2 and tried == [0, 2] and check.passed
    assert check.min_cosine >= LADDER_BARS["min_cosine"] >= BARS["w8a8"]["min_cosine"][0] and check.top1_agreement == 1
    assert "first 2 convolutions float" in check.describe()


def test_without_a_passing_rung_the_best_is_kept_and_said(caplog):
    reference = _reference()
    noise = dict.fromkeys(FLOAT_PREFIX_LADDER, 0.5) | {4: 0.15}
    with caplog.at_level(logging.WARNING, logger="pocketvec.export.w8a8"):
        chosen, check = quantize_with_float_prefix(lambda k: k, _embed_with_noise(reference, noise), reference,
                                                   QUERIES)
    assert chosen == 4 and not check.passed
    assert "at every rung of the ladder" in caplog.text
