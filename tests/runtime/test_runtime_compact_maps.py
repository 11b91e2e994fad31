"""Compact local maps end to end: the model's codebook (fitted, carried in the ONNX metadata), galleries whose
rows keep their content box's checkerboard as codes (.pvg version 5), the re-rank over each row's own locations,
a gallery refused by a model with another codebook, and files of the earlier versions still read."""

from __future__ import annotations

import dataclasses
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.export.local_codebook import fit_codebook, read_codebook, training_locations, write_codebook
from pocketvec.export.onnx_export import export_onnx_fp32, model_metadata
from pocketvec.runtime.content_box import checker_count, checker_locations, content_box
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import build_gallery, embed_labelled, enroll_file, open_gallery
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.local_codebook import LocalCodebook
from pocketvec.runtime.local_rerank import LocalRerank, local_similarity, rerank
from pocketvec.runtime.matcher import Matcher, scores
from pocketvec.runtime.preprocess import PreprocessSpec

from .test_runtime_cli import cli

OLD = Path(__file__).parent / "old_galleries"


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def matrix_form(query: np.ndarray, candidates: np.ndarray, config: LocalRerank) -> np.ndarray:
    """The re-rank's local score as one (K x P, C) @ (C, P) product: the form every row of one length allows."""
    k, locations, channels = candidates.shape
    flat = np.ascontiguousarray(candidates, dtype=np.float64).reshape(k * locations, channels)
    cosines = (flat @ np.ascontiguousarray(query, dtype=np.float64).T).reshape(k, locations, -1)
    best_in_photo = cosines.max(axis=2)
    found = best_in_photo.mean(axis=1)
    worst = max(1, int(config.worst_fraction * locations))
    found = 0.5 * (found + np.sort(best_in_photo, axis=1)[:, :worst].mean(axis=1))
    best_in_row = cosines.max(axis=1)
    on_item = best_in_row.max(axis=0) > config.photo_threshold
    explained = best_in_row[:, on_item].mean(axis=1)
    return (1 - config.photo_weight) * found + config.photo_weight * explained


def test_rows_of_their_own_length_score_as_the_matrix_form_bit_for_bit_when_every_location_is_stored() -> None:
    rng = np.random.default_rng(0)
    config = LocalRerank(locations=196, channels=112)
    for _ in range(3):
        candidates = unit(rng.standard_normal((5, 196, 112))).astype(np.float16)
        query = unit(np.concatenate([candidates[0] + 0.5 * rng.standard_normal((196, 112)) / 112**0.5,
                                     rng.standard_normal((196, 112))])).astype(np.float32)  # half on the item
        expected = matrix_form(query, candidates, config)
        assert np.array_equal(local_similarity(query, list(candidates), config), expected)
        assert np.array_equal(local_similarity(query, candidates, config), expected)
    # a row scored over fewer locations: its own mean and worst 10 %, whatever the other rows hold
    short = [candidates[0][:70], candidates[1]]
    alone = local_similarity(query, [candidates[0][:70]], LocalRerank(196, 112, photo_weight=0.0))
    assert local_similarity(query, short, LocalRerank(196, 112, photo_weight=0.0))[0] == alone[0]


def test_content_box_follows_scale_fit_and_the_checkerboard_count() -> None:
    spec = PreprocessSpec(input_size=224, crop_mode="scale_fit")
    assert content_box(600, 600, spec, 196) == (0, 0, 14, 14)
    assert content_box(800, 600, spec, 196) == (0, 1, 14, 12)  # 0.75 wide: 168 px of 224, 28 px bars
    assert content_box(600, 800, spec, 196) == (1, 0, 12, 14)
    assert content_box(800, 600, dataclasses.replace(spec, crop_mode="center_crop"), 196) == (0, 0, 14, 14)
    boxes = np.array([[0, 1, 14, 12], [1, 0, 12, 14], [0, 0, 14, 14], [1, 1, 3, 3], [0, 1, 3, 3]])
    assert checker_count(boxes).tolist() == [len(checker_locations(b, 14)) for b in boxes] == [84, 84, 98, 5, 4]


