"""A gallery's rows in a Qdrant collection, as the index a Matcher takes its candidates from.

For a catalogue that outgrows one process's index, the rows' embeddings live in a vector engine (Qdrant: a
server, or the client's in-process mode, `QdrantClient(":memory:")` / `QdrantClient(path=...)`, the same client
code). `upload` writes a gallery's rows as points (id = row number; payload: label and source sha256); a
`QdrantIndex` answers `search` with the engine's top rows, and the Matcher does the rest as with any index:
exact cosines of those rows from the gallery, the local re-rank from its mapped local maps (only the
candidates' are read), text verification, labels, the accept rule:

    client = QdrantClient(url="http://qdrant:6333")          # or QdrantClient(":memory:")
    index = QdrantIndex.upload(gallery, client, "wines")     # once; later QdrantIndex(client, "wines")
    Matcher.for_model(metadata, gallery, index=index).match(photo_embedding, 3, photo_maps)

The engine's search is approximate (HNSW) unless `exact=True` (a full scan in the engine): with exact search
the candidates are proven complete as with the in-process indexes, so the answers are the exact ones.
Needs `pip install 'pocketvec[qdrant]'`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.unit_norm import dequantize

UPLOAD_ROWS = 1024  # points written per request


def _qdrant() -> Any:
    try:
        from qdrant_client import models
    except ImportError as e:
        raise ConfigError("the Qdrant index needs qdrant-client: pip install 'pocketvec[qdrant]'") from e
    return models


class QdrantIndex:
    """The rows of one gallery in a Qdrant collection (dot product on the unit rows = cosine)."""

    def __init__(self, client: Any, collection: str, exact: bool = False, hnsw_ef: int | None = None) -> None:
        self.models = _qdrant()
        self.client, self.collection, self.exact, self.hnsw_ef = client, collection, exact, hnsw_ef
        if not client.collection_exists(collection):
            raise GalleryError(f"Qdrant has no collection {collection!r}: upload the gallery with "
                               "QdrantIndex.upload(gallery, client, collection)")
        self.count = client.count(collection, exact=True).count

    @classmethod
    def upload(cls, gallery: Gallery, client: Any, collection: str, exact: bool = False,
               hnsw_ef: int | None = None) -> QdrantIndex:
        """Write the gallery's rows to a new collection `collection` (refused if it exists), a batch at a time."""
        models = _qdrant()
        if client.collection_exists(collection):
            raise GalleryError(f"Qdrant already has a collection {collection!r}: delete it or choose another name")
        client.create_collection(collection, vectors_config=models.VectorParams(size=gallery.dim,
                                                                                distance=models.Distance.DOT))
        for start in range(0, gallery.count, UPLOAD_ROWS):
            stop = min(gallery.count, start + UPLOAD_ROWS)
            client.upsert(collection, wait=True, points=models.Batch(
                ids=list(range(start, stop)), vectors=dequantize(gallery.vectors[start:stop]).tolist(),
                payloads=[{"label": label, "source": source}
                          for label, source in zip(gallery.labels[start:stop], gallery.sources[start:stop],
                                                   strict=True)]))
        return cls(client, collection, exact, hnsw_ef)

    def check(self, gallery: Gallery) -> None:
        """Refuse a collection that does not hold this gallery's rows (another count, or other labels)."""
        if self.count != gallery.count:
            raise GalleryError(f"Qdrant collection {self.collection!r} holds {self.count} points, the gallery "
                               f"{gallery.count} rows: upload this gallery again")
        probe = sorted({0, gallery.count // 2, gallery.count - 1})
        for point in self.client.retrieve(self.collection, probe, with_payload=True):
            if point.payload.get("source") != gallery.sources[int(point.id)]:
                raise GalleryError(f"Qdrant collection {self.collection!r}: point {point.id} is not row "
                                   f"{point.id} of the gallery: upload this gallery again")

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The engine's top k rows of each query: (Q, k) scores and row ids, -1 past the points it returned."""
        params = self.models.SearchParams(exact=self.exact, hnsw_ef=self.hnsw_ef)
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        ids = np.full((len(queries), k), -1, dtype=np.int64)
        for q, query in enumerate(np.asarray(queries, dtype=np.float32)):
            found = self.client.query_points(self.collection, query=query.tolist(), limit=k, search_params=params,
                                             with_payload=False).points
            scores[q, : len(found)] = [p.score for p in found]
            ids[q, : len(found)] = [int(p.id) for p in found]
        return scores, ids
