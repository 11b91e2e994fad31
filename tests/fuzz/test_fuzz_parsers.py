"""Fuzzing the parsers of user files with hypothesis: the `.pvg` reader (version 4 with and without local
maps and appended segments, versions 2 and 3; model_digest included), the model-metadata reader
(local_rerank, accept_rule, query_crop_mode, weights_digest included) and the image loader. Each may only
answer with a value that passes its checks or a clean PocketvecError naming the input; a checksummed gallery
never accepts a changed byte (a file that ends inside its last appended segment, as an append stopped
mid-write leaves it, reads as the rows committed before it), and one whose checksum was recomputed over
changed rows or maps loads only when they are still unit vectors."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pocketvec.errors import GalleryError, ImageLoadError, ModelFileError
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.image_bounds import check_bounds
from pocketvec.runtime.images import load_image
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess
from pocketvec.runtime.unit_norm import UNIT_TOLERANCE, first_not_unit

FAST = settings(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def fuzz(examples: int) -> settings:
    """Reproducible (derandomized) runs of `examples` cases, no example database on disk."""
    return settings(FAST, max_examples=examples)


LOCAL_SHAPE = (4, 6)  # a version-3 gallery's local maps: 4 locations of 6 channels per row
DIGEST = "sha256:" + "0123456789abcdef" * 4  # a weights digest (the model's, the gallery's model_digest)
RERANK = LocalRerank(locations=LOCAL_SHAPE[0], channels=LOCAL_SHAPE[1], top_k=2)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def sample_gallery(dtype: str, locals_: bool = False) -> Gallery:
    """Three rows of 8 values; with `locals_`, version 3: each row's local map too."""
    rng = np.random.default_rng(0)
    rows, maps = unit(rng.standard_normal((3, 8))), unit(rng.standard_normal((3, *LOCAL_SHAPE)))
    gallery = Gallery("space01", 8, dtype, accept_rule=AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99),
                      local_shape=LOCAL_SHAPE if locals_ else None, model_digest=DIGEST)
    gallery.add(rows, ["a", "b", "a"], [f"{i:064x}" for i in range(3)], maps if locals_ else None)
    return gallery


def appended(gallery: Gallery) -> bytes:
    """The gallery's file with its last row in an appended segment."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "g.pvg"
        first = Gallery(gallery.embedding_space_id, gallery.dim, gallery.dtype, gallery.labels[:-1],
                        gallery.sources[:-1], gallery.vectors[:-1], gallery.accept_rule, gallery.created_by,
                        gallery.local_shape, None if gallery.locals is None else gallery.locals.copy()[:-1],
                        gallery.model_digest)
        first.save(path)
        loaded = Gallery.load(path)
        loaded.add(gallery.embeddings()[-1:], gallery.labels[-1:], gallery.sources[-1:],
                   gallery.local_maps([-1]))
        loaded.write(path)
        return path.read_bytes()


def reseal(header_text: bytes, payload: bytes, version: int = 4) -> bytes:
    """A file of one part around any header bytes, with a correct checksum (version 4, or 2 or 3: their
    16-byte preamble has no payload length)."""
    preamble = gallery_file.BASE.size if version == 4 else 16
    header_text += b" " * ((-(preamble + len(header_text))) % 16)
    fields = (len(header_text), len(payload)) if version == 4 else (len(header_text),)
    body = struct.pack("<8sII" + "Q" * (version == 4), b"PVGALLRY", version, *fields) + header_text + payload
    return body + hashlib.sha256(body).digest()


def parts(raw: bytes) -> tuple[dict, bytes]:
    """A sound file's header and payload (of its base)."""
    header_len, payload_len = gallery_file.BASE.unpack_from(raw)[2:]
    end = gallery_file.BASE.size + header_len
    return json.loads(raw[gallery_file.BASE.size : end]), raw[end : end + payload_len]


def legacy(raw: bytes) -> bytes:
    """A version-4 file without segments as the version-2 (or 3, with local maps) file of the same rows."""
    header, payload = parts(raw)
    return reseal(json.dumps(header, sort_keys=True).encode(), payload, 3 if "local_shape" in header else 2)


