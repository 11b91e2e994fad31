"""Paths: a symlink is resolved once (one lock per real file, the link stays a link), writers replace only
regular files, fifos and devices are refused by name before anything opens them, and Recognizer.save()
re-reads the file under its lock as the CLI does. Real files, fifos, device nodes and symlinks."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import pocketvec
from pocketvec.atomic import atomic_output, write_bytes_atomic
from pocketvec.errors import GalleryError, PocketvecError
from pocketvec.file_lock import lock_path
from pocketvec.output_paths import check_output_file
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.update import gallery_lock, update_gallery
from pocketvec.runtime.gallery.views import NO_VIEWS

from .test_runtime_cli import cli

SRC = Path(__file__).resolve().parents[2] / "src"
DIM = 8


def unit_rows(count: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, DIM)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def small_gallery(path: Path) -> Path:
    gallery = Gallery("0123456789abcdef", DIM)
    gallery.add(unit_rows(2, 0), ["a", "b"], [f"{i:064x}" for i in range(2)])
    return gallery.save(path)


def device_node(path: Path) -> Path:
    """A character device like /dev/null, made in a temporary folder (never the real one)."""
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here ({e})")
    return path


def add_one(seed: int) -> object:
    def change(gallery: Gallery) -> tuple[None, bool]:
        gallery.add(unit_rows(1, seed), [f"row{seed}"], [f"{seed + 1000:064x}"])
        return None, True

    return change


def test_a_gallery_through_a_symlink_keeps_its_link_and_shares_one_lock(tmp_path: Path) -> None:
    """The link was replaced by a file (the target unchanged) and the two names locked two files."""
    real = small_gallery(tmp_path / "real.pvg")
    link = tmp_path / "link.pvg"
    link.symlink_to(real.name)
    assert lock_path(link) == lock_path(real)
    update_gallery(link, add_one(1))
    assert link.is_symlink() and Gallery.load(real).count == 3
    # a writer using the other name waits for the same lock
    with gallery_lock(real), pytest.raises(GalleryError, match="being written by another process"):
        update_gallery(link, add_one(2), timeout_s=0.3)
    threads = [threading.Thread(target=update_gallery, args=(name, add_one(seed)))
               for seed, name in enumerate([link, real] * 6, start=10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert Gallery.load(link).count == 3 + 12 and link.is_symlink()


def test_writers_replace_only_regular_files(tmp_path: Path) -> None:
    """`--overwrite --out` onto a character device replaced the device node."""
    null = device_node(tmp_path / "null")
    fifo = tmp_path / "pipe.pvg"
    os.mkfifo(fifo)
    for target, kind in ((null, "character device"), (fifo, "named pipe")):
        with pytest.raises(PocketvecError, match=rf"{target.name}: is a {kind}"):
            write_bytes_atomic(target, b"data")
        with pytest.raises(PocketvecError, match=rf"{target.name}: is a {kind}"), atomic_output(target):
            pass
        with pytest.raises(PocketvecError, match=rf"--out .*{target.name}: is a {kind}"):
            check_output_file(target, "--out")
        with pytest.raises(GalleryError, match=rf"{target.name}: is a {kind}"):
            update_gallery(target, add_one(3))
    assert stat.S_ISCHR(null.stat().st_mode) and stat.S_ISFIFO(fifo.stat().st_mode)
    link = tmp_path / "link"
    link.symlink_to(null)
    with pytest.raises(PocketvecError, match="is a character device"):
        write_bytes_atomic(link, b"data")
    assert link.is_symlink()


def test_gallery_build_refuses_a_device_out_with_overwrite(monkeypatch, capsys, onnx_model: Path, items_dir: Path,
                                                           tmp_path: Path) -> None:
    null = device_node(tmp_path / "null")
    code, stdout, err = cli(monkeypatch, capsys, "gallery", "build", "--no-text", onnx_model,
                            "--images", items_dir, "--out", null,
                            "--overwrite")
    assert code != 0 and "is a character device, not a regular file" in stdout + err
    assert "Traceback" not in stdout + err and stat.S_ISCHR(null.stat().st_mode)


def run_cli(*args: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(SRC), "COLUMNS": "200", "TERM": "dumb"}
    return subprocess.run([sys.executable, "-m", "pocketvec", *map(str, args)], capture_output=True, text=True,
                          env=env, timeout=60)


def test_a_fifo_is_refused_before_it_is_opened(onnx_model: Path, item_paths: list[Path], tmp_path: Path) -> None:
    """A fifo named .onnx, or given as --config, hung forever: nothing writes to these fifos (each is tried
    in a process of its own, with a timeout, so a regression fails instead of hanging)."""
    fifo_model, fifo_config, fifo_gallery = tmp_path / "model.onnx", tmp_path / "config.json", tmp_path / "g.pvg"
    for fifo in (fifo_model, fifo_config, fifo_gallery):
        os.mkfifo(fifo)
    with pytest.raises(GalleryError, match=r"g\.pvg: is a named pipe"):
        Gallery.load(fifo_gallery)
    gallery = small_gallery(tmp_path / "real.pvg")
    result = run_cli("match", fifo_model, gallery, item_paths[0])
    assert result.returncode != 0 and "model.onnx: is a named pipe (fifo), not a regular file" in result.stderr
    result = run_cli("train", "--config", fifo_config, "--data", tmp_path, "--out", tmp_path / "run")
    assert result.returncode != 0 and "config.json: is a named pipe (fifo)" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_recognizer_save_keeps_a_concurrent_writers_rows(onnx_model: Path, item_paths: list[Path],
                                                         tmp_path: Path) -> None:
    """Two recognizers on one gallery file each enroll and save: 4 rows were lost."""
    path = tmp_path / "shared.pvg"
    first = pocketvec.Recognizer(onnx_model, path, views=NO_VIEWS, text=False)
    first.enroll(item_paths[:2], label="first")
    first.save()
    second = pocketvec.Recognizer(onnx_model, path, views=NO_VIEWS, text=False)
    third = pocketvec.Recognizer(onnx_model, path, views=NO_VIEWS, text=False)
    second.enroll(item_paths[2:4], label="second")
    third.enroll(item_paths[4:8], label="third")
    second.save()
    third.save()  # opened before `second` saved: re-reads the file under its lock
    assert sorted(Gallery.load(path).labels) == ["first"] * 2 + ["second"] * 2 + ["third"] * 4
    assert third.gallery.count == 8 and third.match(item_paths[2]).answer == "second"
    link = tmp_path / "link.pvg"
    link.symlink_to(path)
    via_link = pocketvec.Recognizer(onnx_model, link, views=NO_VIEWS)
    via_link.enroll(item_paths[8], label="fourth")
    assert via_link.save() == link and link.is_symlink() and Gallery.load(path).count == 9
