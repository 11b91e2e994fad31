"""Several writers of one gallery: the write lock, re-reading under it, no lost rows, the timeout,
and the temp files of killed writers cleaned by the next write. Real processes, real flock."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pocketvec.errors import GalleryError
from pocketvec.file_lock import lock_path
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import enroll_file
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.update import gallery_lock, update_gallery
from pocketvec.runtime.metadata import ModelMetadata
from pocketvec.runtime.preprocess import PreprocessSpec

from .test_runtime_cli import cli

SRC = Path(__file__).resolve().parents[2] / "src"


def folder_of(paths: list[Path], folder: Path) -> Path:
    folder.mkdir(parents=True)
    for path in paths:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture
def gallery_path(onnx_model: Path, item_paths: list[Path], tmp_path: Path) -> Path:
    """A gallery of the first two items, made by onnx_model."""
    engine = open_engine(onnx_model)
    meta = engine.metadata
    gallery = Gallery(meta.embedding_space_id, meta.embedding_dim)
    gallery.add(engine.embed(item_paths[:2]), [p.stem for p in item_paths[:2]], [f"{i:064x}" for i in range(2)])
    return gallery.save(tmp_path / "g.pvg")


def test_a_writer_waits_for_the_lock_and_keeps_the_other_writers_rows(onnx_model, item_paths, gallery_path,
                                                                       tmp_path: Path) -> None:
    engine = open_engine(onnx_model)
    images = folder_of(item_paths[4:7], tmp_path / "new")
    finished: dict[str, float] = {}

    def add_in_thread() -> None:
        enroll_file(engine, gallery_path, images, progress=False)
        finished["add"] = time.monotonic()

    with gallery_lock(gallery_path):
        thread = threading.Thread(target=add_in_thread)
        thread.start()
        time.sleep(2.0)  # the thread embeds its images, then waits for the lock
        assert "add" not in finished
        held = Gallery.load(gallery_path)  # meanwhile this writer adds a row of its own
        held.add(engine.embed(item_paths[8:9]), ["mine"], ["f" * 64])
        held.save(gallery_path)
        released = time.monotonic()
    thread.join(60)
    assert finished["add"] > released
    labels = Gallery.load(gallery_path).labels
    assert labels == [p.stem for p in item_paths[:2]] + ["mine"] + sorted(p.stem for p in item_paths[4:7])


def test_concurrent_gallery_add_processes_lose_no_rows(onnx_model, item_paths, gallery_path, tmp_path: Path) -> None:
    """Three `pocketvec gallery add` at once, each with its own images: every row arrives."""
    groups = [item_paths[2:5], item_paths[5:8], item_paths[8:11]]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    procs = [subprocess.Popen([sys.executable, "-m", "pocketvec", "gallery", "add", str(onnx_model), str(gallery_path),
                               "--images", str(folder_of(group, tmp_path / f"group{i}"))],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i, group in enumerate(groups)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    labels = Gallery.load(gallery_path).labels
    assert sorted(labels) == sorted(p.stem for p in item_paths[:11])


def test_a_held_lock_times_out_with_a_clear_error(monkeypatch, capsys, gallery_path: Path) -> None:
    before = gallery_path.read_bytes()
    with gallery_lock(gallery_path):
        start = time.monotonic()
        code, _, err = cli(monkeypatch, capsys, "gallery", "remove", gallery_path, Gallery.load(gallery_path).labels[0],
                           "--lock-timeout", "0.3")
        waited = time.monotonic() - start
    assert code == 2 and "the gallery is being written by another process" in err and str(gallery_path) in err
    assert 0.3 <= waited < 5 and gallery_path.read_bytes() == before


def killed_writer(path: Path) -> None:
    """A real process killed (SIGKILL) after writing its temp file, before the rename."""
    code = ("import os, signal, pocketvec.atomic as a\n"
            "a.os.replace = lambda *args: os.kill(os.getpid(), signal.SIGKILL)\n"
            f"a.write_bytes_atomic({str(path)!r}, b'half a gallery')\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONPATH": str(SRC)})
    assert proc.returncode == -9


def test_the_next_write_removes_temp_files_of_killed_writers(monkeypatch, capsys, gallery_path: Path) -> None:
    before = Gallery.load(gallery_path)
    for _ in range(3):
        killed_writer(gallery_path)
    strays = sorted(p.name for p in gallery_path.parent.iterdir() if p.name.endswith(".tmp"))
    assert len(strays) == 3 and all(name.startswith(".g.pvg.") for name in strays)
    assert Gallery.load(gallery_path).labels == before.labels  # the killed writers broke nothing
    unrelated = gallery_path.with_name(".other.pvg.x.tmp")
    unrelated.write_bytes(b"another file's temp")
    code, _, err = cli(monkeypatch, capsys, "gallery", "remove", gallery_path, before.labels[0])
    assert code == 0, err
    left = sorted(p.name for p in gallery_path.parent.iterdir())
    assert left == [".g.pvg.lock", ".other.pvg.x.tmp", "g.pvg"]


def test_update_gallery_refuses_a_foreign_gallery_without_writing(gallery_path: Path) -> None:
    before = gallery_path.read_bytes()
    stored = Gallery.load(gallery_path)
    other = ModelMetadata(PreprocessSpec(), stored.dim, "not-this-one")
    with pytest.raises(GalleryError, match="made by another model"):
        update_gallery(gallery_path, lambda g: (None, True), other)
    assert gallery_path.read_bytes() == before and lock_path(gallery_path).exists()


def test_a_version_1_gallery_warns_in_one_line_until_upgraded(monkeypatch, capsys, gallery_path: Path) -> None:
    from .test_runtime_gallery import version1_bytes

    gallery_path.write_bytes(version1_bytes(Gallery.load(gallery_path)))
    code, _, err = cli(monkeypatch, capsys, "gallery", "info", gallery_path)
    assert code == 0 and err.count("\n") == 1 and err.startswith("warning: ") and "gallery upgrade" in err
    code, stdout, err = cli(monkeypatch, capsys, "gallery", "upgrade", gallery_path)
    assert code == 0 and "format version 5" in stdout and not err
    assert gallery_path.read_bytes()[8:12] == (5).to_bytes(4, "little")
    code, _, err = cli(monkeypatch, capsys, "gallery", "info", gallery_path)
    assert code == 0 and not err
