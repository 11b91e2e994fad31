"""Matcher: label-level top-k, the threshold + margin rule, and exact search in every index."""

from __future__ import annotations

import numpy as np
import pytest

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.matcher import UNKNOWN, Matcher
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.search import AUTO_SCAN_ROWS, SCAN_MAX_BYTES, FaissIndex, Int8Index, NumpyIndex, make_index


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def gallery_of(vectors: np.ndarray, labels: list[str], dtype: str = "float32") -> Gallery:
    gallery = Gallery("space", vectors.shape[1], dtype)
    gallery.add(vectors, labels, [f"{i:064x}" for i in range(len(labels))])
    return gallery


def test_accept_rule_threshold_and_margin() -> None:
    # three items in 3-d; b and c are look-alikes
    g = unit([[1, 0, 0], [0, 1, 0], [0, 0.96, 0.28]])
    matcher = Matcher(gallery_of(g, ["a", "b", "c"]), AcceptRule(threshold=0.8, margin=0.1))
    clear, lookalike, far = matcher.match(unit([[0.95, 0.3, 0], [0, 1, 0.12], [0.5, 0.5, 0.7]]), top_k=3)
    assert clear.answer == "a" and clear.accepted
    assert [label for label, _ in clear.top] == ["a", "b", "c"]
    assert lookalike.top[0][0] == "b" and lookalike.top[0][1] > 0.8
    assert lookalike.answer == UNKNOWN and lookalike.margin < 0.1  # the margin saves it
    assert far.answer == UNKNOWN and far.top[0][1] < 0.8  # the threshold rejects it
    assert Matcher(matcher.gallery, AcceptRule(threshold=0.8, margin=0.0)).match(unit([[0, 1, 0.12]]))[0].answer == "b"


def test_scores_are_label_level_best_row() -> None:
    g = unit([[1, 0], [0.6, 0.8], [0, 1], [0.8, 0.6]])
    (match,) = Matcher(gallery_of(g, ["a", "b", "b", "a"]), AcceptRule(0.5)).match(unit([[0.75, 0.66]]), top_k=5)
    assert [label for label, _ in match.top] == ["a", "b"]  # one entry per label, even with top_k=5
    assert match.top[0][1] == pytest.approx(float(unit([0.75, 0.66]) @ g[3]), abs=1e-6)


def test_single_label_gallery_has_infinite_margin() -> None:
    (match,) = Matcher(gallery_of(unit([[1, 0]]), ["only"]), AcceptRule(0.5, 0.2)).match(unit([[1, 0.1]]))
    assert match.accepted and match.margin == float("inf")


def test_empty_gallery_is_refused() -> None:
    with pytest.raises(GalleryError, match="empty"):
        Matcher(Gallery("space", 8))


@pytest.fixture(scope="module")
def crowded() -> tuple[np.ndarray, np.ndarray]:
    """5000 rows in 64-d with clusters of near-duplicates, and queries near and far from them."""
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((50, 64))
    rows = unit(np.repeat(centres, 100, axis=0) + 0.15 * rng.standard_normal((5000, 64)))
    queries = unit(np.concatenate([rows[::500] + 0.05 * rng.standard_normal((10, 64)), rng.standard_normal((6, 64))]))
    return rows, queries


@pytest.mark.parametrize(("kind", "dtype"), [("int8", "int8"), ("int8", "float32"), ("int8", "float16"),
                                           ("faiss", "float32")])
def test_indexes_are_exact(crowded, kind: str, dtype: str) -> None:
    rows, queries = crowded
    stored = Gallery("s", 64, dtype)
    stored.add(rows, [str(i) for i in range(len(rows))], [str(i) for i in range(len(rows))])
    if kind == "faiss":
        pytest.importorskip("faiss")
    index = Int8Index(stored.vectors) if kind == "int8" else FaissIndex(stored.vectors)
    want_scores, want_ids = NumpyIndex(stored.vectors).search(queries, 10)
    scores, ids = index.search(queries, 10)
    np.testing.assert_allclose(scores, want_scores, atol=2e-6)
    assert (ids == want_ids).mean() > 0.99  # equal up to exact ties


def test_auto_index_uses_int8_scan_for_int8_galleries(crowded) -> None:
    rows, queries = crowded
    int8 = Gallery("s", 64, "int8")
    int8.add(rows[:300], [str(i // 3) for i in range(300)], [str(i) for i in range(300)])
    assert isinstance(make_index(int8.vectors), Int8Index)
    float_gallery = gallery_of(int8.embeddings(), int8.labels)
    assert isinstance(make_index(float_gallery.vectors), NumpyIndex)  # small: plain brute force
    assert isinstance(make_index(rows[:1].repeat(AUTO_SCAN_ROWS, axis=0)), Int8Index)  # large: the scan
    a = Matcher(int8, AcceptRule(0.5, 0.02)).match(queries, top_k=3)
    b = Matcher(float_gallery, AcceptRule(0.5, 0.02)).match(queries, top_k=3)
    for x, y in zip(a, b, strict=True):
        assert (x.answer, [label for label, _ in x.top]) == (y.answer, [label for label, _ in y.top])
        np.testing.assert_allclose([s for _, s in x.top], [s for _, s in y.top], atol=2e-6)


def test_huge_galleries_leave_the_scan() -> None:
    huge = np.broadcast_to(np.zeros((1, 256), dtype=np.int8), (8_000_000, 256))  # no memory behind it
    with pytest.raises(ConfigError, match="at most"):
        make_index(huge, "int8")
    assert huge.size > SCAN_MAX_BYTES
