"""The browser reads and writes `.pvg` files byte-compatible with pocketvec.runtime.gallery, in
every stored dtype, and refuses damaged files with the same reasons."""

from __future__ import annotations

import base64
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file

from ..runtime.test_runtime_gallery import BAD_HEADERS, DIGEST, resealed, split, version1_bytes
from .conftest import b64

JS_DECODE = """async ([data, spaceId]) => {
  const { Gallery } = await import("/src/gallery.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  try {
    const { gallery, header } = await Gallery.fromFile(bytes.buffer, "test.pvg", spaceId);
    const vectors = gallery.rows.map((r) => Array.from(r.embedding));
    return { header, labels: gallery.rows.map((r) => r.label), vectors };
  } catch (e) {
    return { error: e.message };
  }
}"""

JS_ENCODE = """async ([header, rows]) => {
  const { encodeGallery } = await import("/src/gallery_file.js");
  const out = await encodeGallery(header, Float32Array.from(rows.flat()));
  return btoa(Array.from(out, (v) => String.fromCharCode(v)).join(""));
}"""

JS_ENCODE_LOCALS = """async ([header, rows, locals]) => {
  const { encodeGallery } = await import("/src/gallery_file.js");
  const out = await encodeGallery(header, Float32Array.from(rows.flat()), Float32Array.from(locals));
  return btoa(Array.from(out, (v) => String.fromCharCode(v)).join(""));
}"""

JS_REENCODE = """async ([data, dtype]) => {
  const { Gallery } = await import("/src/gallery.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const { gallery } = await Gallery.fromFile(bytes.buffer, "test.pvg");
  const out = await gallery.toFile(dtype);
  return btoa(Array.from(out, (v) => String.fromCharCode(v)).join(""));
}"""


@pytest.fixture()
def js_page(page, serve_app, scenario):
    page.goto(serve_app(scenario.model) + "?sw=0")
    return page


def with_dtype(gallery: Gallery, dtype: str) -> Gallery:
    out = Gallery(gallery.embedding_space_id, gallery.dim, dtype, accept_rule=gallery.accept_rule)
    out.add(gallery.embeddings(), gallery.labels, gallery.sources)
    return out


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_js_reads_python_galleries_in_every_dtype(js_page, scenario, tmp_path: Path, dtype: str) -> None:
    gallery = with_dtype(scenario.gallery, dtype)
    path = gallery.save(tmp_path / f"{dtype}.pvg")
    out = js_page.evaluate(JS_DECODE, [b64(path.read_bytes()), scenario.space_id])
    assert "error" not in out, out
    assert out["labels"] == gallery.labels and out["header"]["accept_rule"]["threshold"] == scenario.rule.threshold
    np.testing.assert_array_equal(np.array(out["vectors"], dtype=np.float32), gallery.embeddings())


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_python_reads_js_galleries_byte_for_byte(js_page, scenario, tmp_path: Path, dtype: str) -> None:
    """JS re-encodes a Python gallery: Python loads it, and the payload is the same bytes."""
    source = with_dtype(scenario.gallery, "float32").save(tmp_path / "source.pvg")
    written = tmp_path / f"js_{dtype}.pvg"
    written.write_bytes(base64.b64decode(js_page.evaluate(JS_REENCODE, [b64(source.read_bytes()), dtype])))
    loaded = Gallery.load(written, embedding_space_id=scenario.space_id)
    expected = with_dtype(scenario.gallery, dtype)
    assert loaded.dtype == dtype and loaded.labels == expected.labels and loaded.sources == expected.sources
    assert loaded.accept_rule == scenario.rule
    np.testing.assert_array_equal(loaded.vectors, expected.vectors)
    header_len = int.from_bytes(written.read_bytes()[12:16], "little")
    assert (24 + header_len) % 16 == 0  # the payload starts 16-aligned


