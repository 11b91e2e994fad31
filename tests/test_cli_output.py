"""A normal CLI run keeps the libraries' own messages away from the user; --verbose shows them."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

IMPORT_COREMLTOOLS = """import sys
from pocketvec.cli import output
output.configure(verbose=sys.argv[1] == "verbose")
import coremltools
from tqdm import tqdm
for _ in tqdm(range(3), desc="converter pass"):
    pass
"""


@pytest.mark.parametrize("level", ["normal", "verbose"])
def test_third_party_noise_only_when_verbose(level: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}
    result = subprocess.run([sys.executable, "-c", IMPORT_COREMLTOOLS, level], capture_output=True, text=True,
                            env=env)
    assert result.returncode == 0, result.stderr
    noisy = ("Failed to load _MLModelProxy" in result.stderr, "converter pass" in result.stderr)
    assert noisy == ((True, True) if level == "verbose" else (False, False)), result.stderr


def test_progress_bar_leaves_nothing_in_a_log(capfd: pytest.CaptureFixture[str]) -> None:
    """Not on a terminal a bar cannot redraw: it must not leave rich's blank line on stderr either."""
    from pocketvec.runtime.progress import progress_bar

    with progress_bar("embed", total=5) as advance:
        advance(5)
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")


def test_tables_in_a_log_are_not_folded_to_80_columns(tmp_path) -> None:
    """No terminal anywhere (CI, `> log`): tables get LOG_COLUMNS, not rich's 80; COLUMNS still wins."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"} | {"POCKETVEC_CACHE": str(tmp_path)}
    run = [sys.executable, "-m", "pocketvec", "data", "list"]
    logged = subprocess.run(run, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
    assert logged.returncode == 0, logged.stderr
    assert "deb:texlive-latex-recommended-doc" in logged.stdout, logged.stdout
    narrow = subprocess.run(run, capture_output=True, text=True, env=env | {"COLUMNS": "80"},
                            stdin=subprocess.DEVNULL)
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80
