"""Every command answers --help with an example, through the real entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

COMMANDS = [
    [], ["data"], ["data", "fetch"], ["data", "list"], ["data", "preview"], ["train"], ["train", "merge"],
    ["export"], ["export", "onnx"], ["export", "coreml"], ["verify"], ["gallery"], ["gallery", "build"],
    ["gallery", "add"], ["gallery", "remove"], ["gallery", "upgrade"], ["gallery", "compact"], ["gallery", "info"],
    ["match"], ["eval"], ["calibrate"],
    ["bench"], ["bench", "scale"], ["demo"], ["app"], ["app", "serve"], ["data", "photos"], ["data", "pool"],
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


@pytest.fixture
def in_process(monkeypatch, capsys):
    """`pocketvec ARGS` through the same main() the console script runs, in this process (each run in its own
    interpreter would load torch again): -> (exit code, stdout, stderr)."""
    from pocketvec.cli import main

    monkeypatch.setenv("COLUMNS", "200")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        monkeypatch.setattr(sys, "argv", ["pocketvec", *args])
        try:
            main()
            code = 0
        except SystemExit as e:
            code = e.code or 0
        out = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out.out, out.err)

    return run


def test_train_lists_presets_prints_a_config_and_reads_it_back(in_process, tmp_path) -> None:
    import json

    listed = in_process("train", "--list-presets")
    assert listed.returncode == 0 and all(name in listed.stdout for name in ("enroll", "base", "smoke"))
    printed = in_process("train", "--preset", "smoke", "--set", "epochs=3", "--print-config")
    assert printed.returncode == 0, printed.stderr
    config = json.loads(printed.stdout)
    assert config["epochs"] == 3 and config["encoder"]["backbone"]
    saved = tmp_path / "config.json"
    saved.write_text(printed.stdout)
    assert in_process("train", "--config", str(saved), "--print-config").stdout == printed.stdout
    run_config = tmp_path / "run_config.json"  # a finished run's config.json: its "train" section is the config
    run_config.write_text(json.dumps({"embedding_space_id": "abc", "encoder": config["encoder"], "train": config}))
    assert in_process("train", "--config", str(run_config), "--print-config").stdout == printed.stdout


def test_train_lists_what_it_supports(in_process) -> None:
    from pocketvec.train.config import LOSSES
    from pocketvec.train.teachers import BUILTIN_TEACHERS

    backbones = in_process("train", "--list", "backbones", "--match", "*lcnet_050*")
    assert backbones.returncode == 0 and "lcnet_050" in backbones.stdout.split()
    teachers = in_process("train", "--list", "Teachers").stdout  # any case
    assert all(name in teachers for name in BUILTIN_TEACHERS) and "PATH" in teachers
    assert in_process("train", "--list", "losses").stdout.split() == list(LOSSES)
    wrong = in_process("train", "--list", "margin")
    assert wrong.returncode == 2 and "Did you mean 'margins'?" in " ".join(wrong.stderr.split())


MISSING_DATA = """import sys
from pocketvec.cli import main
sys.argv = ["pocketvec", "train", "--preset", "enroll", "--data", sys.argv[1], "--out", sys.argv[2]]
try:
    main()
except SystemExit as e:
    print(e.code, "torch" in sys.modules)
"""


def test_train_refuses_missing_data_before_torch_loads(tmp_path) -> None:
    missing = tmp_path / "itmes"
    result = subprocess.run([sys.executable, "-c", MISSING_DATA, str(missing), str(tmp_path / "run")],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200", "TERM": "dumb"})
    assert result.stdout.split() == ["2", "False"], result.stdout + result.stderr
    assert f"{missing}: no such file or folder" in result.stderr
    assert not (tmp_path / "run").exists()


def test_gpu_preset_warns_without_cuda(monkeypatch) -> None:
    import torch

    from pocketvec.cli.train import _warn_without_gpu
    from pocketvec.errors import PocketvecWarning

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(PocketvecWarning, match="base-gpu is sized for a GPU.*no CUDA device"):
        _warn_without_gpu("base-gpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_without_gpu("base-gpu")
