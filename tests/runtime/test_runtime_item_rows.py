"""Gallery rows made in one pass (pocketvec.runtime.gallery.item_rows): each item decoded once, items
prepared on worker threads, several items per inference batch. The rows are the ones the clean embeddings
blended by `with_views` give, bit for bit, for any batch size and any number of workers."""

from __future__ import annotations

import threading
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import ConfigError, ImageLoadError
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.item_rows import item_rows, ordered_map
from pocketvec.runtime.gallery.views import NO_VIEWS, GalleryViews, with_views
from pocketvec.runtime.images import content_hash, load_image


@pytest.fixture(scope="module")
def rerank_model(runtime_dir: Path, test_encoder) -> Path:
    """The tiny test encoder with its `local` output (maps to keep), as `pocketvec export onnx` makes it."""
    from pocketvec.export.onnx_export import export_onnx_fp32, model_metadata

    model = test_encoder(0)
    return export_onnx_fp32(model, runtime_dir / "model_item_rows.onnx", model_metadata(model, local_rerank=True))


def _one_by_one(engine, paths: list[Path], views: GalleryViews) -> tuple[np.ndarray, np.ndarray]:
    """The rows and maps item by item: the clean embedding, then its photos embedded and blended."""
    found = engine.embed_all(paths)
    size = engine.metadata.preprocess.input_size
    rows = with_views(found.embeddings, paths, [content_hash(p) for p in paths], views, size,
                      lambda photos: engine.embed(photos, query=True))
    return rows, found.locals


@pytest.mark.parametrize(("batch_size", "workers"), [(1, 1), (7, 2), (32, 3), (200, 1)])
def test_rows_equal_the_rows_made_one_by_one(rerank_model: Path, item_paths: list[Path], batch_size: int,
                                             workers: int) -> None:
    engine = open_engine(rerank_model)
    paths, views = item_paths[:7], GalleryViews(count=3)
    expected, maps = _one_by_one(engine, paths, views)
    found, hashes = item_rows(engine, paths, views, batch_size=batch_size, workers=workers)
    np.testing.assert_array_equal(found.embeddings, expected)
    assert maps is not None and maps.shape[0] == len(paths)
    np.testing.assert_array_equal(found.locals, maps)  # the clean images' maps, not their photos'
    assert found.paths == paths and hashes == [content_hash(p) for p in paths]


def test_rows_without_views_are_the_clean_embeddings(rerank_model: Path, item_paths: list[Path]) -> None:
    engine = open_engine(rerank_model)
    found, _ = item_rows(engine, item_paths[:5], NO_VIEWS, batch_size=2, workers=2)
    clean = engine.embed_all(item_paths[:5])
    np.testing.assert_array_equal(found.embeddings, clean.embeddings)
    np.testing.assert_array_equal(found.locals, clean.locals)


def test_photos_with_two_crops_are_fused_per_photo(test_encoder, item_paths: list[Path], tmp_path: Path) -> None:
    from pocketvec.export.onnx_export import export_onnx_fp32

    model = test_encoder(0, "scale_fit")
    model.config = replace(model.config, preprocess=replace(model.config.preprocess,
                                                            query_crop_mode=("scale_fill", "center_crop")))
    engine = open_engine(export_onnx_fp32(model, tmp_path / "m.onnx"))
    views = GalleryViews(count=2, aspect=4 / 3)
    expected, _ = _one_by_one(engine, item_paths[:3], views)
    found, _ = item_rows(engine, item_paths[:3], views, batch_size=9, workers=2)
    np.testing.assert_array_equal(found.embeddings, expected)


def test_arrays_take_the_identity_they_are_given(onnx_model: Path, item_paths: list[Path]) -> None:
    engine = open_engine(onnx_model)
    from_files, hashes = item_rows(engine, item_paths[:2], GalleryViews(count=2))
    arrays = [load_image(p) for p in item_paths[:2]]
    from_arrays, same = item_rows(engine, arrays, GalleryViews(count=2), identities=hashes)
    np.testing.assert_array_equal(from_arrays.embeddings, from_files.embeddings)
    assert same == hashes and from_arrays.paths == []
    with pytest.raises(ConfigError, match="identity"):
        item_rows(engine, arrays, GalleryViews(count=2))


def test_a_broken_file_is_reported_by_name_and_the_rest_proceed(onnx_model: Path, item_paths: list[Path],
                                                                 tmp_path: Path) -> None:
    engine = open_engine(onnx_model)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    paths = [item_paths[0], broken, item_paths[1]]
    failures: list[ImageLoadError] = []
    found, hashes = item_rows(engine, paths, GalleryViews(count=2), batch_size=3, failures=failures)
    assert found.paths == [item_paths[0], item_paths[1]] and len(hashes) == 2 and len(found.embeddings) == 2
    assert [f.path for f in failures] == [broken]
    expected, _ = _one_by_one(engine, [item_paths[0], item_paths[1]], GalleryViews(count=2))
    np.testing.assert_array_equal(found.embeddings, expected)
    with pytest.raises(ImageLoadError, match=r"broken\.png"):
        item_rows(engine, paths, GalleryViews(count=2))


def test_ordered_map_keeps_order_and_runs_at_most_ahead_items_before_they_are_taken() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def work(n: int) -> int:
        with lock:
            started.append(n)
        time.sleep(0.002 * (n % 3))  # finish out of order
        return n * n

    results = ordered_map(work, range(50), workers=3, ahead=4)
    first = next(results)
    assert first.result() == 0 and len(started) <= 4
    assert [first.result()] + [r.result() for r in results] == [n * n for n in range(50)]
    assert sorted(started) == list(range(50))


def test_ordered_map_hands_an_exception_to_its_item() -> None:
    def work(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    results = list(ordered_map(work, range(4), workers=2, ahead=2))
    assert [r.exception() is None for r in results] == [True, True, False, True]
    with pytest.raises(ValueError, match="two"):
        results[2].result()
