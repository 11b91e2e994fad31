"""Unit vectors, checked (issue 39, item 3): a gallery whose rows or local maps are not unit vectors is
refused on load, naming the file and the row, even with a recomputed checksum; a model whose embedding of
a fixed test image is not a finite unit vector is refused when it is opened."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from pocketvec.errors import GalleryError, ModelFileError
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.metadata import AcceptRule


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def built(dtype: str, dim: int = 16, rows: int = 4, local_shape: tuple[int, int] | None = None) -> Gallery:
    """A gallery made with the real API (Gallery.add), version 3 with local maps when `local_shape`."""
    rng = np.random.default_rng(dim)
    gallery = Gallery("space01", dim, dtype, accept_rule=AcceptRule(0.5, 0.05, 0.99, 0.8, 0.99),
                      local_shape=local_shape)
    maps = unit(rng.standard_normal((rows, *local_shape))) if local_shape else None
    gallery.add(unit(rng.standard_normal((rows, dim))), [f"item{i}" for i in range(rows)],
                [f"{i:064x}" for i in range(rows)], maps)
    return gallery


def resealed(gallery: Gallery, path: Path, vectors: np.ndarray, locals_: np.ndarray | None = None) -> Path:
    """The gallery's file with other rows (or maps) and a recomputed checksum: a writer's bug, not noise."""
    header = gallery_file.decode(gallery.to_bytes(), "original").header
    path.write_bytes(gallery_file.encode(header, vectors, gallery.locals if locals_ is None else locals_))
    return path


def scaled(stored: np.ndarray, row: int, factor: float) -> np.ndarray:
    out = stored.astype(np.float64)
    out[row] *= factor
    if stored.dtype == np.int8:
        out = np.clip(np.rint(out), -127, 127)
    return out.astype(stored.dtype)


@pytest.mark.parametrize(("dtype", "row", "factor", "problem"), [
    ("float32", 2, 1000.0, "norm 1000"),  # the row x1000: a noise photo "accepted", score 243
    ("float32", 0, 1.05, "norm 1.05"),
    ("float16", 1, 0.0, "norm 0"),
    ("int8", 3, 2.0, "int8 rounding"),
])
def test_a_row_that_is_not_a_unit_vector_is_refused_naming_file_and_row(tmp_path: Path, dtype: str, row: int,
                                                                         factor: float, problem: str) -> None:
    gallery = built(dtype)
    path = resealed(gallery, tmp_path / "g.pvg", scaled(gallery.vectors, row, factor))
    with pytest.raises(GalleryError, match=re.escape(f"{path}: row {row}: ") + f".*{problem}.*not a unit vector"):
        Gallery.load(path)


def test_a_local_map_location_that_is_not_a_unit_vector_is_refused(tmp_path: Path) -> None:
    gallery = built("float16", local_shape=(6, 8))
    maps = gallery.locals.copy()
    maps[2, 5] *= 3
    path = resealed(gallery, tmp_path / "g.pvg", gallery.vectors, maps)
    with pytest.raises(GalleryError, match=re.escape(f"{path}: row 2, local map location 5: norm 3")):
        Gallery.load(path)
    maps = gallery.locals.copy()
    maps[1, 0] = 0  # a location whose features are all zero: F.normalize keeps it zero, a real model can make it
    assert np.array_equal(Gallery.load(resealed(gallery, tmp_path / "zero.pvg", gallery.vectors, maps)).locals, maps)


def test_gallery_add_refuses_rows_and_maps_that_are_not_unit_vectors() -> None:
    """The API checks what it is handed as the file reader does: nothing is added."""
    rng = np.random.default_rng(0)
    gallery = built("float32", local_shape=(6, 8))
    rows, maps = unit(rng.standard_normal((2, 16))), unit(rng.standard_normal((2, 6, 8)))
    for bad_rows, bad_maps, message in ((rows * 1000, maps, "enroll: row 0: norm 1000"),
                                        (rows, maps * [[[1]] * 5 + [[2]]], "enroll: row 0, local map location 5")):
        with pytest.raises(GalleryError, match=re.escape(message) + ".*L2-normalised"):
            gallery.add(bad_rows, ["a", "b"], ["sa", "sb"], bad_maps)
    assert gallery.count == 4
    assert gallery.add(rows, ["a", "b"], ["sa", "sb"], maps).added == 2


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("dim", [1, 3, 64, 1280])
def test_unit_rows_rounded_to_their_dtype_still_load(tmp_path: Path, dtype: str, dim: int) -> None:
    gallery = built(dtype, dim, rows=50, local_shape=(4, 8))
    loaded = Gallery.load(gallery.save(tmp_path / "g.pvg"))
    assert np.array_equal(loaded.vectors, gallery.vectors) and loaded.local_shape == (4, 8)
    flat = Gallery("space01", 65536, "int8")  # every value 1/256 rounds to 0: some unit vector is that row
    flat.add(np.full((1, 65536), 1 / 256, np.float32), ["flat"], ["0" * 64])
    assert not Gallery.load(flat.save(tmp_path / "flat.pvg")).vectors.any()


def _edited(module: torch.nn.Module, edit: str) -> None:
    """The head's last BatchNorm: NaN weights, a zeroed head, or a scale of 1e30."""
    norm = module.head.layers[-1]
    with torch.no_grad():
        if edit == "nan":
            norm.weight[3] = float("nan")
        elif edit == "zeroed":
            norm.weight.zero_()
            norm.bias.zero_()
        else:
            norm.weight.mul_(1e30)


@pytest.mark.parametrize(("edit", "problem"), [("nan", "non-finite values"), ("zeroed", "norm 0"),
                                               ("scale", "norm .*, not a unit vector|non-finite values")])
def test_a_model_whose_test_embedding_is_not_a_finite_unit_vector_is_refused_on_open(
        tmp_path: Path, test_encoder, edit: str, problem: str) -> None:
    from pocketvec.export.onnx_export import export_onnx_fp32

    model = test_encoder(0)
    _edited(model, edit)
    path = export_onnx_fp32(model, tmp_path / f"{edit}.onnx")
    with pytest.raises(ModelFileError, match=re.escape(f"{path}: its embedding of a test image has ") + f"({problem})"):
        open_engine(path)


def test_a_sound_model_opens_and_embeds_unit_vectors(onnx_model: Path, item_paths: list[Path]) -> None:
    embeddings = open_engine(onnx_model).embed(item_paths[:3])
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
