"""A photo embedded with several crops (a model whose `query_crop_mode` is a list): one answer per photo.

A square crop of a phone photo cuts the edges of an item that fills the frame along its long side, and
squashing the whole photo into the square distorts it; which one costs more depends on how the photo was
framed, which the matcher cannot know. Embedded with both, the photo's embedding is the normalised mean of
its crops' embeddings and its local map holds every crop's locations side by side, so the re-rank finds a
mark in whichever crop kept it. A single crop passes through unchanged. sample_app/src/model.js does the same.
"""

from __future__ import annotations

import numpy as np

__all__ = ["fuse_crops"]


def fuse_crops(embeddings: np.ndarray, local_maps: np.ndarray | None,
               crops: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Rows in photo order, each photo's crops together: (N x crops, dim) -> (N, dim) unit rows; local maps
    (N x crops, locations, channels) -> (N, crops x locations, channels)."""
    if crops == 1:
        return embeddings, local_maps
    embeddings = np.asarray(embeddings, dtype=np.float32)
    mean = embeddings.reshape(-1, crops, embeddings.shape[-1]).mean(axis=1)
    mean /= np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), np.float32(1e-12))
    if local_maps is None:
        return mean, None
    local_maps = np.asarray(local_maps, dtype=np.float32)
    return mean, local_maps.reshape(len(mean), crops * local_maps.shape[1], local_maps.shape[2])
