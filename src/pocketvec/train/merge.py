"""`pocketvec train merge RUN_DIR`: turn a run's resumable state (adapters included) into plain weights."""

from __future__ import annotations

from pathlib import Path

from pocketvec.errors import ModelFileError
from pocketvec.train.adapters import add_adapters, merge_adapters
from pocketvec.train.checkpoint import WEIGHTS_FILE, save_run
from pocketvec.train.config import TrainConfig
from pocketvec.train.encoder import build_encoder
from pocketvec.train.state import RUN_SCHEMA, has_state, load_module_states, read_state_info


def merge_run(run_dir: str | Path) -> Path:
    """Write RUN_DIR/model.safetensors from the latest resumable state, adapters folded in.

    A finished run already holds merged weights and is left as it is.
    """
    run_dir = Path(run_dir)
    if not has_state(run_dir):
        if (run_dir / WEIGHTS_FILE).is_file():
            return run_dir
        raise ModelFileError(f"{run_dir}: neither a resumable training state nor merged weights")
    info = read_state_info(run_dir, RUN_SCHEMA)
    config = TrainConfig.from_dict(info["config"])
    model = build_encoder(config.encoder)
    if config.adapters.kind != "none":
        add_adapters(model, config.adapters)
    try:
        model.load_state_dict(load_module_states(run_dir)["model"], strict=True)
    except (KeyError, RuntimeError) as e:
        raise ModelFileError(f"{run_dir}: the resume state does not fit its config ({e})") from e
    merge_adapters(model)
    save_run(run_dir, model.eval(), {"train": config.to_dict(), "history": info["history"], "steps": info["step"],
                                     "merged_from_resume_state": True})
    return run_dir
