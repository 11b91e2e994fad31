"""Gallery views: each row blends the item's clean embedding with its simulated phone photos', the same on
every build, in every place that makes gallery rows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import pocketvec
from pocketvec.errors import ConfigError
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import build_gallery
from pocketvec.runtime.gallery.views import NO_VIEWS, GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image


def _rows(gallery) -> dict[str, np.ndarray]:
    return dict(zip(gallery.labels, gallery.embeddings(), strict=True))


def test_a_row_is_the_clean_embedding_blended_with_its_views(onnx_model: Path, items_dir: Path) -> None:
    engine = open_engine(onnx_model)
    views = GalleryViews(count=3, clean_weight=0.4)
    gallery, _ = build_gallery(engine, items_dir, views=views)
    clean, _ = build_gallery(engine, items_dir, views=NO_VIEWS)
    path = sorted(items_dir.glob("*.png"))[2]
    size = engine.metadata.preprocess.input_size
    photos = view_photos(load_image(path), content_hash(path), views, size)
    assert len(photos) == 3 and photos[0].shape == (size, size, 3)
    assert not np.array_equal(photos[0], photos[1])
    expected = blend_views(engine.embed([path]), engine.embed(photos, query=True)[None], 0.4)[0]
    np.testing.assert_allclose(_rows(gallery)[path.stem], expected, atol=1e-6)
    np.testing.assert_allclose(_rows(clean)[path.stem], engine.embed([path])[0], atol=1e-6)
    assert float(_rows(gallery)[path.stem] @ _rows(clean)[path.stem]) < 0.999
    np.testing.assert_array_equal(gallery.local_maps(), clean.local_maps())  # the re-rank's maps stay the clean ones


def test_views_are_the_same_on_every_build(onnx_model: Path, items_dir: Path) -> None:
    engine = open_engine(onnx_model)
    first, _ = build_gallery(engine, items_dir)
    second, _ = build_gallery(engine, items_dir)
    np.testing.assert_array_equal(first.embeddings(), second.embeddings())


def test_the_recognizer_makes_the_rows_the_cli_makes(onnx_model: Path, items_dir: Path) -> None:
    engine = open_engine(onnx_model)
    expected = _rows(build_gallery(engine, items_dir)[0])
    path = sorted(items_dir.glob("*.png"))[0]
    rec = pocketvec.Recognizer(onnx_model, text=False)
    rec.enroll(path, label="one")
    rec.enroll(items_dir)
    np.testing.assert_allclose(_rows(rec.gallery)["one"], expected[path.stem], atol=1e-6)


def test_views_are_framed_as_phone_photos(item_paths: list[Path]) -> None:
    image, identity = load_image(item_paths[0]), content_hash(item_paths[0])
    shapes = {aspect: view_photos(image, identity, GalleryViews(count=2, aspect=aspect), 96)[0].shape
              for aspect in (4 / 3, 3 / 4, 1.0)}
    assert shapes == {4 / 3: (128, 96, 3), 3 / 4: (96, 128, 3), 1.0: (96, 96, 3)}
    portrait, landscape = (view_photos(image, identity, GalleryViews(count=1, aspect=a), 96)[0] for a in (4 / 3, 3 / 4))
    np.testing.assert_array_equal(portrait[16:112], landscape[:, 16:112])  # strips of one square photo, seeded alike


def test_views_are_cropped_as_the_photos_are(test_encoder, items_dir: Path, tmp_path: Path) -> None:
    from pocketvec.export.onnx_export import export_onnx_fp32

    model = test_encoder(0, "scale_fit")
    model.config = replace(model.config, preprocess=replace(model.config.preprocess, query_crop_mode="center_crop"))
    engine = open_engine(export_onnx_fp32(model, tmp_path / "m.onnx"))
    assert engine.metadata.preprocess.query_crops == ("center_crop",)
    views = GalleryViews(count=2, aspect=4 / 3)  # phone portrait, which the two crops see differently
    gallery, _ = build_gallery(engine, items_dir, views=views)
    path = sorted(items_dir.glob("*.png"))[1]
    photos = view_photos(load_image(path), content_hash(path), views, 96)
    clean = engine.embed([path])
    as_photos = blend_views(clean, engine.embed(photos, query=True)[None], views.clean_weight)[0]
    as_items = blend_views(clean, engine.embed(photos)[None], views.clean_weight)[0]
    np.testing.assert_allclose(_rows(gallery)[path.stem], as_photos, atol=1e-6)
    assert not np.allclose(as_items, as_photos, atol=1e-3)


@pytest.mark.parametrize(("count", "weight", "aspect"),
                         [(-1, 0.5, 1.0), (65, 0.5, 1.0), (2, 1.5, 1.0), (1.5, 0.5, 1.0), (2, 0.5, 0.0), (2, 0.5, 3.0)])
def test_bad_settings_are_refused_by_name(count, weight, aspect) -> None:
    with pytest.raises(ConfigError, match="gallery views"):
        GalleryViews(count=count, clean_weight=weight, aspect=aspect)


# sha256 of the 8 photos below, made by the simulator when it lived in pocketvec.data.augment (before it
# moved to pocketvec.runtime.phone_sim): the move changed no pixel, so no gallery row moved either.
VIEWS_BEFORE_THE_MOVE = "e97362601e61b56ed7256b896cf813e447130e124353cca4eb444c472c7370c4"


def test_views_are_the_pixels_they_were_before_the_simulator_moved_to_the_runtime() -> None:
    import hashlib

    from pocketvec.asset_dirs import demo_items_dir

    image = load_image(sorted(demo_items_dir().glob("*.png"))[0], max_side=256)
    digest = hashlib.sha256()
    for aspect in (1.0, 4 / 3):
        for photo in view_photos(image, "0123456789abcdef" * 4, GalleryViews(count=4, aspect=aspect), 96):
            digest.update(photo.tobytes())
    assert digest.hexdigest() == VIEWS_BEFORE_THE_MOVE


def test_training_and_the_views_photograph_alike(item_paths: list[Path]) -> None:
    """pocketvec.data.augment.PhoneAugment is the runtime's simulator with the wallpapers as default
    backgrounds: on the same backgrounds and seed, the same pixels."""
    from pocketvec.asset_dirs import backgrounds_dir
    from pocketvec.data.augment import PhoneAugment as TrainingAugment
    from pocketvec.runtime.phone_sim.photo import PhoneAugment

    image = load_image(item_paths[0], max_side=256)
    runtime, training = (cls(output_size=96, backgrounds=backgrounds_dir()) for cls in (PhoneAugment, TrainingAugment))
    for seed in range(6):
        assert np.array_equal(runtime(image, np.random.default_rng(seed)), training(image, np.random.default_rng(seed)))