def test_codebook_round_trip_fit_determinism_and_tampering() -> None:
    rng = np.random.default_rng(1)
    vectors = unit(rng.standard_normal((3000, 24))).astype(np.float32)
    first = fit_codebook(vectors, subvectors=4, seed=0, rounds=2, steps=2, final_steps=4)
    assert first == fit_codebook(vectors, subvectors=4, seed=0, rounds=2, steps=2, final_steps=4)
    assert first.rotation.shape == (24, 24) and first.centroids.shape == (4, 256, 6)
    decoded = first.decode(first.encode(vectors[:500]))
    np.testing.assert_allclose(np.linalg.norm(decoded, axis=1), 1, atol=1e-6)
    assert (decoded * vectors[:500]).sum(axis=1).mean() > 0.75  # far closer than chance (0)
    again = LocalCodebook.from_dict(first.to_dict(), 24)
    assert again == first and np.array_equal(again.decode(first.encode(vectors[:9])), decoded[:9])
    tampered = first.to_dict() | {"digest": "sha256:" + "0" * 64}
    with pytest.raises(ConfigError, match="damaged or edited"):
        LocalCodebook.from_dict(tampered, 24)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, test_encoder, item_paths: list[Path]) -> dict[str, Path]:
    """A tiny letterboxing model with a local re-rank: without a codebook, with one fitted on the demo items'
    maps, and with another (another seed)."""
    out = tmp_path_factory.mktemp("compact")
    encoder = test_encoder(0, "scale_fit")
    metadata = model_metadata(encoder, local_rerank=True)
    vectors = training_locations(encoder, item_paths)
    paths = {"full": export_onnx_fp32(encoder, out / "plain.onnx", metadata)}
    for name, seed in (("coded", 0), ("other", 1)):
        codebook = fit_codebook(vectors, subvectors=4, seed=seed, rounds=2, steps=2, final_steps=4)
        with_codebook = dataclasses.replace(metadata, local_rerank=dataclasses.replace(metadata.local_rerank,
                                                                                       codebook=codebook))
        paths[name] = export_onnx_fp32(encoder, out / f"{name}.onnx", with_codebook)
    return paths


def test_the_codebook_travels_in_the_onnx_metadata_and_a_run_folder(models: dict[str, Path], tmp_path: Path) -> None:
    codebook = open_engine(models["coded"]).metadata.local_rerank.codebook
    assert codebook is not None and codebook.subvectors == 4
    assert open_engine(models["full"]).metadata.local_rerank.codebook is None
    write_codebook(tmp_path, codebook)
    assert read_codebook(tmp_path) == codebook and read_codebook(tmp_path / "none") is None


def test_compact_gallery_round_trip_append_remove_and_scores(models: dict[str, Path], items_dir: Path,
                                                             tmp_path: Path, item_paths: list[Path]) -> None:
    engine = open_engine(models["coded"])
    gallery, _ = build_gallery(engine, items_dir, "int8")  # int8: compact by default
    assert gallery.compact and gallery.locals.subvectors == 4
    side = 6  # 96 px / 16
    boxes = np.array([gallery.locals.row(i)[0] for i in range(gallery.count)])
    assert (boxes[:, 2:] <= side).all() and (boxes[:, 2] * boxes[:, 3] < side * side).any()  # letterboxed items
    path = gallery.save(tmp_path / "g.pvg")
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[8:12])[0] == 5
    loaded = open_gallery(engine, path)
    assert loaded.compact and loaded.header() == gallery.header()
    for i in range(gallery.count):
        for a, b in zip(loaded.locals.row(i), gallery.locals.row(i), strict=True):
            assert np.array_equal(a, b)
    expected = len(raw) - gallery_file.BASE.size - 32
    header_len = struct.unpack("<I", raw[12:16])[0]
    assert expected - header_len == gallery.count * (gallery.dim + 4) + gallery.locals.coded * 4
    # appended as a segment, read back whole; a removal rewrites it
    more = tmp_path / "more"
    more.mkdir()
    for p in item_paths[20:22]:
        (more / p.name).write_bytes(p.read_bytes())
    enroll_file(engine, path, more)
    grown = open_gallery(engine, path)
    assert grown.saved.parts == 2 and grown.count == gallery.count + 2 and grown.compact
    assert grown.locals.coded == gallery.locals.coded + int(checker_count(
        np.array([grown.locals.row(i)[0] for i in range(gallery.count, grown.count)])).sum())
    grown.remove(grown.labels[0])
    grown.save(path)
    assert open_gallery(engine, path).count == gallery.count + 1
    # the matcher scores each row over its own decoded locations, as `scores` over every row
    photos = embed_labelled(engine, items_dir, query=True)
    matcher = Matcher.for_model(engine.metadata, loaded)
    every = scores(loaded, photos.embeddings, photos.locals, engine.metadata.local_rerank)
    for q, match in enumerate(matcher.match_embedded(photos, top_k=3)):
        best = every[q].argmax()
        assert match.top[0] == (loaded.labels[best], pytest.approx(float(every[q, best]), abs=1e-6))


