"""Exported models carry the digest of their weights, checked when they are opened: one edited weight is
refused naming the file; a model without the key (an older export) opens as before. A gallery records the
digest of the model that built it, and another export of the same run (same embedding space, other digest)
is named in one warning line, not refused. Real exports, real onnxruntime sessions, real images."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import GalleryError, ModelFileError, PocketvecWarning
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.weights_digest import PATTERN, onnx_digest, short

from .test_runtime_cli import cli


def load(path: Path):
    import onnx

    return onnx.load(str(path))


def save(proto, path: Path) -> Path:
    import onnx

    onnx.save(proto, str(path))
    return path


def with_metadata(proto, change) -> None:
    """`change(data)` applied to the proto's pocketvec metadata JSON, in place."""
    entry = next(e for e in proto.metadata_props if e.key == "pocketvec")
    data = json.loads(entry.value)
    change(data)
    entry.value = json.dumps(data)


@pytest.fixture(scope="module")
def int8_model(onnx_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Another export of the same run: the fixture's model with weight-only int8 weights, written as
    `pocketvec export onnx --quantize int8` writes it."""
    from pocketvec.export.onnx_export import save_onnx_atomic
    from pocketvec.export.onnx_quantize import to_weight_int8

    out = tmp_path_factory.mktemp("int8") / "model_int8.onnx"
    return save_onnx_atomic(to_weight_int8(load(onnx_model)), out, open_engine(onnx_model).metadata)


def test_an_export_records_the_digest_of_its_weights(onnx_model: Path, int8_model: Path) -> None:
    fp32, int8 = open_engine(onnx_model).metadata, open_engine(int8_model).metadata
    assert PATTERN.fullmatch(fp32.weights_digest) and fp32.weights_digest == onnx_digest(load(onnx_model))
    assert int8.embedding_space_id == fp32.embedding_space_id and int8.weights_digest != fp32.weights_digest


@pytest.mark.parametrize("where", ["initializer", "constant"])
def test_one_edited_weight_is_refused_naming_the_file(onnx_model: Path, tmp_path: Path, where: str) -> None:
    from onnx import numpy_helper

    proto = load(onnx_model)
    if where == "initializer":  # one float of the largest weight
        tensor = max(proto.graph.initializer, key=lambda t: len(t.raw_data))
    else:  # the Constant's value (the L2 norm's epsilon)
        tensor = next(n for n in proto.graph.node if n.op_type == "Constant").attribute[0].t
    values = numpy_helper.to_array(tensor).copy()
    values.flat[values.size // 2] += np.float32(0.01)
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
    edited = save(proto, tmp_path / "edited.onnx")
    with pytest.raises(ModelFileError, match=r"edited\.onnx: its weights do not match the digest recorded at "
                                             r"export \(the file is damaged or was edited\); export the model again"):
        open_engine(edited)


def test_a_model_without_a_digest_opens_as_before(onnx_model: Path, item_paths: list[Path], tmp_path: Path) -> None:
    """An export from before digests (here: the key dropped from the metadata) opens and embeds as before; a
    metadata-only change through pocketvec (the accept rule written into the file) keeps a digest that holds."""
    from pocketvec.runtime.metadata import AcceptRule
    from pocketvec.runtime.model_files import write_accept_rule

    proto = load(onnx_model)
    with_metadata(proto, lambda data: data.pop("weights_digest"))
    older = open_engine(save(proto, tmp_path / "older.onnx"))
    assert older.metadata.weights_digest is None
    np.testing.assert_array_equal(older.embed(item_paths[:2]), open_engine(onnx_model).embed(item_paths[:2]))
    ruled = write_accept_rule(shutil.copy(onnx_model, tmp_path / "ruled.onnx"), AcceptRule(0.6, 0.05))
    meta = open_engine(ruled).metadata
    assert meta.accept_rule.threshold == 0.6 and meta.weights_digest == open_engine(onnx_model).metadata.weights_digest


def test_a_malformed_digest_is_invalid_metadata(onnx_model: Path, tmp_path: Path) -> None:
    proto = load(onnx_model)
    with_metadata(proto, lambda data: data.update(weights_digest="md5:0123"))
    with pytest.raises(ModelFileError, match=r"odd\.onnx: pocketvec metadata is invalid: weights_digest must be "
                                             r"'sha256:' followed by 64 lowercase hex digits"):
        open_engine(save(proto, tmp_path / "odd.onnx"))


def test_onnx_digest_takes_milliseconds(onnx_model: Path) -> None:
    """A 2.7 MB model: a few milliseconds on one core (a generous bound: the machine may be busy)."""
    import time

    proto = load(onnx_model)
    start = time.perf_counter()
    onnx_digest(proto)
    assert time.perf_counter() - start < 0.5


def build(onnx_model: Path, items_dir: Path, out: Path) -> Gallery:
    from pocketvec.runtime.enroll import build_gallery
    from pocketvec.runtime.gallery.views import NO_VIEWS

    gallery, _ = build_gallery(open_engine(onnx_model), items_dir, views=NO_VIEWS)
    gallery.save(out)
    return gallery


def test_a_gallery_records_the_digest_of_the_model_that_built_it(onnx_model: Path, int8_model: Path,
                                                                  items_dir: Path, item_paths: list[Path],
                                                                  tmp_path: Path) -> None:
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.gallery.views import NO_VIEWS

    digest = open_engine(onnx_model).metadata.weights_digest
    path = tmp_path / "items.pvg"
    build(onnx_model, items_dir, path)
    assert gallery_file.read(path).header["model_digest"] == digest  # in the file's header, as written
    assert Gallery.load(path).model_digest == digest
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PocketvecWarning)  # the note is the next test's
        rec = Recognizer(int8_model, path, views=NO_VIEWS, text=False)
    rec.enroll(item_paths[8], label="added by int8")
    rec.save()
    assert Gallery.load(path).model_digest == open_engine(int8_model).metadata.weights_digest  # who added rows last
    older = Gallery.load(path)
    older.model_digest = None  # a gallery written before digests
    older.save(tmp_path / "older.pvg")
    assert b"model_digest" not in (tmp_path / "older.pvg").read_bytes()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no note: nothing to compare
        assert Recognizer(onnx_model, tmp_path / "older.pvg").gallery.model_digest is None


def test_another_export_of_the_same_run_is_named_in_one_line(onnx_model: Path, int8_model: Path,
                                                             other_onnx_model: Path, items_dir: Path,
                                                             tmp_path: Path) -> None:
    from pocketvec.recognizer import Recognizer

    path = tmp_path / "items.pvg"
    gallery = build(onnx_model, items_dir, path)
    fp32, int8 = (open_engine(m).metadata.weights_digest for m in (onnx_model, int8_model))
    with pytest.warns(PocketvecWarning) as caught:
        rec = Recognizer(int8_model, path)
    assert len(caught) == 1
    note = str(caught[0].message)
    assert note == (f"{path} was built by another export of this model (weights {short(fp32)}, this model's "
                    f"{short(int8)}): same embedding space, so it is used as it is")
    item = sorted(items_dir.iterdir())[0]
    assert item.stem in gallery.labels and rec.match(item).top[0].label == item.stem  # matched in the same space
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Recognizer(onnx_model, path)  # the model that built it: no note
    with pytest.raises(GalleryError, match="made by another model"):
        Recognizer(other_onnx_model, path)  # another embedding space: refused as before


def test_match_and_eval_print_the_note_in_one_line(monkeypatch, capsys, onnx_model: Path, int8_model: Path,
                                                   items_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "items.pvg"
    build(onnx_model, items_dir, path)
    photo = sorted(items_dir.iterdir())[0]
    code, out, err = cli(monkeypatch, capsys, "match", int8_model, path, photo, "--json")
    assert code == 0 and json.loads(out)["results"][0]["top"]
    notes = [line for line in err.splitlines() if "another export" in line]
    assert len(notes) == 1 and notes[0].startswith("warning: ") and str(path) in notes[0], err
    queries = tmp_path / "queries"
    (queries / photo.stem).mkdir(parents=True)
    shutil.copy(photo, queries / photo.stem / "a.png")
    code, _, err = cli(monkeypatch, capsys, "eval", int8_model, "--gallery", path, "--queries", queries)
    assert code == 0 and sum("another export" in line for line in err.splitlines()) == 1, err
