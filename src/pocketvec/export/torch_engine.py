"""The run's PyTorch model behind the runtime's `Engine`: what `pocketvec verify` and `pocketvec demo` compare
exported files with then goes through the runtime's own code (the photos' crops and their fusion, enrolment, the
zoom to the item: runtime.zoomed_photos), with PyTorch computing every forward pass."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.metadata import ModelMetadata
from pocketvec.runtime.preprocess import to_batch
from pocketvec.train.evaluate import embed_batches


class TorchEngine(Engine):
    """`model` (eval mode) answering as an exported file whose `metadata` is given (its preprocessing, local
    re-rank and accept rule): the local maps are computed when the metadata has a local re-rank."""

    name = "pytorch"

    def __init__(self, model: torch.nn.Module, metadata: ModelMetadata, source: str | Path = "<pytorch>") -> None:
        super().__init__(Path(source), metadata)
        self.model = model.eval()

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        pixels = torch.from_numpy(to_batch(list(batch))).to(next(self.model.parameters()).device)
        return embed_batches(self.model, [pixels], self.metadata.local_rerank is not None)
