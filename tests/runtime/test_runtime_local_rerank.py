"""The local re-rank (pocketvec.runtime.local_rerank) end to end in Python: the scores it gives, the
model's `local` output against PyTorch, galleries that keep the maps (.pvg version 3), and a matcher
whose answers are the scores the calibration and eval count."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import GalleryError
from pocketvec.export.onnx_export import export_onnx_fp32, model_metadata
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import build_gallery, embed_labelled, open_gallery
from pocketvec.runtime.evaluation import evaluate
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.item_zoom import ItemZoom
from pocketvec.runtime.local_rerank import GALLERY_SIDE_ONLY, LocalRerank, label_ids, local_similarity, rerank
from pocketvec.runtime.matcher import Matcher, scores
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.metrics import best_two
from pocketvec.runtime.preprocess import to_batch
from pocketvec.runtime.zoomed_photos import zoom_to_items

from .test_runtime_cli import cli


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_a_candidate_whose_mark_the_photo_lacks_drops_below_one_that_has_all() -> None:
    """Item 0 has a mark (location 1) the photo lacks; item 1's marks are all in the photo. By cosine item
    0 leads; re-ranked, item 1 wins by weight x the local shortfall, and item 2 (outside top_k 2) drops out.
    The gallery-to-photo mean alone: what a file without worst_fraction, photo_weight and photo_threshold means."""
    plain, mark, other = np.eye(4, dtype=np.float32)[:3]
    photo_local = np.stack([plain, other, other])  # 3 locations; no `mark`
    gallery_locals = np.stack([np.stack([plain, mark, plain]), np.stack([plain, other, plain]),
                               np.stack([plain, plain, plain])])
    config = LocalRerank.from_dict({"top_k": 2, "weight": 2.0, "locations": 3, "channels": 4})
    assert config == LocalRerank(locations=3, channels=4, top_k=2, weight=2.0, **GALLERY_SIDE_ONLY)
    np.testing.assert_allclose(local_similarity(photo_local, gallery_locals, config), [2 / 3, 1.0, 1.0])
    cosines = np.array([[0.90, 0.85, 0.10]], dtype=np.float32)
    out = rerank(cosines, np.arange(3), photo_local[None], gallery_locals, config)
    np.testing.assert_allclose(out[0, :2], [0.90 - 2.0 * (1 - 2 / 3), 0.85], rtol=1e-6)
    assert out[0, 2] == -np.inf and out[0].argmax() == 1


def test_top_k_counts_labels_and_each_label_is_scored_by_its_best_row() -> None:
    """Rows 0 and 1 share label 'a': label 'a' takes one of the top_k places, scored by its best row (1)."""
    rng = np.random.default_rng(0)
    locals_ = unit(rng.normal(size=(4, 6, 8))).astype(np.float32)
    cosines = np.array([[0.7, 0.9, 0.8, 0.1]], dtype=np.float32)
    labels = ["a", "a", "b", "c"]
    config = LocalRerank(locations=6, channels=8, top_k=2, weight=1.0)
    out = rerank(cosines, label_ids(labels), locals_[:1], locals_, config)
    assert np.isfinite(out[0]).tolist() == [False, True, True, False]
    local = local_similarity(locals_[0], locals_[[1, 2]], config)
    np.testing.assert_allclose(out[0, [1, 2]], cosines[0, [1, 2]] - (local.max() - local), rtol=1e-6)


def test_one_missing_mark_among_many_locations_counts_through_the_worst_locations() -> None:
    """20 locations, the candidate's mark at one of them missing from the photo: the plain mean loses 1/20,
    `found` with worst_fraction 0.1 (the 2 worst) loses (1/20 + 1/2) / 2."""
    plain, mark = np.eye(4, dtype=np.float32)[:2]
    photo = np.stack([plain] * 20)
    marked = np.stack([mark] + [plain] * 19)[None]
    plain_mean = LocalRerank(locations=20, channels=4, worst_fraction=0.0, photo_weight=0.0)
    with_worst = LocalRerank(locations=20, channels=4, worst_fraction=0.1, photo_weight=0.0)
    np.testing.assert_allclose(local_similarity(photo, marked, plain_mean), [19 / 20])
    np.testing.assert_allclose(local_similarity(photo, marked, with_worst), [(19 / 20 + 1 / 2) / 2])


def test_a_mark_the_photo_shows_and_the_item_lacks_counts_and_the_background_does_not() -> None:
    """Photo: a plain location, a mark, and a background location no candidate matches above the threshold.
    Item 0 (plain only) finds all its locations in the photo but explains only the plain one of the photo's
    two item locations; item 1 (plain + mark) explains both. The background location counts for neither."""
    plain, mark, background = np.eye(4, dtype=np.float32)[:3]
    photo = np.stack([plain, mark, background])
    items = np.stack([np.stack([plain, plain, plain]), np.stack([plain, mark, plain])])
    config = LocalRerank(locations=3, channels=4, worst_fraction=0.0, photo_weight=0.5, photo_threshold=0.5)
    # found: 1 for both; explained over the 2 item locations: item 0 (1 + 0) / 2, item 1 (1 + 1) / 2
    np.testing.assert_allclose(local_similarity(photo, items, config), [0.5 * 1 + 0.5 * 0.5, 1.0])
    every_location = LocalRerank(locations=3, channels=4, worst_fraction=0.0, photo_weight=0.5, photo_threshold=-1)
    np.testing.assert_allclose(local_similarity(photo, items, every_location), [0.5 + 0.5 / 3, 0.5 + 0.5 * 2 / 3])


def test_settings_are_checked() -> None:
    from pocketvec.errors import ConfigError

    with pytest.raises(ConfigError, match="top_k must be an integer"):
        LocalRerank(locations=4, channels=4, top_k=1)
    with pytest.raises(ConfigError, match="must be an object with channels, locations, top_k, weight"):
        LocalRerank.from_dict({"top_k": 5, "weight": 2.0, "locations": 4})
    with pytest.raises(ConfigError, match=r"got .*'symmetric'"):
        LocalRerank.from_dict({"top_k": 5, "weight": 2.0, "locations": 4, "channels": 4, "symmetric": True})
    with pytest.raises(ConfigError, match="photo_weight"):
        LocalRerank(locations=4, channels=4, photo_weight=1.5)
    shipped = LocalRerank(locations=4, channels=4)
    assert LocalRerank.from_dict(shipped.to_dict()) == shipped


@pytest.fixture(scope="module")
def rerank_model(runtime_dir: Path, test_encoder) -> tuple[Path, object]:
    """The tiny test encoder exported with its `local` output (as `pocketvec export onnx` does by default)."""
    model = test_encoder(0)
    path = export_onnx_fp32(model, runtime_dir / "model_rerank.onnx", model_metadata(model, local_rerank=True))
    return path, model


@pytest.fixture(scope="module")
def plain_model(rerank_model, runtime_dir: Path) -> Path:
    """The same weights exported without the `local` output (`--no-local-rerank`)."""
    return export_onnx_fp32(rerank_model[1], runtime_dir / "model_plain.onnx")


def test_the_local_output_is_the_pytorch_stride16_map(rerank_model, plain_model: Path, item_paths) -> None:
    import torch

    path, model = rerank_model
    engine = open_engine(path)
    assert engine.metadata.local_rerank == LocalRerank(locations=36, channels=128)  # 96 px / 16 = 6 x 6
    found = engine.embed_all(item_paths[:6])
    pixels = torch.from_numpy(to_batch([engine.prepare(p)[0] for p in item_paths[:6]]))
    with torch.no_grad():
        embedding, local = model.forward_with_locals(pixels)
    assert np.abs(found.locals - local.numpy()).max() < 1e-4
    assert np.abs(found.embeddings - embedding.numpy()).max() < 1e-4
    np.testing.assert_allclose(np.linalg.norm(found.locals, axis=-1), 1.0, atol=1e-5)
    # the same weights without the re-rank: the same embeddings, no local output, the same space
    plain = open_engine(plain_model)
    assert plain.metadata.local_rerank is None
    assert plain.metadata.embedding_space_id == engine.metadata.embedding_space_id
    assert np.abs(plain.embed(item_paths[:6]) - found.embeddings).max() < 1e-5


def test_galleries_keep_the_maps_and_refuse_the_wrong_model(rerank_model, plain_model: Path, items_dir: Path,
                                                            tmp_path: Path) -> None:
    engine = open_engine(rerank_model[0])
    gallery, _ = build_gallery(engine, items_dir, "int8")
    assert gallery.locals.shape == (gallery.count, 36, 128) and gallery.locals.dtype == np.float16
    raw = gallery.save(tmp_path / "g.pvg").read_bytes()
    assert struct.unpack_from("<I", raw, 8)[0] == 5 and b'"local_shape":[36,128]' in raw  # embeddings and maps
    loaded = open_gallery(engine, tmp_path / "g.pvg")
    assert np.array_equal(loaded.locals, gallery.locals) and loaded.local_shape == (36, 128)
    with pytest.raises(GalleryError, match=r"holds local maps of \(36, 128\), the model makes none"):
        open_gallery(open_engine(plain_model), tmp_path / "g.pvg")
    plain, _ = build_gallery(open_engine(plain_model), items_dir)
    plain.save(tmp_path / "plain.pvg")
    with pytest.raises(GalleryError, match=r"holds no local maps, the model makes local maps of \(36, 128\)"):
        open_gallery(engine, tmp_path / "plain.pvg")
    (tmp_path / "cut.pvg").write_bytes(raw[:-1000])
    with pytest.raises(GalleryError, match=r"cut\.pvg: truncated gallery"):
        Gallery.load(tmp_path / "cut.pvg")
    with pytest.raises(GalleryError, match="keeps each row's local map"):
        loaded.add(np.ones((1, loaded.dim), np.float32) / np.sqrt(loaded.dim), ["x"], ["y"])


def test_matcher_answers_the_scores_calibration_and_eval_count(rerank_model, items_dir: Path, tmp_path: Path) -> None:
    """Photos of the items (the flat items, rotated and cropped): the matcher's answers and margins are
    best_two of `scores`, which calibrate and evaluate use; the re-rank changes some scores."""
    from PIL import Image

    engine = open_engine(rerank_model[0])
    gallery, _ = build_gallery(engine, items_dir)
    photos = tmp_path / "photos"
    for path in sorted(items_dir.iterdir()):
        (photos / path.stem).mkdir(parents=True)
        image = Image.open(path).convert("RGB")
        image.rotate(7, expand=True, fillcolor=(90, 90, 90)).save(photos / path.stem / "a.png")
        w, h = image.size
        image.crop((w // 10, h // 10, w, h)).save(photos / path.stem / "b.png")
    found = embed_labelled(engine, photos, layout="folders")
    similarity = scores(gallery, found.embeddings, found.locals, engine.metadata.local_rerank)
    assert not np.allclose(np.sort(similarity, axis=1)[:, -5:], np.sort(found.embeddings @ gallery.embeddings().T,
                                                                        axis=1)[:, -5:])
    rule = calibrate(similarity, found.labels, gallery.labels).rule
    matches = Matcher.for_model(engine.metadata, gallery, rule).match_embedded(found, 3)
    top, best, second = best_two(similarity, gallery.labels)
    assert [m.top[0][0] for m in matches] == list(top)
    np.testing.assert_allclose([m.top[0][1] for m in matches], best, rtol=1e-6)
    np.testing.assert_allclose([m.margin for m in matches], best - second, rtol=1e-5)
    assert [m.accepted for m in matches] == list((best >= rule.threshold) & (best - second >= rule.margin))
    gallery.accept_rule = rule
    report = evaluate(engine, gallery.save(tmp_path / "g.pvg"), photos)
    assert report.decisions.correct == sum(m.accepted and m.answer == label
                                           for m, label in zip(matches, found.labels, strict=True))
    with pytest.raises(GalleryError, match="the queries and the gallery both need them"):
        Matcher.for_model(engine.metadata, gallery, AcceptRule(0.5)).match(found.embeddings)


def test_cli_build_and_match_re_rank(monkeypatch, capsys, rerank_model, items_dir: Path, tmp_path: Path) -> None:
    """`pocketvec gallery build` and `match --json` with a re-ranking model: the answers of the Matcher."""
    import json

    model = rerank_model[0]
    code, _, err = cli(monkeypatch, capsys, "gallery", "build", "--no-text", model, "--images", items_dir, "--out",
                       tmp_path / "g.pvg")
    assert code == 0, err
    images = sorted(items_dir.iterdir())[:3]
    code, out, err = cli(monkeypatch, capsys, "match", model, tmp_path / "g.pvg", *images, "--json")
    assert code == 0, err
    results = json.loads(out)["results"]
    engine = open_engine(model)
    gallery = open_gallery(engine, tmp_path / "g.pvg")
    found, _ = zoom_to_items(engine, gallery, engine.embed_all(images, query=True), images, ItemZoom())  # as the CLI
    expected = Matcher.for_model(engine.metadata, gallery).match_embedded(found, 3)
    assert [r["answer"] for r in results] == [m.answer for m in expected] == [p.stem for p in images]
    assert [r["top"][0]["score"] for r in results] == [round(m.top[0][1], 6) for m in expected]
