"""w8a8 with a float prefix: the first convolutions stay float when the whole network misses the bars.

Both formats quantize every activation to 8 bits, then check the file against the float model on
simulated phone photos it was not calibrated on (calibration.CHECK_PHOTOS), matched to the items. If
the mean or worst cosine, or the photos' top-1 item, misses the w8a8 bars, the first
FLOAT_PREFIX_LADDER[i] convolutions (in the order they run) are kept float and the check runs again.
On the shipped Lite0 base the loss sits in the stem's output, which the first depthwise convolution's
folded batch norm amplifies by up to ~500x on some channels: keeping those two convolutions float takes
ONNX from mean cosine 0.993 / min 0.80 to 0.999 / 0.99 on benchmark photos (docs/bench/export.md).
The file keeps the first rung that passes, else the best one (top-1 agreement, then worst cosine).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from pocketvec.export.parity import BARS, row_cosines

FLOAT_PREFIX_LADDER = (0, 2, 4, 8, 16)  # leading convolutions kept float, tried in this order
# What a rung must reach on the check photos: the verify bars, with a margin on the worst cosine. The worst of
# 64 photos is a noisy estimate of the worst over a user's photos: on the base, Core ML without float prefix
# had min 0.988 on the check and 0.979 / 0.965 on two other photo sets of the same items.
LADDER_BARS = {"mean_cosine": BARS["w8a8"]["mean_cosine"][0], "min_cosine": 0.99,
               "top1_agreement": BARS["w8a8"]["top1_agreement"][0]}
Quantized = TypeVar("Quantized")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PrefixCheck:
    """One rung's check: the quantized file against the float model, check photos matched to the items."""

    float_convs: int
    mean_cosine: float
    min_cosine: float
    top1_agreement: float

    @property
    def passed(self) -> bool:
        return all(getattr(self, metric) >= bound for metric, bound in LADDER_BARS.items())

    def describe(self) -> str:
        return (f"w8a8, first {self.float_convs} convolutions float; against the float model on simulated "
                f"photos: mean cosine {self.mean_cosine:.4f}, min {self.min_cosine:.4f}, "
                f"top-1 agreement {self.top1_agreement:.3f}")


def check_rung(float_convs: int, reference: np.ndarray, got: np.ndarray, queries: int) -> PrefixCheck:
    """Rows [:queries] are photos, the rest their items: cosines over the photos, top-1 photo -> item."""
    cosines = row_cosines(reference[:queries], got[:queries])
    top1 = [np.argmax(out[:queries] @ out[queries:].T, axis=1) for out in (reference, got)]
    return PrefixCheck(float_convs, float(cosines.mean()), float(cosines.min()), float(np.mean(top1[0] == top1[1])))


def quantize_with_float_prefix(quantize: Callable[[int], Quantized], embed: Callable[[Quantized], np.ndarray],
                               reference: np.ndarray, queries: int) -> tuple[Quantized, PrefixCheck]:
    """`quantize(k)` with the first k convolutions float, for each k of the ladder until one passes the check:
    `embed` of the check set (`queries` photos, then the items) against `reference`, the float model's."""
    best: tuple[Quantized, PrefixCheck] | None = None
    for k in FLOAT_PREFIX_LADDER:
        candidate = quantize(k)
        check = check_rung(k, reference, embed(candidate), queries)
        if best is None or (check.top1_agreement, check.min_cosine) > (best[1].top1_agreement, best[1].min_cosine):
            best = candidate, check
        if check.passed:
            return candidate, check
    assert best is not None
    log.warning("%s: below %s at every rung of the ladder %s", best[1].describe(), LADDER_BARS, FLOAT_PREFIX_LADDER)
    return best
