"""The held-out evaluation run after each epoch: clean items as the gallery, simulated photos of them
(with a seed the training batches never use) as queries; Recall@1 and best F1 at label level."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

from pocketvec.runtime.metrics import best_f1, pair_sweep, recall_at_k
from pocketvec.runtime.preprocess import preprocess
from pocketvec.train.batches import BatchMaker

EVAL_SEED_OFFSET = 1_000_003


@dataclass
class HeldOut:
    gallery: torch.Tensor
    gallery_labels: list[str]
    queries: torch.Tensor
    query_labels: list[str]


def make_held_out(maker: BatchMaker, labels: list[str], views: int, spec) -> HeldOut:
    gallery = [preprocess(image, spec) for image in maker.images]
    queries, query_labels = [], []
    for index, image in enumerate(maker.images):
        for view in range(views):
            rng = np.random.default_rng([maker.seed + EVAL_SEED_OFFSET, index, view])
            queries.append(maker.augment(image, rng))
            query_labels.append(labels[index])
    to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()  # noqa: E731
    return HeldOut(to_tensor(gallery), list(labels), to_tensor(queries), query_labels)


@torch.no_grad()
def embed(model: torch.nn.Module, pixels: torch.Tensor, batch_size: int = 32) -> np.ndarray:
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = torch.cat([model(pixels[i : i + batch_size].to(device)).float().cpu()
                     for i in range(0, len(pixels), batch_size)])
    model.train(was_training)
    return out.numpy()


@torch.no_grad()
def embed_batches(model: torch.nn.Module, batches: Iterable[torch.Tensor],
                  with_locals: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """Float32 embeddings of the batches (the model as it is, eval mode expected) and, `with_locals`, their
    local maps (Encoder.forward_with_locals: the same embeddings, plus the stride-16 map)."""
    forward = model.forward_with_locals if with_locals else lambda x: (model(x), None)
    rows, maps = [], []
    for batch in batches:
        embedding, local = forward(batch)
        rows.append(embedding.float().cpu().numpy())
        maps += [] if local is None else [local.float().cpu().numpy()]
    return np.concatenate(rows), np.concatenate(maps) if maps else None


def evaluate(model: torch.nn.Module, held_out: HeldOut) -> dict[str, float]:
    """Recall@1, best pair F1 and its threshold, and the gallery's mean pairwise cosine (1.0 = collapsed)."""
    gallery = embed(model, held_out.gallery)
    similarity = embed(model, held_out.queries) @ gallery.T
    best = best_f1(pair_sweep(similarity, held_out.query_labels, held_out.gallery_labels))
    pairs = (gallery @ gallery.T)[np.triu_indices(len(gallery), 1)]
    return {"recall_at_1": recall_at_k(similarity, held_out.query_labels, held_out.gallery_labels, 1),
            "best_f1": best.f1, "best_threshold": best.threshold,
            "mean_cosine": float(pairs.mean()) if len(pairs) else 1.0}
