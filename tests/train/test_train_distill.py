"""Relational KL has a real gradient that moves the student's similarity structure toward the teacher's."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from pocketvec.train.losses.distill import DistillationLoss, hinton_kd, relational_kl


def _similarities(x: torch.Tensor) -> torch.Tensor:
    x = F.normalize(x, dim=-1)
    return x @ x.T


def test_zero_when_structures_agree_and_positive_otherwise() -> None:
    t = torch.randn(6, 12)
    assert relational_kl(t.clone(), t).abs() < 1e-6
    assert relational_kl(torch.randn(6, 12), t) > 1e-3


def test_gradient_is_real_and_steps_move_student_toward_teacher() -> None:
    torch.manual_seed(0)
    teacher = torch.randn(16, 64)
    student_features = torch.randn(16, 32)
    student = torch.nn.Linear(32, 24)
    loss_fn = DistillationLoss(24, 64, temperature=0.1)
    params = list(student.parameters()) + list(loss_fn.parameters())
    optimiser = torch.optim.Adam(params, lr=1e-2)

    off_diagonal = ~torch.eye(16, dtype=torch.bool)

    def agreement() -> tuple[float, float]:
        """Correlation of off-diagonal similarities, and the share of rows with the teacher's nearest neighbour."""
        with torch.no_grad():
            s, t = _similarities(loss_fn.projection(student(student_features))), _similarities(teacher)
        corr = float(torch.corrcoef(torch.stack([s[off_diagonal], t[off_diagonal]]))[0, 1])
        same_nn = float((s.masked_fill(~off_diagonal, -2).argmax(1) == t.masked_fill(~off_diagonal, -2).argmax(1))
                        .float().mean())
        return corr, same_nn

    corr_before, nn_before = agreement()
    first = loss_fn(student(student_features), teacher)
    first.backward()
    grad_norm = sum(float(p.grad.norm()) for p in student.parameters())
    assert grad_norm > 1e-2  # not the near-zero gradient of a softmax over one unit vector
    for _ in range(30):
        optimiser.zero_grad()
        loss = loss_fn(student(student_features), teacher)
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.5 * first.item()
    corr_after, nn_after = agreement()
    assert corr_after > corr_before + 0.3
    assert nn_after > nn_before


def test_hinton_kd_known_value_and_classifier_path() -> None:
    s, t = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    p = torch.softmax(t / 2, -1)
    q = torch.softmax(s / 2, -1)
    assert hinton_kd(s, t, 2.0).item() == float((p * (p.log() - q.log())).sum() * 4)
    loss_fn = DistillationLoss(8, 8, teacher_classes=5, kd_weight=1.0)
    student = torch.randn(4, 8, requires_grad=True)
    loss_fn(student, torch.randn(4, 8), torch.randn(4, 5)).backward()
    assert loss_fn.classifier.weight.grad.abs().sum() > 0


def test_alignment_term_pulls_each_projected_embedding_to_its_teacher() -> None:
    torch.manual_seed(1)
    teacher = torch.randn(16, 64)
    features = torch.randn(16, 32)
    student = torch.nn.Linear(32, 24)
    plain, aligned = DistillationLoss(24, 64), DistillationLoss(24, 64, align_weight=1.0)
    aligned.load_state_dict(plain.state_dict())
    embedding = student(features)
    gap = aligned(embedding, teacher) - plain(embedding, teacher)
    cosine = F.cosine_similarity(aligned.projection(embedding), teacher, dim=-1).mean()
    assert torch.allclose(gap, 1 - cosine, atol=1e-6)  # the term is exactly 1 - mean cosine
    optimiser = torch.optim.Adam(list(student.parameters()) + list(aligned.parameters()), lr=1e-2)
    for _ in range(60):
        optimiser.zero_grad()
        aligned(student(features), teacher).backward()
        optimiser.step()
    with torch.no_grad():
        after = F.cosine_similarity(aligned.projection(student(features)), teacher, dim=-1)
    assert after.min() > 0.9 > float(cosine)
