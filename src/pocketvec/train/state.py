"""Resumable training state: tensors in safetensors, everything else in JSON. Never pickle.

The optimizer's per-parameter tensors are stored as `optim/<param index>/<name>`; the scheduler, step,
metrics and config go to JSON; the torch RNG state is a uint8 tensor.

One commit point: the tensors go to a new file (`state-<step>-<token>.safetensors`, synced), then
`state.json` is replaced atomically (one rename) naming that file and its sha256. A kill at any
instant leaves either the previous checkpoint or the new one, whole; files of an unfinished save
are removed by the next save. A manifest that does not match its tensors is refused, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from pocketvec.atomic import remove_stray_temps, write_bytes_atomic
from pocketvec.bounded_json import read_json
from pocketvec.checks import check_number
from pocketvec.errors import ModelFileError

RESUME_DIR = "resume"
JSON_FILE = "state.json"  # the manifest: its atomic replacement commits a checkpoint
TENSORS_GLOB = "state*.safetensors"
KILL_AT_ENV = "POCKETVEC_KILL_AT"  # fault injection: SIGKILL this process at a boundary (tests)
BOUNDARIES = ("start", "tensors-written", "manifest-temp-written", "manifest-committed", "cleaned")
Schema = dict[str, type | tuple[type, ...]]
# state.json's keys, each with its JSON type ("tensors" is checked with the tensors it names)
SCHEMA: Schema = {"step": int, "optimizer": dict, "scheduler": dict, "history": list, "best": dict}
# what a training run's checkpoint adds (pocketvec.train.loop); threads: the CPU threads that computed it
# (None on a GPU), since float sums differ with them
RUN_SCHEMA: Schema = {"config": dict, "total_steps": int, "next_eval": int, "query_crop": (dict, type(None)),
                      "threads": (int, type(None))}
MAX_STEP = 1 << 62
_arrivals: dict[str, int] = {}


def _boundary(name: str) -> None:
    """A write boundary of save_state. POCKETVEC_KILL_AT=NAME kills the process the first time it
    gets here, NAME@N the N-th time (the N-th checkpoint of a training run)."""
    wanted = os.environ.get(KILL_AT_ENV)
    if not wanted:
        return
    _arrivals[name] = _arrivals.get(name, 0) + 1
    target, _, nth = wanted.partition("@")
    if target == name and _arrivals[name] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> str:
    save_file(tensors, str(path))
    with open(path, "rb+") as f:
        os.fsync(f.fileno())
    return _sha256(path)


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
    _boundary("start")
    name = f"state-{int(info.get('step', 0)):09d}-{secrets.token_hex(4)}.safetensors"
    digest = _write_tensors(folder / name, tensors)
    _boundary("tensors-written")
    manifest = {"optimizer": optim_meta, "scheduler": scheduler.state_dict(), **info,
                "tensors": {"file": name, "sha256": digest}}
    write_bytes_atomic(folder / JSON_FILE, json.dumps(manifest, indent=1, sort_keys=True).encode(),
                       before_rename=lambda: _boundary("manifest-temp-written"))
    _boundary("manifest-committed")
    _remove_uncommitted(folder, keep=name)
    _boundary("cleaned")
    return folder


def _remove_uncommitted(folder: Path, keep: str) -> None:
    """Tensor files no manifest names (older checkpoints, saves killed midway) and stray temp files."""
    for path in folder.glob(TENSORS_GLOB):
        if path.name != keep:
            path.unlink(missing_ok=True)
    remove_stray_temps(folder / JSON_FILE)


def has_state(run_dir: Path) -> bool:
    return (Path(run_dir) / RESUME_DIR / JSON_FILE).is_file()


def read_state_info(run_dir: Path, schema: Schema | None = None) -> dict[str, Any]:
    """state.json, once it holds every key of SCHEMA (and `schema`, a caller's own keys) with its type and
    its step agrees with the scheduler's; the tensors entry is checked when the tensors are read."""
    path = Path(run_dir) / RESUME_DIR / JSON_FILE
    info = read_json(path, "resume state", ModelFileError)
    if not isinstance(info, dict):
        raise ModelFileError(f"{path}: unreadable resume state (not a JSON object)")
    _check_schema(info, {**SCHEMA, **(schema or {})}, path)
    check_number(f"{path}: the resume state's step", info["step"], 0, MAX_STEP, integer=True, error=ModelFileError)
    if info["scheduler"].get("last_epoch") != info["step"]:
        raise _refused(path, f"its step {info['step']} disagrees with its scheduler's "
                             f"({info['scheduler'].get('last_epoch')!r})")
    return info


def _refused(path: Path, problem: str) -> ModelFileError:
    """A resume state that cannot be trusted: state.json `path`, what is wrong, and the way out."""
    return ModelFileError(f"{path}: resume state refused: {problem}; delete {path.parent} to start the run over")


def _check_schema(info: dict[str, Any], schema: Schema, path: Path) -> None:
    missing = sorted(set(schema) - set(info))
    if missing:
        raise _refused(path, f"it lacks {missing} (written by an older pocketvec, or damaged)")
    for key, kinds in schema.items():
        if isinstance(info[key], bool) or not isinstance(info[key], kinds):
            wanted = " or ".join("null" if kind is type(None) else kind.__name__
                                 for kind in (kinds if isinstance(kinds, tuple) else (kinds,)))
            raise _refused(path, f"its {key!r} must be {wanted}, not {type(info[key]).__name__}")


def _check_step(tensors: dict[str, torch.Tensor], info: dict[str, Any], path: Path) -> None:
    """The optimizer's own step count (the most any parameter took) is the manifest's step."""
    steps = [int(value.max()) for key, value in tensors.items() if key.startswith("optim/") and key.endswith("/step")]
    if steps and max(steps) != info["step"]:
        raise _refused(path, f"its step {info['step']} disagrees with its optimizer's ({max(steps)})")


def _committed_tensors(run_dir: Path, info: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors the manifest names, once their sha256 matches it."""
    folder = Path(run_dir) / RESUME_DIR
    entry = info.get("tensors")
    if not (isinstance(entry, dict) and isinstance(entry.get("file"), str) and isinstance(entry.get("sha256"), str)
            and "/" not in entry["file"] and entry["file"].endswith(".safetensors")):
        raise ModelFileError(f"{folder / JSON_FILE}: resume state without a valid tensors manifest (written by an "
                             f"older pocketvec, or damaged); its weights cannot be proven to match step "
                             f"{info.get('step')}. Delete {folder} to start the run over")
    if not entry["file"].startswith(f"state-{info['step']:09d}-"):
        raise _refused(folder / JSON_FILE, f"its step {info['step']} disagrees with its tensors file {entry['file']}")
    path = folder / entry["file"]
    try:
        digest = _sha256(path)
    except OSError as e:
        raise ModelFileError(f"{path}: the resume state's tensors are missing ({e.strerror or e}); "
                             f"delete {folder} to start the run over") from e
    if digest != entry["sha256"]:
        raise ModelFileError(f"{path}: the resume state's tensors do not match their manifest (sha256 "
                             f"{digest[:12]}, expected {entry['sha256'][:12]}); delete {folder} to start over")
    try:
        tensors = load_file(str(path))
    except Exception as e:  # safetensors raises its own types
        raise ModelFileError(f"{path}: unreadable resume state ({e})") from e
    _check_step(tensors, info, folder / JSON_FILE)
    return tensors


def load_module_states(run_dir: Path) -> dict[str, dict[str, torch.Tensor]]:
    return _grouped(_committed_tensors(run_dir, read_state_info(run_dir)))


def _grouped(tensors: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    grouped: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        prefix, name = key.split("/", 1)
        grouped.setdefault(prefix, {})[name] = value
    return grouped


def restore_state(run_dir: Path, modules: dict[str, torch.nn.Module], optimizer: torch.optim.Optimizer,
                  scheduler: Any) -> dict[str, Any]:
    """Load everything `save_state` wrote back into the live objects; returns the JSON info."""
    info = read_state_info(run_dir)
    tensors = _committed_tensors(run_dir, info)
    grouped = _grouped(tensors)
    for prefix, module in modules.items():
        module.load_state_dict(grouped.get(prefix, {}), strict=True)
    optimizer.load_state_dict(_join_optimizer(tensors, info["optimizer"]))
    scheduler.load_state_dict(info["scheduler"])
    torch.set_rng_state(grouped["rng"]["torch"])
    return info
