"""The resumable training state has one commit point: a process killed (SIGKILL) at every write
boundary of save_state resumes to exactly the previous or the new checkpoint, never a mix; a
manifest that does not match its tensors, or an old manifest-less state, is refused by name."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pocketvec.errors import ModelFileError
from pocketvec.train import state
from pocketvec.train.state import BOUNDARIES, KILL_AT_ENV, RESUME_DIR, restore_state

SRC = Path(__file__).resolve().parents[2] / "src"

# Shared by this test and the child process it kills: a tiny model, its optimizer and scheduler,
# and training steps. The child also saves reference checkpoints of each step (unkilled): float
# results may differ between processes (thread counts), so the references come from the child.
SETUP = '''
import torch
from pocketvec.train.state import save_state

def make():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.LayerNorm(5), torch.nn.Linear(5, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler

def advance(model, optimizer, scheduler, step):
    x = torch.randn(8, 6, generator=torch.Generator().manual_seed(step))
    optimizer.zero_grad()
    model(x).pow(2).mean().backward()
    optimizer.step()
    scheduler.step()

def save(run_dir, model, optimizer, scheduler, step):
    save_state(run_dir, {"model": model}, optimizer, scheduler, {"step": step, "history": [], "best": {}})
'''
CHILD = SETUP + '''
import os, sys
run_dir, boundary = sys.argv[1], sys.argv[2]
parts = make()
advance(*parts, 1)
save(run_dir, *parts, 1)
save(run_dir + "/ref1", *parts, 1)  # the exact checkpoints, as this process computed them
advance(*parts, 2)
save(run_dir + "/ref2", *parts, 2)
os.environ["POCKETVEC_KILL_AT"] = boundary
save(run_dir, *parts, 2)
'''
helpers: dict = {}
exec(SETUP, helpers)  # the same code the child runs


def trained_to(step: int):
    parts = helpers["make"]()
    for s in range(1, step + 1):
        helpers["advance"](*parts, s)
    return parts


def assert_same(parts, expected) -> None:
    (model, optimizer, scheduler), (want_model, want_optimizer, want_scheduler) = parts, expected
    for a, b in zip(model.state_dict().values(), want_model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    got, want = optimizer.state_dict()["state"], want_optimizer.state_dict()["state"]
    assert got.keys() == want.keys()
    for index in got:
        for name in want[index]:
            assert torch.equal(torch.as_tensor(got[index][name]), torch.as_tensor(want[index][name]))
    assert scheduler.state_dict()["last_epoch"] == want_scheduler.state_dict()["last_epoch"]


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_a_kill_at_every_write_boundary_resumes_to_a_whole_checkpoint(tmp_path: Path, boundary: str) -> None:
    proc = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path), boundary],
                          env={**os.environ, "PYTHONPATH": str(SRC)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -9, proc.stderr  # really killed there
    committed = BOUNDARIES.index(boundary) >= BOUNDARIES.index("manifest-committed")
    expected_step = 2 if committed else 1
    left = sorted(p.name for p in (tmp_path / RESUME_DIR).iterdir())
    if boundary in ("tensors-written", "manifest-temp-written", "manifest-committed"):
        assert len(left) > 2, left  # the killed save left files behind
    parts, expected = helpers["make"](), helpers["make"]()
    info = restore_state(tmp_path, {"model": parts[0]}, parts[1], parts[2])
    assert info["step"] == expected_step
    restore_state(tmp_path / f"ref{expected_step}", {"model": expected[0]}, expected[1], expected[2])
    assert_same(parts, expected)
    # the next save removes whatever the killed one left behind
    helpers["advance"](*parts, expected_step + 1)
    helpers["save"](tmp_path, *parts, expected_step + 1)
    files = sorted(p.name for p in (tmp_path / RESUME_DIR).iterdir())
    assert len(files) == 2 and files[1] == "state.json" and files[0].startswith(f"state-{expected_step + 1:09d}-")


def saved_run(tmp_path: Path) -> Path:
    parts = trained_to(1)
    helpers["save"](tmp_path, *parts, 1)
    return tmp_path / RESUME_DIR


def test_tensors_that_do_not_match_the_manifest_are_refused(tmp_path: Path) -> None:
    folder = saved_run(tmp_path)
    tensors = next(folder.glob("state-*.safetensors"))
    raw = bytearray(tensors.read_bytes())
    raw[-1] ^= 1
    tensors.write_bytes(bytes(raw))
    parts = helpers["make"]()
    with pytest.raises(ModelFileError, match=f"{tensors}: the resume state's tensors do not match their manifest"):
        restore_state(tmp_path, {"model": parts[0]}, parts[1], parts[2])
    tensors.unlink()
    with pytest.raises(ModelFileError, match="tensors are missing"):
        state.load_module_states(tmp_path)


def test_an_old_state_without_a_manifest_is_refused_not_guessed(tmp_path: Path) -> None:
    folder = saved_run(tmp_path)
    manifest = json.loads((folder / "state.json").read_text())
    del manifest["tensors"]  # as pocketvec wrote it before: state.safetensors + state.json, no link
    (folder / "state.json").write_text(json.dumps(manifest))
    next(folder.glob("state-*.safetensors")).rename(folder / "state.safetensors")
    parts = helpers["make"]()
    with pytest.raises(ModelFileError, match=r"without a valid tensors manifest.*cannot be proven to match step 1"):
        restore_state(tmp_path, {"model": parts[0]}, parts[1], parts[2])


def test_save_then_restore_round_trips_exactly(tmp_path: Path) -> None:
    expected = trained_to(3)
    helpers["save"](tmp_path, *expected, 3)
    parts = helpers["make"]()
    assert restore_state(tmp_path, {"model": parts[0]}, parts[1], parts[2])["step"] == 3
    assert_same(parts, expected)


TRAIN_CHILD = '''
import json, sys
from pocketvec.train.config import TrainConfig
from pocketvec.train.loop import Trainer
Trainer(TrainConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2], sys.argv[3]).run()
'''


@pytest.mark.parametrize("kill_at", ["manifest-temp-written@2", "manifest-committed@2", "tensors-written@1"])
def test_a_training_run_killed_while_checkpointing_resumes_to_the_uninterrupted_weights(
        few_items: Path, tmp_path: Path, kill_at: str) -> None:
    """The real loop (2 epochs of 2 steps, a checkpoint after each epoch), killed at a boundary of
    its first or second checkpoint, then run again with the same settings: the same final weights."""
    from safetensors.torch import load_file

    from pocketvec.train.run import train_config

    from .test_train_loop import tiny_config

    config = tiny_config()
    straight = train_config(config, few_items, tmp_path / "straight")
    killed = tmp_path / "killed"
    args = [json.dumps(config.to_dict()), str(few_items), str(killed)]
    proc = subprocess.run([sys.executable, "-c", TRAIN_CHILD, *args],
                          env={**os.environ, "PYTHONPATH": str(SRC), KILL_AT_ENV: kill_at},
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == -9, proc.stderr[-2000:]
    train_config(config, few_items, killed)
    a, b = load_file(str(straight / "model.safetensors")), load_file(str(killed / "model.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)
    assert not (killed / RESUME_DIR).exists()
