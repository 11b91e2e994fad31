"""Margin heads, sharded cross-entropy, triplet/pair and center loss on hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from pocketvec.errors import ConfigError
from pocketvec.train.losses.margins import MarginConfig, MarginHead, sharded_cross_entropy
from pocketvec.train.losses.metric import CenterLoss, TripletPairLoss

COS = torch.tensor([[0.8, 0.1, -0.2], [0.3, 0.6, 0.0]])
TARGET = torch.tensor([0, 1])


@pytest.mark.parametrize(("kind", "margin", "expected_target"), [
    ("arcface", 0.5, lambda c: math.cos(math.acos(c) + 0.5)),
    ("cosface", 0.35, lambda c: c - 0.35),
    ("sphereface", 1.35, lambda c: math.cos(1.35 * math.acos(c))),
])
def test_margin_heads_penalise_only_the_target(kind, margin, expected_target) -> None:
    head = MarginHead(MarginConfig(kind=kind, scale=10.0, margin=margin))
    logits = head(COS, TARGET, 3)
    expected = COS.clone() * 10.0
    for row, col in enumerate(TARGET.tolist()):
        expected[row, col] = 10.0 * expected_target(float(COS[row, col]))
    torch.testing.assert_close(logits, expected, atol=1e-5, rtol=0)


def test_arcface_beyond_pi_stays_monotonic() -> None:
    head = MarginHead(MarginConfig(kind="arcface", scale=1.0, margin=0.5))
    cos = torch.tensor([[-0.99, 0.0], [-0.9, 0.0]])
    out = head(cos, torch.tensor([0, 0]), 2)[:, 0]
    assert out[0] < out[1]  # a worse cosine never gets a better logit


def test_adacos_scale_starts_at_paper_value_and_adapts() -> None:
    head = MarginHead(MarginConfig(kind="adacos")).train()
    cos = torch.tensor([[0.9, 0.1, 0.0, -0.1], [0.1, 0.8, 0.2, 0.0]])
    head(cos, torch.tensor([0, 1]), 4)
    s0 = math.sqrt(2) * math.log(3)
    b_avg = ((math.exp(s0 * 0.1) + 1 + math.exp(-s0 * 0.1)) + (math.exp(s0 * 0.1) + math.exp(s0 * 0.2) + 1)) / 2
    theta_med = min(math.acos(0.9), math.acos(0.8))  # torch median of two values is the lower one
    expected = math.log(b_avg) / math.cos(min(math.pi / 4, theta_med))
    assert float(head.adaptive_scale) == pytest.approx(expected, rel=1e-5)


def test_sharded_cross_entropy_is_cross_entropy_with_label_smoothing() -> None:
    logits = torch.randn(5, 7)
    target = torch.randint(0, 7, (5,))
    for eps in (0.0, 0.1):
        ours = sharded_cross_entropy(logits, target, 7, eps)
        torch.testing.assert_close(ours, F.cross_entropy(logits, target, label_smoothing=eps))


def test_margin_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="Got 'softmax'"):
        MarginConfig(kind="softmax")
    with pytest.raises(ConfigError, match="unknown keys"):
        MarginConfig.from_dict({"kind": "arcface", "sclae": 3})


def test_triplet_pair_loss_known_value() -> None:
    # unit vectors at angles 0, 60°, 90°, 180°: labels a, a, b, b
    emb = torch.tensor([[1.0, 0.0], [0.5, math.sqrt(3) / 2], [0.0, 1.0], [-1.0, 0.0]])
    labels = torch.tensor([0, 0, 1, 1])
    loss = TripletPairLoss(margin=0.2, pair_weight=0.5, negative_margin=0.5)(emb, labels)
    d = 1 - emb @ emb.T
    hardest_pos = [d[0, 1], d[1, 0], d[2, 3], d[3, 2]]
    hardest_neg = [min(d[0, 2], d[0, 3]), min(d[1, 2], d[1, 3]), min(d[2, 0], d[2, 1]), min(d[3, 0], d[3, 1])]
    triplet = sum(max(0.0, float(p - n) + 0.2) for p, n in zip(hardest_pos, hardest_neg, strict=True)) / 4
    pos = float(d[0, 1] + d[2, 3]) / 2
    negs = [d[i, j] for i in (0, 1) for j in (2, 3)]
    neg = sum(max(0.0, 0.5 - float(x)) for x in negs) / 4
    assert float(loss) == pytest.approx(triplet + 0.5 * (pos + neg), rel=1e-5)


def test_center_loss_known_value() -> None:
    loss = CenterLoss(2, 2)
    with torch.no_grad():
        loss.centers.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    emb = torch.tensor([[2.0, 0.0], [1.0, 1.0]])  # normalised: (1, 0) and (.707, .707)
    expected = 0.5 * (0.0 + (0.5**0.5) ** 2 + (0.5**0.5 - 1) ** 2) / 2
    assert loss(emb, torch.tensor([0, 1])).item() == pytest.approx(expected, rel=1e-5)
