"""The margin heads against an independent implementation: pytorch-metric-learning's ArcFace, CosFace
and SphereFace losses (same centres, embeddings and labels: same loss and gradients), and SphereFace's
ψ(θ) monotonic over [0, π] for the default non-integer multiplier."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pocketvec.errors import ConfigError
from pocketvec.train.losses.margins import MarginConfig, MarginHead
from pocketvec.train.losses.partial_fc import PartialFC

losses = pytest.importorskip("pytorch_metric_learning.losses")

DIM, CLASSES, BATCH = 12, 9, 32


def _oracle(kind: str, margin: float, scale: float):
    if kind == "arcface":  # the oracle takes ArcFace's margin in degrees
        return losses.ArcFaceLoss(CLASSES, DIM, margin=math.degrees(margin), scale=scale)
    if kind == "cosface":
        return losses.CosFaceLoss(CLASSES, DIM, margin=margin, scale=scale)
    return losses.SphereFaceLoss(CLASSES, DIM, margin=margin, scale=scale)


@pytest.mark.parametrize(("kind", "margin"), [("arcface", 0.5), ("arcface", 0.3), ("cosface", 0.35),
                                              ("sphereface", 2), ("sphereface", 3), ("sphereface", 4)])
def test_loss_and_gradients_match_pytorch_metric_learning(kind: str, margin: float) -> None:
    g = torch.Generator().manual_seed(3)
    centres = torch.randn(CLASSES, DIM, generator=g)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=g)
    # rows near their centre and far from it: every branch of each head (θ beyond π − m, k ≥ 1) is used
    mix = torch.linspace(-1.0, 1.0, BATCH)[:, None]
    emb = mix * centres[labels] + 0.7 * torch.randn(BATCH, DIM, generator=g)
    emb = torch.nn.functional.normalize(emb, dim=1)

    pfc = PartialFC(DIM, CLASSES, MarginConfig(kind=kind, scale=8.0, margin=margin), rank=0, world_size=1)
    with torch.no_grad():
        pfc.weight.copy_(centres)
    ours_emb = emb.clone().requires_grad_(True)
    ours = pfc(ours_emb, labels)
    ours.backward()

    oracle = _oracle(kind, margin, 8.0)
    with torch.no_grad():
        oracle.W.copy_(centres.T)
    their_emb = emb.clone().requires_grad_(True)
    # normalised outside: the oracle's SphereFace multiplies by the embedding norm, ours works on the sphere
    theirs = oracle(torch.nn.functional.normalize(their_emb, dim=1), labels)
    theirs.backward()

    angles = torch.acos((torch.nn.functional.normalize(centres[labels]) * emb).sum(1).clamp(-1, 1))
    assert angles.max() > math.pi / 2  # the test reaches the far branches
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours_emb.grad, their_emb.grad, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(pfc.weight.grad, oracle.W.grad.T, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("margin", [1.35, 2.0, 4.0])
def test_sphereface_is_monotonic_over_zero_to_pi(margin: float) -> None:
    head = MarginHead(MarginConfig(kind="sphereface", scale=1.0, margin=margin))
    theta = torch.linspace(0.0, math.pi, 2001, dtype=torch.float64)
    cos = torch.cos(theta)[:, None].float()
    psi = head(cos, torch.zeros(len(theta), dtype=torch.long), 1)[:, 0].double().numpy()
    assert np.all(np.diff(psi) < 0), f"not decreasing at θ = {np.degrees(theta[1:][np.diff(psi) >= 0][:3])}°"
    # cos(mθ) itself up to π/m; at π the paper's value (−1)^k cos(mπ) − 2k, k = ⌊m⌋
    inside = theta.numpy() < math.pi / margin - 1e-3
    np.testing.assert_allclose(psi[inside], np.cos(margin * theta.numpy()[inside]), atol=2e-3)
    k = math.floor(margin)
    assert psi[-1] == pytest.approx((-1) ** k * math.cos(margin * math.pi) - 2 * k, abs=2e-3)


def test_sphereface_margin_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="sphereface margin"):
        MarginConfig(kind="sphereface", margin=0.0)