@pytest.mark.parametrize("dtype", ["float32", "int8"])
def test_js_and_python_write_the_same_bytes(js_page, scenario, dtype: str) -> None:
    """Version 4 from the browser and from Python: the same header and rows give identical files."""
    gallery = with_dtype(scenario.gallery, dtype)
    gallery.accept_rule = dataclasses.replace(scenario.rule, precision=1.0)  # a whole float: 1 in both
    gallery.created_by = "pocketvec test ü"
    gallery.model_digest = DIGEST  # the optional key: sorted among the others, the same bytes
    header = split(gallery.to_bytes())[0]
    rows = with_dtype(scenario.gallery, "float32").embeddings().tolist()
    written = base64.b64decode(js_page.evaluate(JS_ENCODE, [header, rows]))
    assert written == gallery.to_bytes()


def test_version_3_local_maps_round_to_float16_as_numpy_does(js_page, scenario) -> None:
    """Rows with local maps from unrounded float32 maps: the browser's float16 rounding writes
    the very bytes numpy's does, and the browser reads Python's maps back exactly."""
    from pocketvec.runtime.gallery.file import decode

    found = scenario.engine.embed_all(scenario.enrolled)  # items: the rows' maps, unrounded
    labels = [f"item {i}" for i in range(len(found.embeddings))]
    gallery = Gallery.for_model(scenario.engine.metadata)
    gallery.add(found.embeddings, labels, [f"source {i}" for i in range(len(labels))], found.locals)
    raw = gallery.to_bytes()
    assert int.from_bytes(raw[8:12], "little") == 5
    header = split(raw)[0]
    written = js_page.evaluate(JS_ENCODE_LOCALS, [header, found.embeddings.tolist(), found.locals.ravel().tolist()])
    assert base64.b64decode(written) == raw
    decode_locals = JS_DECODE.replace("vectors };", "vectors, locals: gallery.rows.map((r) => Array.from(r.local)) };")
    out = js_page.evaluate(decode_locals, [b64(raw), scenario.space_id])
    assert "error" not in out, out
    np.testing.assert_array_equal(np.array(out["locals"], np.float32).reshape(gallery.locals.shape),
                                  np.asarray(decode(raw, "g").locals, np.float32))


def test_js_refuses_a_bad_local_shape_like_python(js_page, scenario) -> None:
    from pocketvec.errors import GalleryError

    raw = scenario.gallery_path.read_bytes()
    for shape, reason in (([64], "local_shape must be"), ([0, 128], "local_shape locations must be an integer"),
                          ([64, 1.5], "local_shape channels must be an integer")):
        data = resealed(raw, lambda h, shape=shape: dict(h, local_shape=shape))
        out = js_page.evaluate(JS_DECODE, [b64(data), scenario.space_id])
        assert reason in out.get("error", ""), (shape, out)
        with pytest.raises(GalleryError, match=reason):
            gallery_file.decode(data, "test.pvg")


def damaged_versions(raw: bytes) -> dict[str, bytes]:
    flipped_header = bytearray(raw)
    flipped_header[30] ^= 1  # in the JSON header
    return {
        "too short": raw[:10],
        "not a pocketvec gallery (magic": b"NOTAGALL" + raw[8:],
        "format version 7 is not supported": raw[:8] + (7).to_bytes(4, "little") + raw[12:],
        "truncated gallery (header and rows need": raw[:-4],
        "gallery checksum mismatch (the file was modified": raw[:-1] + bytes([raw[-1] ^ 1]),
        "gallery checksum mismatch (the file": bytes(flipped_header),
        "truncated gallery (no room": raw[:40],
    }


def test_js_refuses_damaged_files_like_python(js_page, scenario) -> None:
    from pocketvec.errors import GalleryError

    raw = scenario.gallery_path.read_bytes()
    for reason, data in damaged_versions(raw).items():
        out = js_page.evaluate(JS_DECODE, [b64(data), scenario.space_id])
        assert reason in out.get("error", ""), (reason, out)
        path = scenario.gallery_path.with_name("damaged.pvg")
        path.write_bytes(data)
        with pytest.raises(GalleryError, match=reason.split(" (")[0]):
            Gallery.load(path)
    out = js_page.evaluate(JS_DECODE, [b64(raw), "ffffffffffffffff"])
    assert "made by another model" in out["error"] and scenario.space_id in out["error"]