GALLERIES = {}
for dtype in ("float32", "float16", "int8"):
    for locals_ in (False, True):
        name = f"{dtype}{' maps' if locals_ else ''}"
        GALLERIES[name] = sample_gallery(dtype, locals_).to_bytes()
        GALLERIES[f"{name} v{3 if locals_ else 2}"] = legacy(GALLERIES[name])
        GALLERIES[f"{name} appended"] = appended(sample_gallery(dtype, locals_))

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
@given(name=st.sampled_from(sorted(GALLERIES)), edits=st.lists(edit, min_size=1, max_size=4))
def test_no_changed_byte_of_a_gallery_is_accepted(name: str, edits: list) -> None:
    raw = GALLERIES[name]
    mutated = mutate(raw, edits)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an append cut short
            decoded = gallery_file.decode(mutated, "fuzz.pvg")
    except GalleryError as e:
        assert str(e).startswith("fuzz.pvg")
        return
    if mutated != raw:  # the file ends inside its appended segment: the base's rows alone, unchanged bytes
        end = decoded.committed_end
        assert end < len(mutated) and mutated[:end] == raw[:end], "a changed gallery was accepted"
        assert decoded.header["count"] == len(parts(raw)[0]["labels"]) == 2


def check_usable(decoded: gallery_file.Decoded) -> None:
    """What a decoded gallery must be: it re-encodes to the same rows, and a Matcher (re-ranking when it
    keeps local maps) answers finite scores no better than a unit vector's."""
    assert len(decoded.vectors) == decoded.header["count"]
    header = decoded.header
    shape = tuple(header["local_shape"]) if "local_shape" in header else None
    gallery = Gallery(header["embedding_space_id"], header["dim"], header["dtype"], header["labels"],
                      header["sources"], decoded.vectors, decoded.accept_rule, header["created_by"], shape,
                      decoded.locals, header.get("model_digest"))
    again = gallery_file.decode(gallery.to_bytes(), "again.pvg")
    assert again.header["labels"] == gallery.labels and np.array_equal(again.vectors, gallery.vectors)
    assert again.header.get("model_digest") == header.get("model_digest")
    assert first_not_unit(gallery.vectors) is None
    query = gallery.embeddings()[:1]
    rerank, query_locals = None, None
    if shape is not None:
        rerank = LocalRerank(locations=shape[0], channels=shape[1], top_k=2)
        query_locals = gallery.local_maps()[:1]
    for match in Matcher(gallery, decoded.accept_rule, local_rerank=rerank).match(query, 2, query_locals):
        assert all(np.isfinite(score) and score <= 1 + 4 * UNIT_TOLERANCE for _, score in match.top)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
HEADER, PAYLOAD = parts(GALLERIES["float32"])
HEADER_V3, PAYLOAD_V3 = parts(GALLERIES["float32 maps"])
RULE_KEYS = sorted(HEADER["accept_rule"])
# small integers, so that a changed dim, count or local shape often still fits the payload
shape_values = st.integers(-2, 10) | json_values


@st.composite
def changed_headers(draw) -> tuple[int, dict, bytes]:
    version = draw(st.sampled_from([2, 3, 4]))
    maps = version == 3 or (version == 4 and draw(st.booleans()))
    original = HEADER_V3 if maps else HEADER
    header = json.loads(json.dumps(original))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(["top", "rule", "drop", "list item", "local shape"]))
        if where == "top":
            key = draw(st.sampled_from([*sorted(original), "local_shape", "extra"]))
            header[key] = draw(st.sampled_from([DIGEST, DIGEST.upper(), DIGEST[:-1]]) | json_values)
        elif where == "rule" and isinstance(header.get("accept_rule"), dict):
            header["accept_rule"][draw(st.sampled_from(RULE_KEYS))] = draw(json_values)
        elif where == "drop" and header:
            header.pop(draw(st.sampled_from(sorted(header))))
        elif where == "local shape" and isinstance(header.get("local_shape"), list) and header["local_shape"]:
            header["local_shape"][draw(st.integers(0, len(header["local_shape"]) - 1))] = draw(shape_values)
        elif isinstance(header.get("labels"), list) and header["labels"]:
            header["labels"][draw(st.integers(0, len(header["labels"]) - 1))] = draw(json_values)
    return version, header, PAYLOAD_V3 if maps else PAYLOAD


