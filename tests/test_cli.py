"""Every command answers --help with an example, through the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = [
    [], ["data"], ["data", "fetch"], ["data", "list"], ["data", "preview"], ["train"], ["train", "merge"],
    ["export"], ["export", "onnx"], ["export", "coreml"], ["verify"], ["gallery"], ["gallery", "build"],
    ["gallery", "add"], ["gallery", "remove"], ["gallery", "info"], ["match"], ["eval"], ["calibrate"],
    ["bench"], ["demo"], ["app"], ["app", "serve"],
]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pocketvec", *args], capture_output=True, text=True,
                          env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_help_has_example(command: list[str]) -> None:
    result = run_cli(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Example" in result.stdout, result.stdout


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0 and result.stdout.startswith("pocketvec ")
