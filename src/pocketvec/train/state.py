"""Resumable training state: tensors in safetensors, everything else in JSON. Never pickle.

The optimizer's per-parameter tensors are stored as `optim/<param index>/<name>`; the scheduler, step,
metrics and config go to JSON; the torch RNG state is a uint8 tensor.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pocketvec.atomic import write_bytes_atomic
from pocketvec.errors import ModelFileError

RESUME_DIR = "resume"
TENSORS_FILE = "state.safetensors"
JSON_FILE = "state.json"


def _atomic_json(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, json.dumps(data, indent=1, sort_keys=True).encode())


def _split_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors, scalars = {}, {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}/{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _join_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optim/"):
            _, index, name = key.split("/", 2)
            state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def save_state(run_dir: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
               scheduler: Any, info: dict[str, Any]) -> Path:
    """Write the resumable state of every module, the optimizer, the scheduler and the RNG."""
    folder = Path(run_dir) / RESUME_DIR
    folder.mkdir(parents=True, exist_ok=True)
    tensors, optim_meta = _split_optimizer(optimizer.state_dict())
    for prefix, module in modules.items():
        for name, value in module.state_dict().items():
            tensors[f"{prefix}/{name}"] = value.detach().cpu().contiguous()
    tensors["rng/torch"] = torch.get_rng_state()
    tmp = folder / (TENSORS_FILE + ".tmp")
    save_file(tensors, str(tmp))
    os.replace(tmp, folder / TENSORS_FILE)
    _atomic_json(folder / JSON_FILE, {"optimizer": optim_meta, "scheduler": scheduler.state_dict(), **info})
    return folder


def has_state(run_dir: Path) -> bool:
    folder = Path(run_dir) / RESUME_DIR
    return (folder / JSON_FILE).is_file() and (folder / TENSORS_FILE).is_file()


def read_state_info(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / RESUME_DIR / JSON_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelFileError(f"{path}: unreadable resume state ({e})") from e


def load_module_states(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    path = Path(run_dir) / RESUME_DIR / TENSORS_FILE
    try:
        tensors = load_file(str(path))
    except Exception as e:
        raise ModelFileError(f"{path}: unreadable or truncated resume state ({e})") from e
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        prefix, name = key.split("/", 1)
        grouped.setdefault(prefix, {})[name] = value
    return grouped


def restore_state(run_dir: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                  scheduler: Any) -> dict[str, Any]:
    """Load everything `save_state` wrote back into the live objects; returns the JSON info."""
    info = read_state_info(run_dir)
    grouped = load_module_states(run_dir)
    for prefix, module in modules.items():
        module.load_state_dict(grouped.get(prefix, {}), strict=True)
    tensors = load_file(str(Path(run_dir) / RESUME_DIR / TENSORS_FILE))
    optimizer.load_state_dict(_join_optimizer(tensors, info["optimizer"]))
    scheduler.load_state_dict(info["scheduler"])
    torch.set_rng_state(grouped["rng"]["torch"])
    return info
