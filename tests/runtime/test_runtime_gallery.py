"""The .pvg gallery store: round trips, int8 encoding, duplicates, and every kind of bad file."""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path

import numpy as np
import pytest

import pocketvec.atomic
from pocketvec.errors import GalleryError, PocketvecWarning
from pocketvec.runtime.gallery import Gallery, quantize
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.gallery import header as gallery_header
from pocketvec.runtime.metadata import AcceptRule


def unit_rows(n: int, dim: int = 16, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


BASE = gallery_file.BASE  # magic, version, header_len, payload_len


def split(raw: bytes) -> tuple[dict, bytes]:
    """(header, payload) of a current-version file without appended segments."""
    header_len, payload_len = BASE.unpack_from(raw)[2:]
    start = BASE.size + header_len
    return json.loads(raw[BASE.size : start]), raw[start : start + payload_len]


def sealed(text: bytes, payload: bytes, version: int = gallery_file.VERSION) -> bytes:
    """A current-version file of a header's JSON and a payload, padded and checksummed as a writer does."""
    text += b" " * ((-(BASE.size + len(text))) % 16)
    body = BASE.pack(b"PVGALLRY", version, len(text), len(payload)) + text + payload
    return body + hashlib.sha256(body).digest()


def sample_gallery(dtype: str = "float32", n: int = 5) -> Gallery:
    gallery = Gallery("abc123", 16, dtype, accept_rule=AcceptRule(0.6, 0.05, 0.99, 0.8, 0.99))
    gallery.add(unit_rows(n), [f"item{i % 3}" for i in range(n)], [f"{i:064x}" for i in range(n)])
    return gallery


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_round_trip(tmp_path: Path, dtype: str) -> None:
    gallery = sample_gallery(dtype)
    path = gallery.save(tmp_path / "g.pvg")
    loaded = Gallery.load(path, "abc123")
    assert loaded.labels == gallery.labels and loaded.sources == gallery.sources
    assert loaded.accept_rule == gallery.accept_rule and loaded.dtype == dtype
    assert np.array_equal(loaded.vectors, gallery.vectors)
    tolerance = {"float32": 0, "float16": 1e-3, "int8": 0.5 / 127 + 1e-7}[dtype]
    assert np.abs(loaded.embeddings() - unit_rows(5)).max() <= tolerance
    assert list(tmp_path.iterdir()) == [path]  # no temp files left behind


def test_layout_matches_the_format_doc(tmp_path: Path) -> None:
    raw = sample_gallery("int8").save(tmp_path / "g.pvg").read_bytes()
    magic, version, header_len, payload_len = BASE.unpack_from(raw)
    assert (magic, version, BASE.size) == (b"PVGALLRY", 5, 24)
    assert (24 + header_len) % 16 == 0 and len(raw) == 24 + header_len + payload_len + 32
    header = json.loads(raw[24 : 24 + header_len])
    assert set(header) == gallery_header.KEYS_V2
    body, checksum = raw[:-32], raw[-32:]
    assert checksum == hashlib.sha256(body).digest()  # covers preamble, header and payload
    payload = np.frombuffer(body[24 + header_len :], dtype=np.int8).reshape(header["count"], header["dim"])
    assert np.array_equal(payload, np.clip(np.rint(unit_rows(5) * 127), -127, 127))


def version1_bytes(gallery: Gallery) -> bytes:
    """The same gallery as a version-1 file (no trailer; payload_sha256 in the header)."""
    header, payload = split(gallery.to_bytes())
    header["payload_sha256"] = hashlib.sha256(payload).hexdigest()
    text = json.dumps(header, sort_keys=True).encode()
    text += b" " * ((-(16 + len(text))) % 16)
    return struct.pack("<8sII", b"PVGALLRY", 1, len(text)) + text + payload


def test_version_1_still_reads_with_one_warning(tmp_path: Path) -> None:
    gallery = sample_gallery("float16")
    path = tmp_path / "old.pvg"
    path.write_bytes(version1_bytes(gallery))
    with pytest.warns(PocketvecWarning, match="version 1.*re-save") as caught:
        loaded = Gallery.load(path, "abc123")
    assert len(caught) == 1 and "\n" not in str(caught[0].message) and str(path) in str(caught[0].message)
    assert loaded.labels == gallery.labels and np.array_equal(loaded.vectors, gallery.vectors)
    flipped = bytearray(path.read_bytes())
    flipped[-1] ^= 1
    path.write_bytes(bytes(flipped))
    with pytest.raises(GalleryError, match="payload checksum mismatch"):
        Gallery.load(path)


def test_every_flipped_byte_is_refused(tmp_path: Path) -> None:
    """Version 2's checksum covers the header too: no single-byte change anywhere is accepted."""
    raw = sample_gallery("int8", n=2).to_bytes()
    for i in range(len(raw)):
        damaged = bytearray(raw)
        damaged[i] ^= 0x20
        with pytest.raises(GalleryError):
            gallery_file.decode(bytes(damaged), "g.pvg")


def resealed(raw: bytes, change) -> bytes:
    """A file whose header was edited and whose checksum was recomputed (a bug, not damage)."""
    header, payload = split(raw)
    text = change(header)
    return sealed(text if isinstance(text, bytes) else json.dumps(text).encode(), payload)


BAD_HEADERS = {
    "dtype as a list": (lambda h: dict(h, dtype=["int8"]), "dtype must be one of"),
    "dtype as a dict": (lambda h: dict(h, dtype={"a": 1}), "dtype must be one of"),
    "count as bool": (lambda h: dict(h, count=True), "count must be an integer"),
    "dim zero": (lambda h: dict(h, dim=0), "dim must be an integer"),
    "dim as text": (lambda h: dict(h, dim="16"), "dim must be an integer"),
    "labels of numbers": (lambda h: dict(h, labels=list(range(h["count"]))), r"labels\[0\] must be a string"),
    "blank label": (lambda h: dict(h, labels=[" "] * h["count"]), "must not be empty"),
    "shared sources": (lambda h: dict(h, sources=[h["sources"][0]] * h["count"]), "sources must be unique"),
    "threshold out of range": (lambda h: dict(h, accept_rule=dict(h["accept_rule"], threshold=5)), "threshold"),
    "threshold as text": (lambda h: dict(h, accept_rule=dict(h["accept_rule"], threshold="0.5")), "threshold"),
    "negative margin": (lambda h: dict(h, accept_rule=dict(h["accept_rule"], margin=-0.1)), "margin"),
    "rule as a list": (lambda h: dict(h, accept_rule=[0.5]), "accept rule must be a JSON object"),
    "unknown rule key": (lambda h: dict(h, accept_rule=dict(h["accept_rule"], x=1)), "unknown keys"),
    "NaN threshold": (lambda h: json.dumps(dict(h, accept_rule=dict(h["accept_rule"], threshold=float("nan"))))
                      .encode(), "NaN is not a JSON number"),
    "unknown key": (lambda h: dict(h, extra=1), "unknown keys"),
    "space id empty": (lambda h: dict(h, embedding_space_id=""), "embedding_space_id must not be empty"),
    "nested 1,000 deep": (lambda h: (json.dumps(h)[:-1] + ', "x": ' + "[" * 1000 + "]" * 1000 + "}").encode(),
                          "nested 1001 deep"),
    "header is a list": (lambda h: [h], "must be a JSON object"),
    "count of 401 digits": (lambda h: dict(h, count=10**400), "count must be an integer in"),
    "dim of 401 digits": (lambda h: dict(h, dim=-(10**400)), "dim must be an integer in"),
    "threshold of 401 digits": (lambda h: dict(h, accept_rule=dict(h["accept_rule"], threshold=10**400)),
                                "threshold must be a finite number in"),
    "model_digest as a number": (lambda h: dict(h, model_digest=12), "model_digest must be 'sha256:' followed by"),
    "model_digest null": (lambda h: dict(h, model_digest=None), "model_digest must be 'sha256:' followed by"),
    "model_digest in capitals": (lambda h: dict(h, model_digest="sha256:" + "AB" * 32), "model_digest must be"),
    "model_digest too long": (lambda h: dict(h, model_digest="sha256:" + "ab" * 300), "model_digest must be"),
    "texts without their reader": (lambda h: dict(h, texts=[""] * h["count"]), "'texts' and 'text_reader' come"),
    "texts of another count": (lambda h: dict(h, texts=["2015"], text_reader="ppocrv5"), "'texts' must be a list of"),
    "texts of numbers": (lambda h: dict(h, texts=[2015] * h["count"], text_reader="ppocrv5"),
                         r"texts\[0\] must be a string"),
    "text_reader empty": (lambda h: dict(h, texts=[""] * h["count"], text_reader=""), "text_reader must not be empty"),
}
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.mark.parametrize("case", list(BAD_HEADERS))
def test_header_schema_is_checked_by_type_and_range(case: str) -> None:
    change, reason = BAD_HEADERS[case]
    raw = resealed(sample_gallery(n=3).to_bytes(), change)
    with pytest.raises(GalleryError, match=reason) as caught:
        gallery_file.decode(raw, "bad.pvg")
    assert str(caught.value).startswith("bad.pvg: ")


def test_a_gallery_of_another_dim_is_refused_by_name(tmp_path: Path) -> None:
    path = sample_gallery().save(tmp_path / "g.pvg")
    with pytest.raises(GalleryError, match=f"{path}: gallery rows have 16 values, the model makes 32"):
        Gallery.load(path, "abc123", dim=32)


def test_int8_is_round_x_times_127() -> None:
    x = np.array([[1.0, -1.0, 0.5, -0.5, 0.004, 0.0039]], dtype=np.float32)
    assert quantize(x, "int8").tolist() == [[127, -127, 64, -64, 1, 0]]


def test_duplicates_are_reported_not_added() -> None:
    gallery = sample_gallery()
    report = gallery.add(unit_rows(3, seed=1), ["item0", "new", "other"], [f"{0:064x}", "f" * 64, f"{1:064x}"])
    assert report.added == 1 and gallery.count == 6
    reasons = [s.reason for s in report.skipped]
    assert reasons == ["already enrolled as 'item0'", "the same image is already enrolled as 'item1'"]
    # the same image twice within one batch
    report = gallery.add(unit_rows(2, seed=2), ["x", "x"], ["e" * 64, "e" * 64])
    assert report.added == 1 and len(report.skipped) == 1


def test_several_images_per_label_and_remove() -> None:
    gallery = sample_gallery(n=6)
    assert gallery.label_counts() == {"item0": 2, "item1": 2, "item2": 2}
    assert gallery.remove("item1") == 2
    assert "item1" not in gallery.labels and gallery.vectors.shape == (4, 16)
    with pytest.raises(GalleryError, match="'item1' is not in the gallery"):
        gallery.remove("item1")


def test_the_model_digest_is_optional_and_read_back(tmp_path: Path) -> None:
    """`model_digest` (the weights digest of the model that built the rows) is an optional key: written when
    known, read back; without it (every gallery written before it) a file is written and read as before."""
    gallery = sample_gallery()
    without = gallery.to_bytes()
    assert Gallery.load(gallery.save(tmp_path / "old.pvg")).model_digest is None
    gallery.model_digest = DIGEST
    raw = gallery.save(tmp_path / "g.pvg").read_bytes()
    header = split(raw)[0]
    assert set(header) == gallery_header.KEYS_V2 | {"model_digest"} and header["model_digest"] == DIGEST
    assert Gallery.load(tmp_path / "g.pvg", "abc123").model_digest == DIGEST
    assert b"model_digest" not in without


def test_foreign_model_is_refused(tmp_path: Path) -> None:
    path = sample_gallery().save(tmp_path / "g.pvg")
    with pytest.raises(GalleryError, match="made by another model"):
        Gallery.load(path, "other-model")


def damaged_copies(raw: bytes) -> dict[str, bytes]:
    header_len = BASE.unpack_from(raw)[2]
    header = split(raw)[0]
    flipped = bytearray(raw)
    flipped[-3] ^= 0x01
    relabelled = dict(header, count=header["count"] + 1)
    text = json.dumps(relabelled).encode()
    return {
        "truncated payload": raw[:-7],
        "truncated header": raw[:40],
        "empty": b"",
        "wrong magic": b"PNGALLRY" + raw[8:],
        "future version": raw[:8] + struct.pack("<I", 6) + raw[12:],
        "flipped payload bit": bytes(flipped),
        "extra bytes": raw + b"\0" * 16,
        "header not json": raw[:24] + b"{" * header_len + raw[24 + header_len :],
        "count mismatch": raw[:12] + struct.pack("<I", len(text)) + raw[16:24] + text + raw[24 + header_len :],
    }


@pytest.mark.parametrize("damage", list(damaged_copies(sample_gallery().to_bytes())))
def test_damaged_files_are_refused(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "g.pvg"
    path.write_bytes(damaged_copies(sample_gallery().to_bytes())[damage])
    with pytest.raises(GalleryError, match=str(path)):
        Gallery.load(path)


def test_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = sample_gallery().save(tmp_path / "g.pvg")
    before = path.read_bytes()
    bigger = sample_gallery(n=9)

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pocketvec.atomic.os, "replace", crash)  # the write the gallery save goes through
    with pytest.raises(OSError, match="disk full"):
        bigger.save(path)
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
