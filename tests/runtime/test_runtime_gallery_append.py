"""Gallery files that grow by appended segments: an append writes only the new rows, an append that did not
finish is left out and cut off by the next writer, a damaged segment is refused, `gallery compact` folds the
segments into one part with the same matches, and files of the earlier versions still read."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import GalleryError, PocketvecWarning
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.segments import SEGMENT
from pocketvec.runtime.gallery.update import update_gallery
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher

from .test_runtime_cli import cli

SHAPE = (4, 6)
RERANK = LocalRerank(locations=SHAPE[0], channels=SHAPE[1], top_k=2)
OLD_FILES = Path(__file__).parent / "old_galleries"


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def rows(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    rng = np.random.default_rng(seed)
    labels = [f"item{seed}_{i % 3}" for i in range(n)]
    return unit(rng.standard_normal((n, 16))), unit(rng.standard_normal((n, *SHAPE))), labels, \
        [f"{seed:032x}{i:032x}" for i in range(n)]


def adding(n: int, seed: int):
    """An update_gallery change that adds n rows."""
    vectors, maps, labels, sources = rows(n, seed)

    def change(gallery: Gallery) -> tuple[int, bool]:
        return gallery.add(vectors, labels, sources, maps).added, True

    return change


@pytest.fixture
def base(tmp_path: Path) -> Path:
    gallery = Gallery("space", 16, "int8", local_shape=SHAPE)
    vectors, maps, labels, sources = rows(6, 0)
    gallery.add(vectors, labels, sources, maps)
    return gallery.save(tmp_path / "g.pvg")


def test_an_append_writes_only_the_new_rows(base: Path) -> None:
    before, inode = base.read_bytes(), base.stat().st_ino
    assert update_gallery(base, adding(2, 1)) == 2
    after = base.read_bytes()
    assert after[: len(before)] == before and base.stat().st_ino == inode  # the base untouched, no rename
    appended = len(after) - len(before)
    header_len, payload_len = SEGMENT.unpack_from(after, len(before))[1:3]
    assert payload_len == 2 * (16 + SHAPE[0] * SHAPE[1] * 2)  # 2 int8 rows and their float16 maps
    assert appended == SEGMENT.size + header_len + payload_len + 32
    loaded = Gallery.load(base)
    assert loaded.count == 8 and loaded.saved.parts == 2 and len(loaded.locals.parts) == 2
    vectors, maps, _, sources = rows(2, 1)
    assert loaded.sources[6:] == sources
    assert np.abs(loaded.embeddings()[6:] - vectors).max() <= 0.5 / 127 + 1e-6
    assert np.array_equal(loaded.locals[[6, 7]], maps.astype(np.float16))
    update_gallery(base, adding(1, 2))
    assert Gallery.load(base).saved.parts == 3 and base.read_bytes()[: len(after)] == after


def test_an_unfinished_append_is_left_out_and_cut_by_the_next_writer(base: Path) -> None:
    committed = base.stat().st_size
    update_gallery(base, adding(2, 1))
    for cut in (base.stat().st_size - committed - 1, SEGMENT.size + 3, 5):  # in the checksum, header, preamble
        with open(base, "r+b") as f:
            f.truncate(committed + cut)
        with pytest.warns(PocketvecWarning, match=f"{base}: an append that did not finish .* at byte {committed}"):
            assert Gallery.load(base).count == 6
    with pytest.warns(PocketvecWarning, match="did not finish"):
        update_gallery(base, adding(1, 3))  # loads the 6 committed rows, cuts the rest off, appends
    loaded = Gallery.load(base)  # no warning now
    assert loaded.count == 7 and loaded.saved.parts == 2 and loaded.sources[6:] == rows(1, 3)[3]


def test_a_damaged_segment_is_refused(base: Path) -> None:
    committed = base.stat().st_size
    update_gallery(base, adding(2, 1))
    raw = bytearray(base.read_bytes())
    raw[-40] ^= 0x10  # in the segment's local maps
    base.write_bytes(bytes(raw))
    with pytest.raises(GalleryError, match=f"{base}: appended segment at byte {committed} checksum mismatch"):
        Gallery.load(base)
    raw[-40] ^= 0x10
    raw[committed + 12] ^= 0x01  # the segment's header length
    base.write_bytes(bytes(raw))
    with pytest.raises(GalleryError, match="damaged preamble"):
        Gallery.load(base)


def test_an_append_keeps_the_other_header_fields_and_a_changed_rule_rewrites(base: Path) -> None:
    update_gallery(base, adding(2, 1))
    from pocketvec.runtime.metadata import AcceptRule

    def calibrate(gallery: Gallery) -> tuple[None, bool]:
        gallery.accept_rule = AcceptRule(0.7, 0.1, method="test")
        return None, True

    update_gallery(base, calibrate)
    loaded = Gallery.load(base)
    assert loaded.saved.parts == 1 and loaded.count == 8 and loaded.accept_rule.threshold == 0.7
    update_gallery(base, lambda gallery: (gallery.remove("item0_0"), True))
    assert Gallery.load(base).saved.parts == 1 and Gallery.load(base).count == 6


def matches(path: Path) -> list:
    gallery = Gallery.load(path)
    vectors, maps = rows(5, 9)[:2]
    queries, query_maps = unit(vectors + gallery.embeddings()[:5]), maps
    return [m.to_dict() for m in Matcher(gallery, local_rerank=RERANK).match(queries, 3, query_maps)]


def test_compact_folds_the_segments_with_the_same_matches(base: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    update_gallery(base, adding(3, 1))
    update_gallery(base, adding(2, 2))
    before = matches(base)
    assert Gallery.load(base).saved.parts == 3
    code, out, err = cli(monkeypatch, capsys, "gallery", "compact", base)
    assert code == 0, err
    assert "3 parts before" in out
    compacted = Gallery.load(base)
    assert compacted.saved.parts == 1 and compacted.count == 11 and matches(base) == before
    whole = Gallery("space", 16, "int8", compacted.labels, compacted.sources, np.array(compacted.vectors),
                    local_shape=SHAPE, locals=compacted.locals.copy(), created_by=compacted.created_by)
    assert base.read_bytes() == whole.to_bytes()  # one part, as a fresh save writes it


@pytest.mark.parametrize("name", ["v2-int8.pvg", "v3-float16-maps.pvg", "v4-int8-maps.pvg"])
def test_files_of_earlier_versions_read_and_take_appends(tmp_path: Path, name: str) -> None:
    """Files written by the previous writers (versions 2, 3 and 4, kept in tests/runtime/old_galleries; made by
    make_old_galleries.py there) read as they did; an add rewrites them as version 5, the next one appends."""
    path = tmp_path / name
    path.write_bytes((OLD_FILES / name).read_bytes())
    assert struct.unpack_from("<I", path.read_bytes(), 8)[0] == int(name[1])
    old = Gallery.load(path)
    vectors, maps, labels, sources = rows(3, 0)
    assert old.labels == labels and old.sources == sources and old.saved.version == int(name[1])
    assert np.abs(old.embeddings() - vectors).max() <= (0.5 / 127 + 1e-6 if old.dtype == "int8" else 1e-3)
    if old.local_shape:
        assert np.array_equal(old.locals.copy(), maps.astype(np.float16))
    add = adding(1, 1) if old.local_shape else lambda g: (g.add(rows(1, 1)[0], *rows(1, 1)[2:]).added, True)
    update_gallery(path, add)
    assert struct.unpack_from("<I", path.read_bytes(), 8)[0] == 5 and Gallery.load(path).saved.parts == 1
    size = path.stat().st_size
    add2 = adding(1, 2) if old.local_shape else lambda g: (g.add(rows(1, 2)[0], *rows(1, 2)[2:]).added, True)
    update_gallery(path, add2)
    assert Gallery.load(path).saved.parts == 2 and Gallery.load(path).count == 5 and path.stat().st_size > size
    assert os.path.getsize(path) - size < 1000


def test_a_rewrite_streams_the_local_maps_a_chunk_at_a_time(base: Path) -> None:
    """A rewrite (compact, remove, upgrade) never holds the payload whole: the file's bytes are made a chunk at
    a time as the writer asks for them."""
    from pocketvec.runtime.gallery import file as gallery_file

    gallery = Gallery.load(base)
    made = []

    class Counted(type(gallery.locals)):
        def chunks(self, max_bytes: int = 1):
            for chunk in super().chunks(max_bytes=1):  # one row a chunk
                made.append(len(chunk))
                yield chunk

    maps = Counted(gallery.locals.parts, gallery.locals.row_shape, gallery.locals.dtype)
    parts = gallery_file.encode_parts(gallery.header(), gallery.vectors, maps)
    for _ in range(4):  # preamble, header, embeddings, the first map
        next(parts)
    assert made == [1]
    assert b"".join([*parts]) and len(made) == gallery.count
