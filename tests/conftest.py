"""Shared fixtures: the embedded demo items and odd-mode images made on the fly."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def small_with_codebook(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped small student's run folder with a local codebook (fitted on 200 latex-docs pages and 200
    kgeography flags as docs/lab/compact-local-maps.md says): the small model ships without one, since its
    exports must stay under 1 MB, but a real model whose int8 galleries are compact is what the compact and zoom
    tests need."""
    import shutil

    from pocketvec.export.local_codebook import CODEBOOK_FILE
    from pocketvec.train.student import shipped_run_dir

    run = tmp_path_factory.mktemp("small-codebook") / "small"
    shutil.copytree(shipped_run_dir("small"), run)
    shutil.copy(REPO / "tests" / "assets" / "small_local_codebook.safetensors", run / CODEBOOK_FILE)
    return run
