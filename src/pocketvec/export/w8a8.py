"""w8a8 with float rungs: the head, then the first convolutions, keep float activations when the whole
network misses the bars.

Both formats quantize every activation to 8 bits, then check the file against the float model on
simulated phone photos it was not calibrated on (calibration.CHECK_PHOTOS), matched to the items. If
the mean or worst cosine, or the photos' top-1 item, misses the w8a8 bars, the next rung of LADDER keeps
more of the network at float activations and the check runs again. The float parts' weights stay small
(int8; float16 for ONNX convolutions, onnx_quantize.store_float_parts), so a rung costs speed, not size.

Where the loss sits, measured (docs/EXPORT.md): on the shipped Lite0 base, in the stem's output,
which the first depthwise convolution's folded batch norm amplifies by up to ~500x on some channels;
on the PP-LCNet small student, in its first blocks (pointwise outputs whose channels' ranges go from
0.14 to 24 on one 8-bit grid) and in the head (the 1280-d features, LayerNorm and BatchNorm1d on
per-tensor grids).
The file keeps the first rung that passes, else the one closest to the float model (worst cosine, then top-1
agreement): top-1 agreement on 64 photos moves by one near-tie, while a worse worst cosine is a worse file
(a PP-LCNet student's Core ML check: top-1 0.938 and min 0.967 with 8 float convolutions, 0.922 and 0.991 with
16; on 192 other photos min 0.892 and 0.992; docs/EXPORT.md).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from pocketvec.export.parity import BARS, row_cosines


@dataclass(frozen=True)
class Rung:
    """What keeps float activations: the first `float_convs` convolutions (in the order they run) and, with
    `float_head`, everything after the last convolution (the embedding head and the L2 normalisations)."""

    float_convs: int
    float_head: bool

    def describe(self) -> str:
        parts = [f"the first {self.float_convs} convolutions"] * (self.float_convs > 0) + ["the head"] * self.float_head
        return f"float activations in {' and '.join(parts)}" if parts else "every activation 8-bit"

    def float_parts(self, names: list[str], convs: list[int]) -> list[str]:
        """Of a network's parts `names` in the order they run, `convs` the positions of its convolutions,
        those that keep float activations."""
        if not convs:
            return []
        leading = names[:convs[:self.float_convs][-1] + 1] if self.float_convs > 0 else []
        return leading + (names[convs[-1] + 1:] if self.float_head else [])


# cheapest first: the head runs once on a pooled vector, the first convolutions at the highest resolution.
# The last rung's 24 convolutions hold all of a PP-LCNet 0.5's stride-16 stage, the map the local re-rank
# matches: with 16, a small student's ONNX local map missed the 0.995 local cosine bar (0.9949).
LADDER = (Rung(0, False), Rung(0, True), Rung(2, True), Rung(4, True), Rung(8, True), Rung(16, True),
          Rung(24, True))
# What a rung must reach on the check photos: the verify bars, with a margin on the worst cosine. The worst of
# 64 photos is a noisy estimate of the worst over a user's photos: on the base, Core ML without float prefix
# had min 0.988 on the check and 0.979 / 0.965 on two other photo sets of the same items.
LADDER_BARS = {"mean_cosine": BARS["w8a8"]["mean_cosine"][0], "min_cosine": 0.99,
               "top1_agreement": BARS["w8a8"]["top1_agreement"][0]}
Quantized = TypeVar("Quantized")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RungCheck:
    """One rung's check: the quantized file against the float model, check photos matched to the items."""

    rung: Rung
    mean_cosine: float
    min_cosine: float
    top1_agreement: float

    @property
    def passed(self) -> bool:
        return all(getattr(self, metric) >= bound for metric, bound in LADDER_BARS.items())

    @property
    def closeness(self) -> tuple[float, float, float]:
        """How close to the float model, for choosing among rungs that all miss: worst cosine first."""
        return self.min_cosine, self.top1_agreement, self.mean_cosine

    def describe(self) -> str:
        return (f"w8a8, {self.rung.describe()}; against the float model on simulated photos: mean cosine "
                f"{self.mean_cosine:.4f}, min {self.min_cosine:.4f}, top-1 agreement {self.top1_agreement:.3f}")


def check_rung(rung: Rung, reference: np.ndarray, got: np.ndarray, queries: int) -> RungCheck:
    """Rows [:queries] are photos, the rest their items: cosines over the photos, top-1 photo -> item."""
    cosines = row_cosines(reference[:queries], got[:queries])
    top1 = [np.argmax(out[:queries] @ out[queries:].T, axis=1) for out in (reference, got)]
    return RungCheck(rung, float(cosines.mean()), float(cosines.min()), float(np.mean(top1[0] == top1[1])))


def quantize_on_ladder(quantize: Callable[[Rung], Quantized], embed: Callable[[Quantized], np.ndarray],
                       reference: np.ndarray, queries: int) -> tuple[Quantized, RungCheck]:
    """`quantize(rung)` for each rung of LADDER until one passes the check: `embed` of the check set
    (`queries` photos, then the items) against `reference`, the float model's."""
    best: tuple[Quantized, RungCheck] | None = None
    for rung in LADDER:
        candidate = quantize(rung)
        check = check_rung(rung, reference, embed(candidate), queries)
        if best is None or check.closeness > best[1].closeness:
            best = candidate, check
        if check.passed:
            return candidate, check
    assert best is not None
    log.warning("%s: below %s at every rung of the ladder", best[1].describe(), LADDER_BARS)
    return best
