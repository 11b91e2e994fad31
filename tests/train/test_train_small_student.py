"""The distilled small student: a pocketvec run as a frozen teacher, the teacher-photo cache (built once,
read back exactly), the `small` preset training from it, its int8 ONNX under 1 MB, and enroll from it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from safetensors.torch import load_file

from pocketvec.data.items import load_items
from pocketvec.errors import ConfigError, DatasetError, ModelFileError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.checkpoint import load_run, read_run_config, save_run
from pocketvec.train.encoder import EncoderConfig, build_encoder
from pocketvec.train.photo_cache import PhotoCache, build_photo_cache, step_path
from pocketvec.train.presets import SMALL_ENCODER, enroll_config, preset_config
from pocketvec.train.teachers import RunTeacher, load_teacher

TEACHER_SIZE = 96
MB = 1_000_000


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real (untrained) pocketvec run folder standing in for `base`: lcnet_050, 32-d, 96 px."""
    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", embedding_dim=32,
                                        preprocess=PreprocessSpec(input_size=TEACHER_SIZE)))
    return save_run(tmp_path_factory.mktemp("teacher"), model.eval())


def _small_config(teacher: Path, **overrides):
    return preset_config("small").with_overrides({"teacher": str(teacher), "batch_classes": 3, **overrides})


