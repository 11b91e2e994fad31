"""Whatever a user or a file controls is printed as text: rich markup in file names, labels and ids is
shown as typed (never parsed: no crash, nothing vanishes), control characters as \\x1b-style escapes
(a label cannot clear the terminal). Issue 39, item 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pocketvec.runtime.gallery import Gallery

from .test_runtime_cli import cli
from .test_runtime_gallery import unit_rows

CLEAR = "\x1b[2J"  # an ANSI escape that clears the terminal


@pytest.fixture
def run(monkeypatch, capsys):
    return lambda *args: cli(monkeypatch, capsys, *args)


def hostile_gallery(path: Path) -> Path:
    """A valid gallery whose id, creator and labels are markup and terminal escapes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    gallery = Gallery("[/x]", 16, created_by=f"[/x]{CLEAR}")
    gallery.add(unit_rows(3), ["[bold]a", f"{CLEAR}b", "c[/d]"], [f"{i:064x}" for i in range(3)])
    return gallery.save(path)


def test_gallery_info_prints_ids_labels_and_its_path_as_text(run, tmp_path: Path) -> None:
    path = hostile_gallery(tmp_path / "x[" / "y][bold].pvg")
    code, out, err = run("gallery", "info", path, "--labels")
    assert code == 0, err
    assert "x[/y][bold].pvg" in out  # the file name whole: neither a crash nor a vanished [bold]
    assert "embedding_space_id: [/x]" in out and "created_by: [/x]\\x1b[2J" in out
    assert "[bold]a" in out and "\\x1b[2Jb" in out and "c[/d]" in out
    assert "\x1b" not in out + err


def test_an_error_naming_a_path_with_markup_is_one_plain_line(run, tmp_path: Path) -> None:
    code, _, err = run("gallery", "info", tmp_path / "x[/y].pvg")
    assert code == 2 and f"error: {tmp_path}/x[/y].pvg: no such gallery file" in err, err
    code, _, err = run("gallery", "info", tmp_path / f"{CLEAR}[bold]z.pvg")
    assert code == 2 and "\\x1b[2J[bold]z.pvg: no such gallery file" in err and "\x1b" not in err, err


def test_build_and_match_print_image_paths_and_labels_as_text(run, onnx_model: Path, item_paths: list[Path],
                                                              tmp_path: Path) -> None:
    images = tmp_path / "d"
    (images / "a[").mkdir(parents=True)
    (images / "x[").mkdir()
    shutil.copy(item_paths[0], images / "a[" / "b].png")  # d/a[/b].png: label "a[/b]"
    shutil.copy(item_paths[1], images / f"{CLEAR}[bold]c.png")
    shutil.copy(item_paths[2], images / "plain.png")
    (images / "x[" / "y].png").write_bytes(b"\x89PNG\r\n\x1a\n broken")  # reported after the gallery is written
    gallery = tmp_path / "[bold]g.pvg"
    code, out, err = run("gallery", "build", "--no-text", onnx_model,
                         "--images", images, "--out", gallery, "--views", "0")
    assert code == 1 and gallery.is_file(), err  # exit 1: one image skipped as unreadable
    assert "x[/y].png" in out and "[bold]g.pvg: 3 rows" in out, out

    code, out, err = run("match", onnx_model, gallery, images / "a[" / "b].png", "--top-k", "3")
    assert code == 0, err
    assert "a[/b].png" in out and "a[/b] (" in out and "\\x1b[2J[bold]c (" in out, out
    assert "\x1b" not in out + err


def test_a_progress_description_is_text(monkeypatch, capfd) -> None:
    """On a terminal the bar shows the description: a path in it is neither markup nor a terminal escape."""
    from pocketvec.runtime.progress import progress_bar

    monkeypatch.setenv("FORCE_COLOR", "1")  # rich draws the bar as on a terminal
    with progress_bar(f"phone photos -> out[/x]{CLEAR}", total=3) as advance:
        advance(3)
    err = capfd.readouterr().err
    assert "out[/x]\\x1b[2J" in err and CLEAR not in err
