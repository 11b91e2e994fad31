"""Engines on real exported ONNX models and real images: the same numbers as PyTorch, metadata
read from the file, broken images reported by name, foreign files refused."""

from __future__ import annotations

import platform
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import ConfigError, ImageLoadError, ModelFileError
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import preprocess, to_batch


def test_onnx_engine_matches_pytorch(onnx_model: Path, item_paths: list[Path], test_encoder) -> None:
    import torch

    engine = open_engine(onnx_model, threads=1)
    meta = engine.metadata
    assert meta.preprocess.input_size == 96 and meta.embedding_dim == 64  # read from the file
    paths = item_paths[:5]
    embeddings = engine.embed(paths, batch_size=2)
    assert embeddings.shape == (5, 64) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    model = test_encoder(seed=0)  # the fixture's model, rebuilt in PyTorch
    batch = to_batch([preprocess(load_image(p), meta.preprocess) for p in paths])
    with torch.no_grad():
        reference = model(torch.from_numpy(batch)).numpy()
    np.testing.assert_allclose(embeddings, reference, atol=1e-4)
    # arrays and paths give the same result; batch size does not matter
    np.testing.assert_allclose(engine.embed([load_image(p) for p in paths], batch_size=5), embeddings, atol=1e-6)


def test_crop_mode_comes_from_the_model(onnx_model: Path, other_onnx_model: Path) -> None:
    assert open_engine(onnx_model).metadata.preprocess.crop_mode == "center_crop"
    assert open_engine(other_onnx_model).metadata.preprocess.crop_mode == "scale_fit"


def test_broken_image_is_reported_and_the_rest_proceeds(onnx_model: Path, item_paths: list[Path],
                                                         tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(item_paths[0].read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("not an image")
    engine = open_engine(onnx_model)
    result = engine.embed_files([item_paths[0], broken, item_paths[1], text], batch_size=2)
    assert result.paths == [item_paths[0], item_paths[1]]
    assert [e.path for e in result.failures] == [broken, text]
    np.testing.assert_allclose(result.embeddings, engine.embed(item_paths[:2]), atol=1e-6)
    with pytest.raises(ImageLoadError, match=r"broken\.png"):
        engine.embed([item_paths[0], broken])


def test_files_that_are_not_pocketvec_models(tmp_path: Path, onnx_model: Path) -> None:
    import onnx

    plain = onnx.load(str(onnx_model))
    del plain.metadata_props[:]
    onnx.save(plain, str(tmp_path / "plain.onnx"))
    with pytest.raises(ModelFileError, match=r"plain\.onnx: an ONNX model without pocketvec metadata"):
        open_engine(tmp_path / "plain.onnx")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07not a protobuf model at all" * 10)
    with pytest.raises(ModelFileError, match=r"garbage\.onnx"):
        open_engine(garbage)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(onnx_model.read_bytes()[:5000])
    with pytest.raises(ModelFileError, match=r"truncated\.onnx"):
        open_engine(truncated)
    with pytest.raises(ModelFileError, match="no such model file"):
        open_engine(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="engine must be one of"):
        open_engine(onnx_model, engine="tensorrt")


@pytest.mark.skipif(platform.system() == "Darwin", reason="checks the message given off macOS")
def test_coreml_runtime_needs_macos(tmp_path: Path) -> None:
    fake = tmp_path / "model.mlpackage"
    fake.mkdir()  # refused before anything is read
    with pytest.raises(ModelFileError, match="needs macOS"):
        open_engine(fake, engine="coreml")


def test_query_photos_take_the_query_crop_mode(runtime_dir: Path, item_paths: list[Path], photo_paths: list[Path],
                                               test_encoder) -> None:
    """A model whose items are letterboxed and whose photos are center-cropped: the metadata carries both,
    `query=True` (match, eval, Recognizer.match) takes the photos' crop, and items keep theirs."""
    import torch

    from pocketvec.export.onnx_export import export_onnx_fp32
    from pocketvec.runtime.preprocess import PreprocessSpec

    model = test_encoder(seed=2, crop_mode="scale_fit")
    spec = replace(model.config.preprocess, query_crop_mode="center_crop")
    model.config = replace(model.config, preprocess=spec)
    engine = open_engine(export_onnx_fp32(model, runtime_dir / "model_query_crop.onnx"), threads=1)
    assert engine.metadata.preprocess == spec  # written into the file and read back
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert "query_crop_mode" not in PreprocessSpec().to_dict()  # files without one read and hash as before
    images = [item_paths[0], photo_paths[0]]
    assert all(load_image(p).shape[0] != load_image(p).shape[1] for p in images)  # the crop modes differ on them
    for query, crop in ((False, "scale_fit"), (True, "center_crop")):
        batch = to_batch([preprocess(load_image(p), replace(spec, crop_mode=crop)) for p in images])
        with torch.no_grad():
            reference = model(torch.from_numpy(batch)).numpy()
        np.testing.assert_allclose(engine.embed(images, query=query), reference, atol=1e-4)
    assert not np.allclose(engine.embed(images), engine.embed(images, query=True), atol=1e-2)
    with pytest.raises(ConfigError, match="query_crop_mode must be one of"):
        PreprocessSpec(query_crop_mode="crop")


def test_photos_embedded_with_two_crops_are_fused(runtime_dir: Path, item_paths: list[Path],
                                                  photo_paths: list[Path], test_encoder) -> None:
    """`query_crop_mode` as a list: each photo is embedded with every crop; its embedding is the normalised mean
    of the crops' (as the single-crop models of the same weights give them), its local map both maps' locations."""
    from pocketvec.export.onnx_export import export_onnx_fp32, model_metadata
    from pocketvec.runtime.preprocess import PreprocessSpec

    model = test_encoder(seed=2, crop_mode="scale_fit")
    crops = ("scale_fill", "center_crop")
    engines = {}
    for query in (crops, *crops):
        model.config = replace(model.config, preprocess=replace(model.config.preprocess, query_crop_mode=query))
        name = "-".join(query) if isinstance(query, tuple) else query
        engines[name] = open_engine(export_onnx_fp32(model, runtime_dir / f"model_{name}.onnx",
                                                     model_metadata(model, local_rerank=True)), threads=1)
    fused = engines["scale_fill-center_crop"]
    spec = fused.metadata.preprocess
    assert spec.query_crops == crops and spec.to_dict()["query_crop_mode"] == list(crops)
    assert PreprocessSpec.from_dict(spec.to_dict()) == spec
    assert "scale_fill + center_crop" in spec.crop_description()
    photos = [photo_paths[0], item_paths[0]]
    both = fused.embed_all(photos, query=True)
    single = [engines[crop].embed_all(photos, query=True) for crop in crops]
    mean = single[0].embeddings + single[1].embeddings
    np.testing.assert_allclose(both.embeddings, mean / np.linalg.norm(mean, axis=1, keepdims=True), atol=1e-5)
    np.testing.assert_allclose(both.locals, np.concatenate([s.locals for s in single], axis=1), atol=1e-5)
    assert both.locals.shape[1] == 2 * fused.metadata.local_rerank.locations
    np.testing.assert_allclose(fused.embed(photos), engines["scale_fill"].embed(photos), atol=1e-6)  # items: one crop
    for bad in ([], ["scale_fill", "scale_fill"], ["scale_fill", "crop"], [3]):
        with pytest.raises(ConfigError, match="query_crop_mode"):
            PreprocessSpec(query_crop_mode=bad)
    assert PreprocessSpec(query_crop_mode=["center_crop"]).query_crop_mode == "center_crop"  # one: as a string