def test_js_checks_the_header_schema_like_python(js_page, scenario) -> None:
    """Headers rewritten with a valid checksum (a writer's bug, not damage): both refuse each one."""
    from pocketvec.errors import GalleryError

    raw = scenario.gallery.to_bytes()
    for case, (change, reason) in BAD_HEADERS.items():
        data = resealed(raw, change)
        out = js_page.evaluate(JS_DECODE, [b64(data), scenario.space_id])
        assert "error" in out and out["error"].startswith("test.pvg: "), (case, out)
        with pytest.raises(GalleryError, match=reason):
            gallery_file.decode(data, "test.pvg")
        js_reason = out["error"].split(": ", 1)[1].split(" Got")[0].split(" (")[0]
        py_reason = str(_error(data)).split(": ", 1)[1].split(" Got")[0].split(" (")[0]
        assert js_reason == py_reason, case


def _error(data: bytes) -> Exception:
    try:
        gallery_file.decode(data, "test.pvg")
    except Exception as e:
        return e
    raise AssertionError("accepted")


JS_NOTES = """async ([data, spaceId, digest]) => {
  const { Gallery } = await import("/src/gallery.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const notes = [], warn = console.warn;
  console.warn = (line) => notes.push(line);
  try {
    const { gallery, header } = await Gallery.fromFile(bytes.buffer, "test.pvg", spaceId, undefined, undefined, digest);
    return { notes, digest: gallery.modelDigest, key: header.model_digest ?? null, rows: gallery.count };
  } finally {
    console.warn = warn;
  }
}"""


def test_js_reads_the_model_digest_and_names_another_export_in_one_line(js_page, scenario) -> None:
    """The served gallery (built by Python) records its model's digest: the app reads it as Python does; a
    model of the same space with another digest (another export of the run) gets one console line, not a
    refusal; a gallery without the key (written before it) reads as before."""
    raw = scenario.gallery_path.read_bytes()
    digest = scenario.engine.metadata.weights_digest
    assert Gallery.load(scenario.gallery_path).model_digest == digest
    same = js_page.evaluate(JS_NOTES, [b64(raw), scenario.space_id, digest])
    assert same == {"notes": [], "digest": digest, "key": digest, "rows": scenario.gallery.count}
    other = js_page.evaluate(JS_NOTES, [b64(raw), scenario.space_id, DIGEST])
    assert other["rows"] == scenario.gallery.count and other["notes"] == [
        f"test.pvg was built by another export of this model (weights {digest[:19]}, this model's {DIGEST[:19]}): "
        "same embedding space, so it is used as it is"]
    without = resealed(raw, lambda h: {k: v for k, v in h.items() if k != "model_digest"})
    older = js_page.evaluate(JS_NOTES, [b64(without), scenario.space_id, DIGEST])
    assert older == {"notes": [], "digest": None, "key": None, "rows": scenario.gallery.count}


def test_js_reads_version_1_files(js_page, scenario) -> None:
    out = js_page.evaluate(JS_DECODE, [b64(version1_bytes(scenario.gallery)), scenario.space_id])
    assert "error" not in out and out["labels"] == scenario.gallery.labels


def test_js_refuses_rows_and_maps_that_are_not_unit_vectors_like_python(js_page, scenario) -> None:
    """A row or a local-map location rescaled and the file resealed (a writer's bug): both refuse it alike."""
    import dataclasses

    from pocketvec.errors import GalleryError

    source = scenario.gallery
    assert source.dtype == "float32" and source.locals is not None and source.count >= 2
    vectors, maps = source.vectors.copy(), source.locals.copy()
    vectors[1] *= 3
    maps[1, 2] *= 3
    cases = {"row 1: norm": dataclasses.replace(source, vectors=vectors),
             "row 1, local map location 2: norm": dataclasses.replace(source, locals=maps)}
    for reason, gallery in cases.items():
        data = gallery.to_bytes()
        out = js_page.evaluate(JS_DECODE, [b64(data), scenario.space_id])
        assert reason in out.get("error", "") and "not a unit vector" in out["error"], (reason, out)
        with pytest.raises(GalleryError, match=reason):
            gallery_file.decode(data, "test.pvg")
    assert "error" not in js_page.evaluate(JS_DECODE, [b64(source.to_bytes()), scenario.space_id])


