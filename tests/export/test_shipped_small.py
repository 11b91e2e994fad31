"""The shipped distilled small student (src/pocketvec/assets/small): the encoder the `small` preset trains,
the start of `--preset enroll-small`, its int8 ONNX file under 1 MB, and photos of items it never saw matched far
above an untrained network of the same shape."""

from __future__ import annotations

from pathlib import Path

import torch

from pocketvec.export.calibration import load_batch
from pocketvec.runtime.enroll import labelled_images
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.train.checkpoint import load_run, read_run_config
from pocketvec.train.encoder import EncoderConfig, build_encoder
from pocketvec.train.presets import SMALL_ENCODER, preset_config
from pocketvec.train.student import shipped_run_dir

MB = 1_000_000
SMALL = shipped_run_dir("small")
# the shipped small measures 0.875 on these 48 photos (PyTorch fp32; the base: 0.958; an untrained PP-LCNet:
# 0.021), docs/TRAINING.md
TRAINED_TOP1 = 0.85


def test_shipped_small_is_the_small_preset_encoder_and_enroll_small_starts_from_it() -> None:
    assert EncoderConfig.from_dict(read_run_config(SMALL)["encoder"]) == SMALL_ENCODER
    for config in (preset_config("enroll-small"), preset_config("enroll", init="small")):
        assert config.init == "small"
        assert (config.encoder.backbone, config.encoder.embedding_dim) == ("lcnet_050", 128)
        assert config.encoder.preprocess.input_size == SMALL_ENCODER.preprocess.input_size


def _top1(model: torch.nn.Module, items: Path, photos: Path) -> float:
    """Share of photos whose nearest item (cosine) is their own, items and photos cropped as the model says."""
    spec = model.config.preprocess
    item_paths, item_labels = zip(*labelled_images(items), strict=True)
    photo_paths, photo_labels = zip(*labelled_images(photos), strict=True)
    with torch.no_grad():
        gallery = model(torch.from_numpy(load_batch(list(item_paths), spec))).numpy()
        queries = model(torch.from_numpy(load_batch(list(photo_paths), spec.query_specs()[0]))).numpy()
    return recall_at_k(queries @ gallery.T, list(photo_labels), list(item_labels), 1)


def test_shipped_small_matches_photos_of_unseen_items_far_above_an_untrained_one(demo_items: Path,
                                                                                 tmp_path: Path) -> None:
    """The demo items (12 tricolour-like flags, pages of two manuals) are kept out of its training pool."""
    from pocketvec.demo_photos import write_phone_photos

    torch.set_num_threads(1)
    photos = write_phone_photos(demo_items, tmp_path / "photos", 2, 7, [], "none")
    (photos / "none").rmdir()
    torch.manual_seed(0)
    untrained = build_encoder(SMALL_ENCODER).eval()
    trained = _top1(load_run(SMALL).eval(), demo_items, photos)
    assert trained >= TRAINED_TOP1
    assert trained >= _top1(untrained, demo_items, photos) + 0.3


def test_shipped_small_int8_file_is_under_1mb_and_embeds_as_torch(demo_items: Path, tmp_path: Path) -> None:
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.export.verify import verify_models

    path = export_onnx(SMALL, tmp_path / "small.int8.onnx", "int8")
    assert path.stat().st_size <= MB
    row = verify_models(SMALL, [path], demo_items).rows[0]
    assert row.mean_cosine >= 0.999 and row.min_cosine >= 0.998, row


def test_shipped_small_w8a8_files_are_under_1mb_and_meet_the_cosine_bars(demo_items: Path, tmp_path: Path) -> None:
    """8-bit activations, both formats, on 48 photos of the demo items (another seed than the export's check):
    the ladder keeps the head and the first 24 convolutions (the stride-16 stage) at float activations, and the
    files meet every cosine bar. Top-1 agreement does not reach 0.99 (0.974 on 192 photos; the weight-only int8
    file flips 3 answers of 192 too): the small's near-ties, docs/EXPORT.md. With the first 16 only, this
    student's ONNX local cosine is 0.9949 here; without the float head, run 3 of the small's training chain
    (docs/TRAINING.md) had mean cosine 0.989 (ONNX) and 0.976 (Core ML), min 0.974 / 0.918."""
    from pocketvec.demo_photos import write_phone_photos
    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.export.parity import BARS
    from pocketvec.export.verify import verify_models
    from pocketvec.file_kinds import file_size

    photos = write_phone_photos(demo_items, tmp_path / "photos", 2, 7, [], "none")
    files = [export_onnx(SMALL, tmp_path / "w8a8.onnx", "w8a8", calibration_dir=demo_items),
             export_coreml(SMALL, tmp_path / "w8a8.mlpackage", "w8a8", calibration_dir=demo_items)]
    assert all(file_size(path) <= MB for path in files), [file_size(path) for path in files]
    for row in verify_models(SMALL, files, photos, demo_items).rows:
        assert row.kind == "w8a8" and row.images == 48
        for metric in ("mean_cosine", "min_cosine", "local_mean_cosine"):
            assert getattr(row, metric) >= BARS["w8a8"][metric][0], row
