"""The matcher scores only the index's candidate rows; its answers are the ones every row's scores give.

The reference is the matcher's answer computed from `scores` over every row (what calibration and evaluation
count): every row sorted, one entry per label, the rows out of the running left out. Galleries with many rows per
label, rows repeated under several labels and within one (exact ties), every stored dtype and exact index, with
and without the local re-rank and the printed text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest

from pocketvec.runtime.accept_rule import accepts
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import UNKNOWN, Match, Matcher, scores
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.search import dot_rows, exact_dots
from pocketvec.runtime.text_verify import TextVerify

DIM, SHAPE = 32, (6, 8)
RULE = AcceptRule(threshold=0.3, margin=0.02)
WORDS = ["merlot", "syrah", "2015", "2016", "reserva", "crianza", "rioja", "douro"]


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


@dataclass
class GivenTexts:
    """The photos' printed text, given (the OCR is tested with the recognizer): what PhotoTexts offers."""

    texts: list[str]
    settings: TextVerify = field(default_factory=TextVerify)
    asked: list[int] = field(default_factory=list)

    def read(self, q: int) -> str:
        self.asked.append(q)
        return self.texts[q]


def crowded_gallery(dtype: str, maps: bool, texts: bool, seed: int = 0) -> tuple[Gallery, np.ndarray, np.ndarray]:
    """~600 rows of 60 labels: 1 to 25 rows each around 12 look-alike centres, some rows repeated under another
    label and within their own; queries near rows, on rows (exact ties) and far from all."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((12, DIM))
    labels, rows = [], []
    for label in range(60):
        centre = centres[label % 12] + 0.5 * rng.standard_normal(DIM)
        for _ in range(int(rng.integers(1, 26))):
            labels.append(f"item-{label:02d}")
            rows.append(centre + 0.4 * rng.standard_normal(DIM))
    rows = unit(np.array(rows))
    for i in rng.choice(len(rows), 40, replace=False):  # the same row under another label, and twice in its own
        j = int(rng.integers(len(rows)))
        rows = np.concatenate([rows, rows[i : i + 1], rows[j : j + 1]])
        labels += [labels[j], labels[j]]
    local = unit(rng.standard_normal((len(rows), *SHAPE))) if maps else None
    words = [" ".join(rng.choice(WORDS, 3, replace=False)) for _ in sorted(set(labels))]
    text = [words[int(label[-2:])] for label in labels] if texts else None
    gallery = Gallery("space", DIM, dtype, local_shape=SHAPE if maps else None)
    gallery.add(rows, labels, [f"{i:064x}" for i in range(len(rows))], local, texts=text,
                text_reader="given" if texts else None)
    picked = rng.choice(gallery.count, 30, replace=False)
    near = unit(gallery.embeddings()[picked] + 0.15 * rng.standard_normal((30, DIM)))
    queries = np.concatenate([near, gallery.embeddings()[picked[:10]], unit(rng.standard_normal((10, DIM)))])
    query_maps = unit(rng.standard_normal((len(queries), *SHAPE))) if maps else None
    return gallery, unit(queries), query_maps


def every_row_answer(gallery: Gallery, queries: np.ndarray, maps: np.ndarray | None, rerank: LocalRerank | None,
                     photo_texts: GivenTexts | None, top_k: int) -> list[Match]:
    """The matcher's answer from every row's scores: all rows sorted (ties: the lower row), one entry per label."""
    out = []
    for row in scores(gallery, queries, maps, rerank, photo_texts):
        seen: dict[str, float] = {}
        for i in np.argsort(-row, kind="stable"):
            if row[i] > -np.inf:
                seen.setdefault(gallery.labels[i], float(row[i]))
        per_label = list(seen.items())
        best, second = per_label[0][1], per_label[1][1] if len(per_label) > 1 else -np.inf
        ok = bool(accepts(np.array(best), np.array(second), RULE))
        out.append(Match(per_label[0][0] if ok else UNKNOWN, ok, per_label[:top_k], float(best - second)))
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("index", ["numpy", "int8", "faiss"])
@pytest.mark.parametrize(("maps", "texts"), [(False, False), (True, False), (False, True), (True, True)])
def test_candidate_answers_are_every_rows_answers(dtype: str, index: str, maps: bool, texts: bool) -> None:
    if index == "faiss":
        pytest.importorskip("faiss")
    gallery, queries, query_maps = crowded_gallery(dtype, maps, texts)
    rerank = LocalRerank(*SHAPE, top_k=5) if maps else None
    photo_texts = GivenTexts([" ".join(np.random.default_rng(q).choice(WORDS, 2)) for q in range(len(queries))]) \
        if texts else None
    matcher = Matcher(gallery, RULE, index, rerank)
    for top_k in (1, 3, 8):
        got = matcher.match(queries, top_k, query_maps, photo_texts)
        want = every_row_answer(gallery, queries, query_maps, rerank, photo_texts, top_k)
        assert [m.to_dict() for m in got] == [m.to_dict() for m in want]
        assert [(m.top, m.margin) for m in got] == [(m.top, m.margin) for m in want]  # the same bits
    assert any(m.accepted for m in got) and not all(m.accepted for m in got)
    if texts:
        assert photo_texts.asked  # the candidates' words differed for some photos: the text moved scores


def test_the_matcher_scores_only_candidate_rows() -> None:
    """A 20,000-row gallery: each query scores a few hundred rows, not all of them."""
    rng = np.random.default_rng(1)
    rows = unit(rng.standard_normal((20_000, DIM)))
    gallery = Gallery("space", DIM, "int8")
    gallery.add(rows, [f"item-{i // 4:05d}" for i in range(len(rows))], [f"{i:064x}" for i in range(len(rows))])
    matcher = Matcher(gallery, RULE, "int8")
    queries = unit(gallery.embeddings()[:5] + 0.1 * rng.standard_normal((5, DIM)))
    pools = matcher.candidates(queries, 3)
    assert all(len(rows) < 1_000 for rows, _ in pools)
    assert [m.top for m in matcher.match(queries, 3)] == [m.top for m in every_row_answer(
        gallery, queries, None, None, None, 3)]


def test_exact_dots_do_not_depend_on_the_rows_beside() -> None:
    """A row scores the same bits alone, among others or in a batch of queries (a BLAS matmul does not)."""
    rng = np.random.default_rng(2)
    rows, queries = unit(rng.standard_normal((3000, 256))), unit(rng.standard_normal((4, 256)))
    every = dot_rows(queries, rows)
    for n in (1, 3, 5, 64, 1000):
        ids = np.sort(rng.choice(len(rows), n, replace=False))
        np.testing.assert_array_equal(exact_dots(queries[:1], rows[ids])[0], every[0, ids])
        np.testing.assert_array_equal(exact_dots(queries[1:3], np.asfortranarray(rows[ids])), every[1:3, ids])
    np.testing.assert_allclose(every, queries @ rows.T, atol=1e-6)


@pytest.mark.parametrize("index", ["numpy", "int8", "faiss"])
def test_rows_tied_at_the_last_label_are_all_weighed(index: str) -> None:
    """300 labels whose rows score exactly the same for the query, behind one clear best: the second label is
    the tied label of the lowest row, as over every row, whichever tied rows the index returns first."""
    if index == "faiss":
        pytest.importorskip("faiss")
    rng = np.random.default_rng(4)
    best = unit(rng.standard_normal(DIM))
    tied = unit(best + 0.3 * unit(rng.standard_normal(DIM)))
    others = unit(rng.standard_normal((2000, DIM)) - 8 * best)  # far from the query
    rows = np.concatenate([others[:1000], tied[None].repeat(300, 0), best[None], others[1000:]])
    labels = [f"other-{i:04d}" for i in range(1000)] + [f"tied-{299 - i:03d}" for i in range(300)] + ["best"] + \
        [f"other-{i:04d}" for i in range(1000, 2000)]
    gallery = Gallery("space", DIM, "float32")
    gallery.add(rows, labels, [f"{i:064x}" for i in range(len(rows))])
    query = best[None]
    (got,) = Matcher(gallery, RULE, index).match(query, 2)
    (want,) = every_row_answer(gallery, query, None, None, None, 2)
    assert want.top[1][0] == "tied-299" and got.top == want.top


@pytest.mark.filterwarnings("ignore:Local mode performs exact")  # the in-process mode ignores search params
@pytest.mark.parametrize("exact", [True, False])
def test_a_qdrant_collection_gives_the_candidates(exact: bool) -> None:
    """The gallery's rows in Qdrant (the client's in-process mode: the real client and its search code): the
    matcher re-ranks and verifies the candidates Qdrant returns; with exact search, the answers are every row's."""
    qdrant = pytest.importorskip("qdrant_client")
    from pocketvec.errors import GalleryError
    from pocketvec.runtime.vector_store import QdrantIndex

    gallery, queries, query_maps = crowded_gallery("int8", True, True, seed=5)
    rerank = LocalRerank(*SHAPE, top_k=5)
    photo_texts = GivenTexts([" ".join(np.random.default_rng(q).choice(WORDS, 2)) for q in range(len(queries))])
    client = qdrant.QdrantClient(":memory:")
    index = QdrantIndex.upload(gallery, client, "wines", exact=exact)
    index.check(gallery)
    assert client.retrieve("wines", [7], with_payload=True)[0].payload["label"] == gallery.labels[7]
    got = Matcher(gallery, RULE, index, rerank).match(queries, 3, query_maps, photo_texts)
    want = every_row_answer(gallery, queries, query_maps, rerank, photo_texts, 3)
    if exact:
        assert [m.to_dict() for m in got] == [m.to_dict() for m in want]
    else:  # HNSW on a server may miss rows; the in-process mode scans them all
        assert [m.top[0][0] for m in got] == [m.top[0][0] for m in want]
    with pytest.raises(GalleryError, match="already has a collection"):
        QdrantIndex.upload(gallery, client, "wines")
    other, _, _ = crowded_gallery("int8", True, True, seed=6)
    with pytest.raises(GalleryError, match="upload this gallery again"):
        QdrantIndex(client, "wines").check(other)
    with pytest.raises(GalleryError, match="no collection"):
        QdrantIndex(client, "beers")


