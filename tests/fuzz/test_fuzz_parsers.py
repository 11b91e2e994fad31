"""Fuzzing the parsers of user files with hypothesis: the `.pvg` reader, the model-metadata reader
and the image loader. Each may only answer with a value that passes its checks or a clean
PocketvecError naming the input; a checksummed gallery never accepts a changed byte."""

from __future__ import annotations

import hashlib
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pocketvec.errors import GalleryError, ImageLoadError, ModelFileError
from pocketvec.runtime import gallery_file
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.image_bounds import check_bounds
from pocketvec.runtime.images import load_image
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess

FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def fuzz(examples: int) -> settings:
    """Reproducible (derandomized) runs of `examples` cases, no example database on disk."""
    return settings(FAST, max_examples=examples)


def sample_gallery(dtype: str) -> Gallery:
    rows = np.random.default_rng(0).standard_normal((3, 8)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    gallery = Gallery("space01", 8, dtype, accept_rule=AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99))
    gallery.add(rows, ["a", "b", "a"], [f"{i:064x}" for i in range(3)])
    return gallery


GALLERIES = {dtype: sample_gallery(dtype).to_bytes() for dtype in ("float32", "float16", "int8")}

edit = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 10_000), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.integers(0, 10_000), st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), st.integers(0, 10_000), st.integers(1, 64)),
    st.tuples(st.just("truncate"), st.integers(0, 10_000), st.just(0)),
)


def mutate(raw: bytes, edits: list) -> bytes:
    data = bytearray(raw)
    for kind, at, arg in edits:
        at %= max(1, len(data))
        if kind == "flip" and data:
            data[at] ^= arg
        elif kind == "insert":
            data[at:at] = arg
        elif kind == "delete":
            del data[at : at + arg]
        else:
            del data[at:]
    return bytes(data)


@fuzz(3000)
@given(dtype=st.sampled_from(sorted(GALLERIES)), edits=st.lists(edit, min_size=1, max_size=4))
def test_no_changed_byte_of_a_gallery_is_accepted(dtype: str, edits: list) -> None:
    raw = GALLERIES[dtype]
    mutated = mutate(raw, edits)
    try:
        gallery_file.decode(mutated, "fuzz.pvg")
    except GalleryError as e:
        assert str(e).startswith("fuzz.pvg")
        return
    assert mutated == raw, "a changed gallery file was accepted"


def reseal(header_text: bytes, payload: bytes) -> bytes:
    """A version-2 file around any header bytes, with a correct checksum."""
    header_text += b" " * ((-(16 + len(header_text))) % 16)
    body = struct.pack("<8sII", b"PVGALLRY", 2, len(header_text)) + header_text + payload
    return body + hashlib.sha256(body).digest()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HEADER = json.loads(GALLERIES["float32"][16 : 16 + struct.unpack_from("<I", GALLERIES["float32"], 12)[0]])
PAYLOAD = GALLERIES["float32"][16 + struct.unpack_from("<I", GALLERIES["float32"], 12)[0] : -32]
RULE_KEYS = sorted(HEADER["accept_rule"])


@st.composite
def changed_headers(draw) -> dict:
    header = json.loads(json.dumps(HEADER))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "rule", "drop", "list item"]))
        if where == "top":
            header[draw(st.sampled_from([*sorted(HEADER), "extra"]))] = draw(json_values)
        elif where == "rule" and isinstance(header.get("accept_rule"), dict):
            header["accept_rule"][draw(st.sampled_from(RULE_KEYS))] = draw(json_values)
        elif where == "drop" and header:
            header.pop(draw(st.sampled_from(sorted(header))))
        elif isinstance(header.get("labels"), list) and header["labels"]:
            header["labels"][draw(st.integers(0, len(header["labels"]) - 1))] = draw(json_values)
    return header


@fuzz(2000)
@given(header=changed_headers())
def test_rewritten_headers_give_a_valid_gallery_or_a_clean_error(header: dict) -> None:
    """A writer's bug (header changed, checksum recomputed): refused, or a gallery that works."""
    raw = reseal(json.dumps(header, allow_nan=True).encode(), PAYLOAD)
    try:
        decoded = gallery_file.decode(raw, "fuzz.pvg")
    except GalleryError:
        return
    gallery = Gallery(decoded.header["embedding_space_id"], decoded.header["dim"], decoded.header["dtype"],
                      decoded.header["labels"], decoded.header["sources"], decoded.vectors, decoded.accept_rule,
                      decoded.header["created_by"])
    assert gallery_file.decode(gallery.to_bytes(), "again.pvg").header["labels"] == gallery.labels
    Matcher(gallery, decoded.accept_rule).match(gallery.embeddings()[:1], 2)


@fuzz(1500)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.integers(0, 3000).map(lambda n: "[" * n + "]" * n)))
def test_arbitrary_header_text_is_a_clean_error(text: str) -> None:
    with pytest.raises(GalleryError):
        gallery_file.decode(reseal(text.encode("utf-8", "surrogatepass"), PAYLOAD), "fuzz.pvg")


METADATA = ModelMetadata(PreprocessSpec(input_size=96), 64, "space01", "tiny",
                         AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99))


@st.composite
def changed_metadata(draw) -> str:
    data = json.loads(METADATA.to_json())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "preprocess", "rule", "drop"]))
        section = {"top": data, "preprocess": data.get("preprocess"), "rule": data.get("accept_rule"),
                   "drop": data}[where]
        if not isinstance(section, dict):
            continue
        key = draw(st.sampled_from([*sorted(section), "extra"]))
        if where == "drop":
            section.pop(key, None)
        else:
            section[key] = draw(json_values)
    return json.dumps(data, allow_nan=True)


@fuzz(2000)
@given(text=st.one_of(changed_metadata(), st.text(max_size=100), st.integers(0, 2000).map(lambda n: "{" * n)))
def test_model_metadata_gives_valid_metadata_or_a_clean_error(text: str) -> None:
    try:
        meta = ModelMetadata.from_json(text, "fuzz.onnx")
    except ModelFileError as e:
        assert str(e).startswith("fuzz.onnx: ")
        return
    assert ModelMetadata.from_json(meta.to_json()) == meta  # what was accepted is whole
    assert isinstance(meta.embedding_dim, int) and meta.embedding_dim >= 1


def encoded(fmt: str) -> bytes:
    rng = np.random.default_rng(1)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(out, fmt)
    return out.getvalue()


IMAGES = {fmt: encoded(fmt) for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")}
SPEC = PreprocessSpec(input_size=32)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow's notes on the damaged files it still reads
@fuzz(1500)
@given(fmt=st.sampled_from(sorted(IMAGES)), edits=st.lists(edit, min_size=0, max_size=3),
       junk=st.booleans(), data=st.binary(max_size=64))
def test_image_loader_decodes_or_names_the_file(tmp_path_factory, fmt: str, edits: list, junk: bool,
                                                 data: bytes) -> None:
    path = tmp_path_factory.getbasetemp() / f"fuzz.{fmt.lower()}"
    path.write_bytes(data if junk else mutate(IMAGES[fmt], edits))
    try:
        image = load_image(path)
        check_bounds(image.shape[1], image.shape[0], SPEC, path)
    except ImageLoadError as e:
        assert e.path == Path(path) and str(path) in str(e)
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert preprocess(image, SPEC).shape == (32, 32, 3)