def test_a_gallery_coded_with_another_codebook_is_refused_naming_the_file(models: dict[str, Path],
                                                                           items_dir: Path, tmp_path: Path) -> None:
    gallery, _ = build_gallery(open_engine(models["coded"]), items_dir, "int8")
    path = gallery.save(tmp_path / "coded.pvg")
    for other in ("other", "full"):
        with pytest.raises(GalleryError, match=f"{re.escape(str(path))}.*codes its local maps with codebook"):
            open_gallery(open_engine(models[other]), path)
    with pytest.raises(GalleryError, match=r"needs? the model's local codebook|carries no local codebook"):
        build_gallery(open_engine(models["full"]), items_dir, "int8", local_maps="compact")


def test_full_maps_stay_available_and_are_the_float_default(models: dict[str, Path], items_dir: Path) -> None:
    engine = open_engine(models["coded"])
    assert not build_gallery(engine, items_dir, "float32")[0].compact
    assert not build_gallery(engine, items_dir, "int8", local_maps="full")[0].compact
    assert not build_gallery(open_engine(models["full"]), items_dir, "int8")[0].compact  # no codebook: full


def test_cli_build_writes_compact_int8_rows_and_info_names_the_codebook(models: dict[str, Path], items_dir: Path,
                                                                        tmp_path: Path, monkeypatch, capsys) -> None:
    out = tmp_path / "cli.pvg"
    code, stdout, _ = cli(monkeypatch, capsys, "gallery", "build", models["coded"], "--images", items_dir, "--out",
                          out, "--dtype", "int8", "--views", "0", "--no-text")
    assert code == 0 and "compact local maps" in stdout
    code, stdout, _ = cli(monkeypatch, capsys, "gallery", "info", out, "--json")
    assert code == 0 and '"coded_locations"' in stdout and '"format_version": 5' in stdout
    full = tmp_path / "full.pvg"
    code, _, _ = cli(monkeypatch, capsys, "gallery", "build", models["coded"], "--images", items_dir, "--out",
                     full, "--dtype", "int8", "--views", "0", "--no-text", "--local-maps", "full")
    assert code == 0 and full.stat().st_size > out.stat().st_size


def test_earlier_versions_still_read_and_an_unknown_one_is_refused(tmp_path: Path) -> None:
    v4 = Gallery.load(OLD / "v4-int8-maps.pvg")
    assert v4.saved.version == 4 and not v4.compact and v4.locals.shape == (3, 4, 6)
    assert Gallery.load(OLD / "v3-float16-maps.pvg").local_maps().shape == (3, 4, 6)
    raw = bytearray((OLD / "v4-int8-maps.pvg").read_bytes())
    raw[8:12] = struct.pack("<I", 6)
    (tmp_path / "v6.pvg").write_bytes(bytes(raw))
    with pytest.raises(GalleryError, match=r"v6.pvg: gallery format version 6 is not supported \(this pocketvec reads "
                                           r"1, 2, 3, 4, 5\)"):
        Gallery.load(tmp_path / "v6.pvg")


