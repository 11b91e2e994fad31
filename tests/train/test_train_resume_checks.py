"""Resume is exact or refused (issue 39, item 7): a run computed with other CPU threads is not resumed (its
float sums, so its weights, would differ); state.json is checked by schema, and a step that disagrees
with the scheduler, the tensors file or the optimizer is refused, naming the file, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.train.loop import Trainer
from pocketvec.train.merge import merge_run
from pocketvec.train.state import JSON_FILE, RESUME_DIR

from .test_train_loop import tiny_config


@pytest.fixture(scope="module")
def paused(few_items: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run stopped after its first step with one CPU thread: resume/ holds state.json and its tensors."""
    out = tmp_path_factory.mktemp("paused") / "run"
    Trainer(tiny_config(threads=1), few_items, out).run(stop_after=1)
    return out


@pytest.fixture
def run(paused: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(paused, tmp_path / "run"))


def edit_state(run: Path, change) -> Path:
    path = run / RESUME_DIR / JSON_FILE
    state = json.loads(path.read_text())
    path.write_text(json.dumps(change(state)))
    return path


@pytest.mark.skipif(not Trainer.device_is_cpu(), reason="threads only compute the steps on a CPU")
def test_resuming_with_other_threads_is_refused_and_the_same_threads_resume(few_items: Path, run: Path) -> None:
    with pytest.raises(ConfigError, match=rf"{run}: .*computed with 1 CPU threads, this one would run with 2 CPU "
                                          r"threads.*--set threads=1"):
        Trainer(tiny_config(threads=2), few_items, run)
    assert Trainer(tiny_config(threads=1), few_items, run).step == 1


@pytest.mark.parametrize(("change", "problem"), [
    (lambda s: {}, r"it lacks \['best', 'config', 'history', 'next_eval', 'optimizer', 'query_crop', 'scheduler', "
                   r"'step', 'threads', 'total_steps'\]"),
    (lambda s: {k: v for k, v in s.items() if k != "threads"}, r"it lacks \['threads'\] \(written by an older"),
    (lambda s: {**s, "step": "1"}, "its 'step' must be int, not str"),
    (lambda s: {**s, "step": True}, "its 'step' must be int, not bool"),
    (lambda s: {**s, "step": -1}, "step must be an integer in"),
    (lambda s: {**s, "history": {}}, "its 'history' must be list, not dict"),
    (lambda s: {**s, "threads": 1.5}, "its 'threads' must be int or null, not float"),
    (lambda s: {**s, "step": 2}, r"its step 2 disagrees with its scheduler's \(1\)"),
    (lambda s: {**s, "step": 2, "scheduler": {**s["scheduler"], "last_epoch": 2}},
     "its step 2 disagrees with its tensors file state-000000001-"),
], ids=["empty", "older", "step-str", "step-bool", "step-negative", "history-dict", "threads-float",
        "step-edited", "step-and-scheduler-edited"])
def test_a_damaged_or_edited_state_json_is_refused_naming_it(few_items: Path, run: Path, change, problem: str) -> None:
    path = edit_state(run, change)
    for resume in (lambda: Trainer(tiny_config(threads=1), few_items, run), lambda: merge_run(run)):
        with pytest.raises(ModelFileError, match=rf"{path}: .*{problem}"):
            resume()


def test_a_step_edited_everywhere_but_the_tensors_is_refused_by_the_optimizer(few_items: Path, run: Path) -> None:
    """step, the scheduler's step and the tensors file's name all say 2; the optimizer's moments (in the
    checksummed tensors) say 1."""
    folder = run / RESUME_DIR
    old = next(folder.glob("state-*.safetensors"))
    new = old.with_name(old.name.replace("state-000000001-", "state-000000002-"))
    old.rename(new)
    path = edit_state(run, lambda s: {**s, "step": 2, "scheduler": {**s["scheduler"], "last_epoch": 2},
                                      "tensors": {**s["tensors"], "file": new.name}})
    with pytest.raises(ModelFileError, match=rf"{path}: .*its step 2 disagrees with its optimizer's \(1\)"):
        Trainer(tiny_config(threads=1), few_items, run)
