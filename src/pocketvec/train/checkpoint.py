"""Run folders: model.safetensors + config.json. Never pickle."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pocketvec.atomic import atomic_output, write_bytes_atomic
from pocketvec.bounded_json import read_json
from pocketvec.errors import ModelFileError
from pocketvec.train.encoder import Encoder, EncoderConfig, build_encoder

WEIGHTS_FILE = "model.safetensors"
# an int8_grid run keeps its trained float weights (before rounding onto the int8 grid) under this name,
# next to the shipped, rounded WEIGHTS_FILE: the second reference of `pocketvec verify`
FLOAT_WEIGHTS_FILE = "model.unrounded-float.safetensors"
CONFIG_FILE = "config.json"


def embedding_space_id(model: torch.nn.Module) -> str:
    """A short id that changes whenever any weight changes: galleries are tied to it."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_run(run_dir: str | Path, model: Encoder, extra: dict[str, Any] | None = None,
             half: bool = False) -> Path:
    """Write config.json + model.safetensors; `half` stores float tensors as fp16 (the model's weights
    must already be fp16-representable for the embedding-space id to hold after loading)."""
    run_dir = Path(run_dir)
    save_weights(run_dir / WEIGHTS_FILE, model, half)
    config = {"encoder": model.config.to_dict(), "embedding_space_id": embedding_space_id(model)}
    config.update(extra or {})
    write_bytes_atomic(run_dir / CONFIG_FILE, json.dumps(config, indent=2, sort_keys=True).encode())
    return run_dir


def save_weights(path: Path, model: torch.nn.Module, half: bool = False) -> Path:
    """The model's state dict as safetensors (atomically); `half` stores float tensors as fp16."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if half:
        state = {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    with atomic_output(path) as tmp:
        save_file(state, str(tmp))
    return path


def read_run_config(run_dir: str | Path) -> dict[str, Any]:
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise ModelFileError(f"{run_dir}: not a pocketvec run folder (no {CONFIG_FILE})")
    return read_json(path, "JSON", ModelFileError)


def load_run(run_dir: str | Path, weights_file: str = WEIGHTS_FILE) -> Encoder:
    """The trained encoder of a run folder, in eval mode: always a plain (merged) Encoder.

    `weights_file`: FLOAT_WEIGHTS_FILE loads an int8_grid run's float weights from before the rounding.
    An unfinished run (only a resumable state, possibly with unmerged adapters) is refused with a
    ModelFileError that says to run `pocketvec train merge RUN_DIR`.
    """
    weights = Path(run_dir) / weights_file
    if not weights.is_file() and (Path(run_dir) / "resume").is_dir():
        raise ModelFileError(f"{run_dir}: unfinished run without merged weights; resume it, or run "
                             f"`pocketvec train merge {run_dir}` to merge its adapters into plain weights")
    config = read_run_config(run_dir)
    if not weights.is_file():
        raise ModelFileError(f"{run_dir}: no {weights_file}")
    model = build_encoder(EncoderConfig.from_dict(config["encoder"]))
    try:
        state = load_file(str(weights))
    except Exception as e:  # safetensors raises its own error types
        raise ModelFileError(f"{weights}: unreadable or truncated weights ({e})") from e
    adapter_keys = [k for k in state if "lora_" in k or ".base_layer." in k]
    if adapter_keys:
        raise ModelFileError(f"{weights}: holds unmerged adapter weights ({adapter_keys[0]}, ...); "
                             f"run `pocketvec train merge {run_dir}`")
    state = {k: v.float() if v.dtype == torch.float16 else v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ModelFileError(f"{weights}: weights do not fit the encoder (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]})")
    return model.eval()


def load_float_reference(run_dir: str | Path) -> Encoder | None:
    """An int8_grid run's trained float weights (before rounding), None when the run has none."""
    return load_run(run_dir, FLOAT_WEIGHTS_FILE) if (Path(run_dir) / FLOAT_WEIGHTS_FILE).is_file() else None