def test_a_box_that_leaves_the_map_or_codes_of_another_count_read_as_damaged(models: dict[str, Path],
                                                                            items_dir: Path, tmp_path: Path) -> None:
    gallery, _ = build_gallery(open_engine(models["coded"]), items_dir, "int8")
    header = gallery.header() | {"coded_locations": gallery.locals.coded - 1}
    codes = gallery.locals.select(range(gallery.count))
    shorter = codes.parts[0].codes[:-1]
    with pytest.raises(GalleryError, match=r"keep .* locations, the header counts"):
        gallery_file.decode(b"".join(gallery_file._encoded(header, gallery.vectors, [codes.parts[0].boxes, shorter],
                                                           codes.nbytes - 4)), "short.pvg")
    boxes = codes.parts[0].boxes.copy()
    boxes[0] = [5, 5, 3, 3]
    with pytest.raises(GalleryError, match=r"short.pvg: row 0: content box \[5, 5, 3, 3\] leaves the map"):
        gallery_file.decode(b"".join(gallery_file._encoded(gallery.header(), gallery.vectors,
                                                           [boxes, codes.parts[0].codes], codes.nbytes)), "short.pvg")


def test_rerank_with_compact_rows_of_every_location_uncoded_is_todays_score() -> None:
    """A row list holding every location (uncoded) re-ranks exactly as the full maps' array."""
    rng = np.random.default_rng(3)
    config = LocalRerank(locations=36, channels=16, top_k=3)
    maps = unit(rng.standard_normal((6, 36, 16))).astype(np.float16)
    photos = unit(rng.standard_normal((2, 36, 16))).astype(np.float32)
    cosines = rng.uniform(0.2, 0.9, (2, 6)).astype(np.float32)

    class Listed:
        def __getitem__(self, ids):
            return [maps[i] for i in np.atleast_1d(ids)]

    assert np.array_equal(rerank(cosines, np.arange(6), photos, Listed(), config),
                          rerank(cosines, np.arange(6), photos, maps, config))


def test_recognizer_enrols_int8_rows_compact_and_saves_them(models: dict[str, Path], item_paths: list[Path],
                                                            tmp_path: Path) -> None:
    from pocketvec.recognizer import Recognizer

    path = tmp_path / "r.pvg"
    recognizer = Recognizer(models["coded"], path, dtype="int8", views=None, text=False)
    for item in item_paths[:3]:
        assert recognizer.enroll(item, label=item.stem).added == 1
    recognizer.save()
    again = Recognizer(models["coded"], path, text=False)
    assert again.gallery.compact and again.gallery.count == 3
    assert again.match(item_paths[1]).top[0].label == item_paths[1].stem
    assert not Recognizer(models["coded"], dtype="int8", local_maps="full", text=False).gallery.compact


def test_the_shipped_base_int8_gallery_of_real_items_is_at_most_2_kb_an_item(tmp_path: Path,
                                                                             item_paths: list[Path]) -> None:
    """The shipped base exported as int8 carries its codebook; `gallery build --dtype int8` of the 24 demo items
    (pages and flags, letterboxed) writes compact maps: at most 2 KiB an item, header and checksum included."""
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.runtime.gallery.views import GalleryViews
    from pocketvec.train.student import base_run_dir

    engine = open_engine(export_onnx(base_run_dir(), tmp_path / "base-int8.onnx", quantize="int8"))
    assert engine.metadata.local_rerank.codebook == read_codebook(base_run_dir())
    items = item_paths[0].parent
    gallery, _ = build_gallery(engine, items, "int8", views=GalleryViews(count=0))
    path = gallery.save(tmp_path / "base.pvg")
    assert gallery.compact and gallery.count == len(item_paths)
    assert path.stat().st_size / gallery.count <= 2048
    full, _ = build_gallery(engine, items, "int8", views=GalleryViews(count=0), local_maps="full")
    assert full.save(tmp_path / "full.pvg").stat().st_size > 20 * path.stat().st_size