@fuzz(2000)
@given(changed=changed_headers())
def test_rewritten_headers_give_a_valid_gallery_or_a_clean_error(changed: tuple[int, dict, bytes]) -> None:
    """A writer's bug (header changed, checksum recomputed), version 2, 3 or 4: refused, or a gallery that works."""
    version, header, payload = changed
    raw = reseal(json.dumps(header, allow_nan=True).encode(), payload, version)
    try:
        decoded = gallery_file.decode(raw, "fuzz.pvg")
    except GalleryError as e:
        assert str(e).startswith("fuzz.pvg")
        return
    check_usable(decoded)


@fuzz(2000)
@given(name=st.sampled_from(sorted(GALLERIES)), edits=st.lists(edit, min_size=1, max_size=4))
def test_rewritten_rows_and_maps_load_only_as_unit_vectors(name: str, edits: list) -> None:
    """A writer's bug in the payload (rows or local maps changed, checksum recomputed): refused naming the
    file, or rows and maps that are still unit vectors (a row x1000 must never answer "accepted")."""
    header, payload = parts(GALLERIES[name.rsplit(" v", 1)[0]])  # of the base, resealed in the name's version
    version = int(name[-1]) if name[-2:] in ("v2", "v3") else 4
    raw = reseal(json.dumps(header).encode(), mutate(payload, edits), version)
    try:
        decoded = gallery_file.decode(raw, "fuzz.pvg")
    except GalleryError as e:
        assert str(e).startswith("fuzz.pvg")
        return
    if decoded.locals is not None:
        assert first_not_unit(np.asarray(decoded.locals), allow_zero=True) is None
    check_usable(decoded)


@fuzz(1500)
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
                      st.integers(0, 3000).map(lambda n: "[" * n + "]" * n)))
def test_arbitrary_header_text_is_a_clean_error(text: str) -> None:
    with pytest.raises(GalleryError):
        gallery_file.decode(reseal(text.encode("utf-8", "surrogatepass"), PAYLOAD), "fuzz.pvg")


METADATA = ModelMetadata(PreprocessSpec(input_size=96), 64, "space01", "tiny",
                         AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99))
# the fields added since: the photos' crop, the local re-rank with its later keys, the accept rule's method,
# the weights digest
METADATA_NEW = ModelMetadata(PreprocessSpec(input_size=96, crop_mode="scale_fit", query_crop_mode="scale_fill"),
                             64, "space01", "tiny", AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99, method="pair_f1"),
                             local_rerank=LocalRerank(locations=36, channels=128, worst_fraction=0.1,
                                                      photo_weight=0.5, photo_threshold=0.5),
                             weights_digest=DIGEST)
SECTIONS = ("top", "preprocess", "rule", "local_rerank", "drop", "drop in a section")


@st.composite
def changed_metadata(draw) -> str:
    data = json.loads(draw(st.sampled_from([METADATA, METADATA_NEW])).to_json())
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.sampled_from(SECTIONS))
        inner = draw(st.sampled_from(["preprocess", "accept_rule", "local_rerank"]))
        section = {"top": data, "preprocess": data.get("preprocess"), "rule": data.get("accept_rule"),
                   "local_rerank": data.get("local_rerank"), "drop": data,
                   "drop in a section": data.get(inner)}[where]
        if not isinstance(section, dict):
            continue
        key = draw(st.sampled_from([*sorted(section), "local_rerank", "query_crop_mode", "method", "weights_digest",
                                    "extra"]))
        if where.startswith("drop"):
            section.pop(key, None)
        else:
            section[key] = draw(st.sampled_from(["scale_fill", "center_crop", "decision", DIGEST, DIGEST[7:]])
                                | shape_values)
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
    assert meta.weights_digest in (None, DIGEST)  # a digest is checked by form: nothing else passes
    for queries in meta.preprocess.query_specs():
        assert queries.query_crop_mode is None and queries.input_size == meta.preprocess.input_size
    if meta.local_rerank is not None:  # a re-rank that can be run: its own checks held
        rerank = meta.local_rerank
        assert LocalRerank.from_dict(rerank.to_dict()) == rerank and min(rerank.shape) >= 1


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