JS_ADD = """async ([data]) => {
  const { Gallery } = await import("/src/gallery.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const { gallery } = await Gallery.fromFile(bytes.buffer, "test.pvg");
  try {
    gallery.add("new item", "sha", gallery.rows[0].embedding);
    return "added";
  } catch (e) {
    return e.message;
  }
}"""


def test_js_keeps_the_items_printed_texts(js_page, scenario) -> None:
    """A gallery that keeps its items' printed text (text verification): the browser writes the texts back as it
    read them, and refuses to enroll a row it cannot read the text of rather than drop the texts."""
    gallery = with_dtype(scenario.gallery, "float32")
    gallery.texts, gallery.text_reader = [f"CHATEAU {2000 + i}\n75cl" for i in range(gallery.count)], "ppocrv5"
    raw = gallery.to_bytes()
    written = base64.b64decode(js_page.evaluate(JS_REENCODE, [b64(raw), "float32"]))
    header = gallery_file.decode(written, "js.pvg").header
    assert header["texts"] == gallery.texts and header["text_reader"] == "ppocrv5"
    assert "keeps each item's printed text" in js_page.evaluate(JS_ADD, [b64(raw)])


JS_DECODE_NOTES = """async ([data, spaceId]) => {
  const { Gallery } = await import("/src/gallery.js");
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  const notes = [], warn = console.warn;
  console.warn = (line) => notes.push(line);
  try {
    const { gallery, header } = await Gallery.fromFile(bytes.buffer, "test.pvg", spaceId);
    return { header, notes, labels: gallery.rows.map((r) => r.label),
             vectors: gallery.rows.map((r) => Array.from(r.embedding)),
             locals: gallery.rows.map((r) => Array.from(r.local ?? [])) };
  } catch (e) {
    return { error: e.message };
  } finally {
    console.warn = warn;
  }
}"""


def test_js_reads_appended_segments_and_leaves_out_an_unfinished_one(js_page, scenario, tmp_path: Path) -> None:
    """A gallery that `gallery add` grew by an appended segment: the browser reads every row as Python does; cut
    inside the segment (an append stopped mid-write) it reads the committed rows with one console line; a
    damaged segment is refused by both."""
    from pocketvec.errors import GalleryError
    from pocketvec.runtime.gallery.update import update_gallery

    path = scenario.gallery.save(tmp_path / "grown.pvg")
    committed = path.stat().st_size
    copy = scenario.gallery

    def add(gallery: Gallery) -> tuple[None, bool]:
        gallery.add(copy.embeddings()[:2], ["added a", "added b"], ["new source a", "new source b"],
                    copy.local_maps([0, 1]))
        return None, True

    update_gallery(path, add)
    grown = Gallery.load(path)
    assert grown.saved.parts == 2
    out = js_page.evaluate(JS_DECODE_NOTES, [b64(path.read_bytes()), scenario.space_id])
    assert "error" not in out, out
    assert out["labels"] == grown.labels and out["header"]["count"] == grown.count and not out["notes"]
    np.testing.assert_array_equal(np.array(out["vectors"], np.float32), grown.embeddings())
    if grown.locals is not None:
        np.testing.assert_array_equal(np.array(out["locals"], np.float32).reshape(grown.locals.shape),
                                      np.asarray(grown.locals, np.float32))
    raw = path.read_bytes()
    out = js_page.evaluate(JS_DECODE_NOTES, [b64(raw[:-10]), scenario.space_id])
    assert out["labels"] == copy.labels and len(out["notes"]) == 1
    assert f"an append that did not finish ({len(raw) - 10 - committed} bytes at byte {committed})" in out["notes"][0]
    damaged = bytearray(raw)
    damaged[-40] ^= 0x10
    out = js_page.evaluate(JS_DECODE, [b64(bytes(damaged)), scenario.space_id])
    assert f"appended segment at byte {committed} checksum mismatch" in out.get("error", ""), out
    with pytest.raises(GalleryError, match=f"appended segment at byte {committed} checksum mismatch"):
        gallery_file.decode(bytes(damaged), "test.pvg")
