"""KL alignment to a frozen teacher.

Relational KL: for each image in the batch, the softmax (temperature τ) over its similarities to the
*other* images of the batch, once from the teacher's embeddings and once from the student's embedding
passed through a training-only projection; KL(teacher ‖ student), scaled by τ². Unlike a softmax over a
single unit vector (nearly uniform: almost no signal), these distributions are peaked where the teacher
sees neighbours, so the gradient moves the student's similarity structure toward the teacher's.

Alignment: 1 - cosine between the projected student embedding and the teacher's, per image. It asks each
embedding for the teacher's direction, not only its neighbours, so a student trained from random init gets a
dense signal from its first step (the relational term alone moves it slowly).

Hinton KD: KL between the teacher's ImageNet class distribution and a training-only classifier on the
student embedding, both at temperature T, scaled by T².
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def relational_kl(student: torch.Tensor, teacher: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """KL(teacher ‖ student) of the row-wise softmax similarity distributions, self-pairs excluded."""
    s, t = F.normalize(student, dim=-1), F.normalize(teacher.detach(), dim=-1)
    n = s.shape[0]
    off_diagonal = ~torch.eye(n, dtype=torch.bool, device=s.device)
    s_logits = (s @ s.T / temperature)[off_diagonal].view(n, n - 1)
    t_logits = (t @ t.T / temperature)[off_diagonal].view(n, n - 1)
    return F.kl_div(F.log_softmax(s_logits, -1), F.log_softmax(t_logits, -1), log_target=True,
                    reduction="batchmean") * temperature**2


def alignment(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(student_i, teacher_i)."""
    return 1 - F.cosine_similarity(student, teacher.detach(), dim=-1).mean()


def hinton_kd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 4.0) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student_logits / temperature, -1),
                    F.log_softmax(teacher_logits.detach() / temperature, -1), log_target=True,
                    reduction="batchmean") * temperature**2


class DistillationLoss(nn.Module):
    """Training-only projection (and classifier) of the student embedding; never exported."""

    def __init__(self, student_dim: int, teacher_dim: int, temperature: float = 0.1,
                 teacher_classes: int = 0, kd_temperature: float = 4.0, kd_weight: float = 0.0,
                 align_weight: float = 0.0) -> None:
        super().__init__()
        self.projection = nn.Linear(student_dim, teacher_dim)
        self.temperature, self.kd_temperature, self.kd_weight = temperature, kd_temperature, kd_weight
        self.align_weight = align_weight
        self.classifier = nn.Linear(student_dim, teacher_classes) if kd_weight > 0 and teacher_classes else None

    def forward(self, student: torch.Tensor, teacher_embedding: torch.Tensor,
                teacher_logits: torch.Tensor | None = None) -> torch.Tensor:
        projected = self.projection(student)
        loss = relational_kl(projected, teacher_embedding, self.temperature)
        if self.align_weight > 0:
            loss = loss + self.align_weight * alignment(projected, teacher_embedding)
        if self.classifier is not None and teacher_logits is not None:
            loss = loss + self.kd_weight * hinton_kd(self.classifier(student), teacher_logits, self.kd_temperature)
        return loss