@pytest.fixture(scope="module")
def cache(tiny_teacher: Path, few_items: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.set_num_threads(1)
    return build_photo_cache(_small_config(tiny_teacher), few_items, tmp_path_factory.mktemp("cache") / "c", steps=2)


def test_a_run_folder_is_a_teacher_with_its_own_embedding(tiny_teacher: Path) -> None:
    teacher = load_teacher(tiny_teacher)
    assert isinstance(teacher, RunTeacher)
    assert teacher.teacher_id == f"run:{read_run_config(tiny_teacher)['embedding_space_id']}@{TEACHER_SIZE}"
    pixels = torch.rand(2, 3, TEACHER_SIZE, TEACHER_SIZE) * 255
    with torch.no_grad():
        expected = load_run(tiny_teacher)(pixels)
    assert torch.allclose(teacher(pixels), expected, atol=1e-5)


def test_cache_round_trips_photos_labels_and_teacher_embeddings(cache: Path, tiny_teacher: Path) -> None:
    photos = PhotoCache(cache)
    assert (photos.spec.steps, photos.spec.batch_size, photos.spec.photo_size) == (2, 6, TEACHER_SIZE)
    stored = load_file(str(step_path(cache, 1)))
    batch = photos.batch(1, TEACHER_SIZE)  # at the photo size: the stored pixels unchanged
    assert torch.equal(batch.pixels, stored["pixels"].float())
    assert torch.equal(batch.labels, stored["labels"])
    assert batch.labels.max() < photos.spec.num_classes
    assert torch.allclose(batch.teacher_embedding, load_teacher(tiny_teacher)(batch.pixels), atol=1e-5)
    repeat = photos.batch(3, TEACHER_SIZE)  # the cache repeats, lightly jittered, with the same targets
    assert torch.equal(repeat.labels, batch.labels) and torch.equal(repeat.teacher_embedding, batch.teacher_embedding)
    assert not torch.equal(repeat.pixels, batch.pixels)
    assert torch.equal(photos.batch(3, TEACHER_SIZE).pixels, repeat.pixels)  # seeded by the step
    resized = photos.batch(1, 64)
    assert resized.pixels.shape == (6, 3, 64, 64)
    assert abs(float(resized.pixels.mean()) - float(batch.pixels.mean())) < 3.0


def test_cache_build_resumes_and_refuses_another_pool(cache: Path, tiny_teacher: Path, few_items: Path,
                                                      tmp_path: Path) -> None:
    before = os.stat(step_path(cache, 0)).st_mtime_ns
    build_photo_cache(_small_config(tiny_teacher), few_items, cache, steps=2)
    assert os.stat(step_path(cache, 0)).st_mtime_ns == before  # finished steps are kept
    with pytest.raises(ConfigError, match="another teacher, pool or batch shape"):
        build_photo_cache(_small_config(tiny_teacher, batch_classes=2), few_items, cache, steps=2)
    other = tmp_path / "items"
    other.mkdir()
    for path in sorted(few_items.iterdir())[:4]:
        (other / path.name).write_bytes(path.read_bytes())
    with pytest.raises(ConfigError, match="another pool"):
        PhotoCache(cache).check_pool(_small_config(tiny_teacher), load_items(other))


def test_damaged_cached_step_is_named(cache: Path, tmp_path: Path) -> None:
    copy = tmp_path / "c"
    (copy / "steps").mkdir(parents=True)
    (copy / "cache.json").write_bytes((cache / "cache.json").read_bytes())
    step_path(copy, 0).write_bytes(step_path(cache, 0).read_bytes()[:100])
    with pytest.raises(ModelFileError, match=r"000000\.safetensors"):
        PhotoCache(copy).batch(0, 64)
    with pytest.raises(DatasetError, match="missing cached step"):
        PhotoCache(copy).batch(1, 64)


def test_small_preset_trains_from_the_cache_and_exports_int8_under_1mb(cache: Path, tiny_teacher: Path,
                                                                       few_items: Path, tmp_path: Path) -> None:
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.train.loop import Trainer

    config = _small_config(tiny_teacher, teacher_photos=str(cache), max_steps=2)
    assert config.encoder == SMALL_ENCODER
    trainer = Trainer(config, few_items, tmp_path / "run")
    assert trainer.maker is None and "distill" in trainer.losses  # neither simulator nor teacher runs
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    run = trainer.run()
    assert read_run_config(run)["steps"] == 2
    trained = load_run(run).state_dict()
    assert any(not torch.equal(trained[k], start[k]) for k in start if start[k].is_floating_point())
    onnx_path = export_onnx(run, tmp_path / "small.int8.onnx", "int8")
    assert onnx_path.stat().st_size <= MB
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    size = SMALL_ENCODER.preprocess.input_size
    out = session.run(None, {session.get_inputs()[0].name: np.full((1, 3, size, size), 128, np.float32)})[0]
    assert out.shape == (1, SMALL_ENCODER.embedding_dim)
    assert abs(float(np.linalg.norm(out)) - 1.0) < 1e-3


def test_a_student_of_another_input_size_numbers_the_pseudo_classes_as_the_cache(
        cache: Path, tiny_teacher: Path, few_items: Path, tmp_path: Path) -> None:
    """Identical renderings are merged from the items as the maker keeps them: a student at another size
    than the cache's photos must keep them as the cache's builder did, or its centres and the cached
    labels number the pseudo-classes differently (a 192 px student of a 224 px cache did)."""
    from pocketvec.train.batches import BatchMaker
    from pocketvec.train.loop import Trainer

    config = _small_config(tiny_teacher, teacher_photos=str(cache), imprint_centres=True, max_steps=1,
                           **{"encoder.preprocess.input_size": 48})
    trainer = Trainer(config, few_items, tmp_path / "run")
    builder = BatchMaker(load_items(few_items), config.policy, TEACHER_SIZE, 3, 2, config.seed)
    assert max(max(image.shape[:2]) for image in builder.images) > 2 * 48  # the sides differ without the fix
    assert [image.shape for image in trainer.maker.images] == [image.shape for image in builder.images]
    assert trainer.maker.variants == builder.variants
    spec = PhotoCache(cache).spec
    with pytest.raises(ConfigError, match=f"{spec.num_classes} pseudo-classes.*gives {spec.num_classes + 1}"):
        PhotoCache(cache).check_classes(spec.num_classes + 1)


def test_enroll_follows_its_start_model(tiny_teacher: Path) -> None:
    from pocketvec.train.adapters import adapter_target_names
    from pocketvec.train.student import build_student

    config = preset_config("enroll", init=str(tiny_teacher))
    assert config.init == str(tiny_teacher)
    assert config.encoder.backbone == "lcnet_050" and config.encoder.embedding_dim == 32
    assert config.encoder.preprocess.crop_mode == "scale_fit"
    model = build_student(config.encoder, config.init)
    names = adapter_target_names(model, config.adapters.targets)
    assert "backbone.conv_head" in names and any(n.startswith("backbone.blocks.5.") for n in names)
    with pytest.raises(ConfigError, match="holds no trained model"):
        enroll_config(str(tiny_teacher.parent))


def test_local_scores_are_the_teachers_re_rank_of_each_photo_against_its_nearest_classes(
        cache: Path, tiny_teacher: Path, few_items: Path) -> None:
    from pocketvec.runtime.local_rerank import local_similarity
    from pocketvec.train.batches import BatchMaker
    from pocketvec.train.evaluate import local_settings
    from pocketvec.train.local_scores import build_local_scores, read_local_scores, scores_path

    config = _small_config(tiny_teacher)
    build_local_scores(config, few_items, cache)
    teacher, photos = load_run(tiny_teacher), PhotoCache(cache)
    maker = BatchMaker(load_items(few_items), config.policy, TEACHER_SIZE, 3, 2, photos.spec.seed)
    with torch.no_grad():  # every class's clean rendering, brute force
        views = torch.from_numpy(np.stack([maker.clean_view(c, teacher.config.preprocess)
                                           for c in range(maker.num_classes)])).permute(0, 3, 1, 2)
        embeddings, rows = teacher.forward_with_locals(views)
    similarity = (embeddings @ embeddings.T).numpy()
    for step in range(photos.spec.steps):
        batch = photos.batch(step, TEACHER_SIZE)
        candidates, scores = read_local_scores(cache, step, batch.labels)
        assert candidates.shape == scores.shape == (photos.spec.batch_size, 4)
        with torch.no_grad():
            photo_maps = teacher.local_maps(batch.pixels).numpy()
        for photo, label, ids, row_scores in zip(photo_maps, batch.labels.tolist(), candidates.numpy(), scores.numpy(),
                                                 strict=True):
            nearest = np.sort(np.delete(similarity[label], label))[::-1][:3]  # (an untrained teacher's are close)
            assert ids[0] == label and label not in ids[1:] and len(set(ids)) == 4
            np.testing.assert_allclose(np.sort(similarity[label, ids[1:]])[::-1], nearest, atol=1e-5)
            np.testing.assert_allclose(row_scores, local_similarity(photo, rows[ids].numpy(), local_settings(teacher)),
                                       rtol=1e-3, atol=2e-3)  # the runtime's score, in numpy (maps kept in fp16)
    before = os.stat(scores_path(cache, 0)).st_mtime_ns
    build_local_scores(config, few_items, cache)
    assert os.stat(scores_path(cache, 0)).st_mtime_ns == before  # finished steps are kept
    with pytest.raises(ModelFileError, match="other photos than the cached step 0"):
        read_local_scores(cache, 0, photos.batch(0, TEACHER_SIZE).labels.flip(0))


def test_local_distillation_trains_the_small_student_from_the_cache(cache: Path, tiny_teacher: Path,
                                                                   few_items: Path, tmp_path: Path) -> None:
    from pocketvec.train.local_scores import build_local_scores, scores_path
    from pocketvec.train.loop import Trainer

    build_local_scores(_small_config(tiny_teacher), few_items, cache)
    config = _small_config(tiny_teacher, teacher_photos=str(cache), max_steps=2, local_distill_weight=50.0)
    trainer = Trainer(config, few_items, tmp_path / "run")
    batch = trainer._steps(1)[0]
    assert batch.teacher_local.shape == batch.candidate_slot.shape == (6, 4)
    assert batch.class_views.shape == (len(batch.candidate_slot.unique()), 3, 192, 192)
    assert torch.equal(batch.class_slot, batch.candidate_slot[:, 0])  # each photo's own class comes first
    trainer._set_train_mode()
    with torch.no_grad():
        torch.manual_seed(0)
        with_local = trainer._loss(batch)
        torch.manual_seed(0)
        trainer.losses["local_distill"].scale = 0.0  # uniform softmaxes on both sides: the term is zero
        without = trainer._loss(batch)
    assert with_local > without
    trainer.losses["local_distill"].scale = 1.0 / config.distill_temperature
    assert read_run_config(trainer.run())["steps"] == 2
    missing = tmp_path / "no-scores"
    shutil.copytree(cache, missing, ignore=shutil.ignore_patterns("local_scores"))
    with pytest.raises(DatasetError, match="--local-scores"):
        Trainer(config.with_overrides({"teacher_photos": str(missing)}), few_items, tmp_path / "run2").run()
    assert scores_path(cache, 0).is_file()
    with pytest.raises(ConfigError, match="teacher-photo cache with local scores"):
        Trainer(_small_config(tiny_teacher, local_distill_weight=1.0), few_items, tmp_path / "run3")