def test_ivfpq_candidates_feed_the_same_re_rank() -> None:
    """faiss IVF-PQ trained on the gallery's rows: approximate candidates (its 5-bit codes of 4 values blur the
    look-alikes), re-ranked and scored exactly: most answers are the exact ones."""
    pytest.importorskip("faiss")
    from pocketvec.runtime.search import IvfPqIndex

    gallery, queries, query_maps = crowded_gallery("float32", True, False, seed=7)
    rerank = LocalRerank(*SHAPE, top_k=5)
    index = IvfPqIndex(gallery.vectors, nprobe=1)
    assert not index.exact and index.m == DIM // 8 and 1 <= index.nlist <= gallery.count // 39
    index.nprobe = 10_000
    assert index.nprobe == index.nlist  # at most every cell
    got = Matcher(gallery, RULE, index, rerank).match(queries[:30], 3, query_maps[:30])
    want = every_row_answer(gallery, queries[:30], query_maps[:30], rerank, None, 3)
    assert np.mean([g.top[0][0] == w.top[0][0] for g, w in zip(got, want, strict=True)]) >= 0.8
    for match in got:  # every score is an exact score of the gallery's rows, re-ranked
        assert all(label in gallery.labels and -1.0 - 4.0 <= score <= 1.0 for label, score in match.top)
