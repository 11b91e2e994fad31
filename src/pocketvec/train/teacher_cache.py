"""On-disk cache of teacher outputs keyed by image content hash, teacher id and view: a teacher runs
once per (image, view). One small safetensors file per entry; writes are atomic."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from pocketvec.train.teachers import Teacher


def default_cache_dir() -> Path:
    root = os.environ.get("POCKETVEC_CACHE")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "pocketvec") / "teacher-outputs"


class TeacherCache:
    def __init__(self, teacher: Teacher, folder: str | Path | None = None) -> None:
        self.teacher = teacher
        teacher_key = hashlib.sha256(teacher.teacher_id.encode()).hexdigest()[:16]
        self.folder = Path(folder or default_cache_dir()) / teacher_key
        self.folder.mkdir(parents=True, exist_ok=True)
        self.hits = self.misses = 0

    def path(self, image_hash: str, view: str) -> Path:
        key = hashlib.sha256(f"{image_hash}|{view}".encode()).hexdigest()
        return self.folder / key[:2] / f"{key}.safetensors"

    def _read(self, path: Path) -> dict[str, torch.Tensor] | None:
        try:
            return load_file(str(path))
        except Exception:  # missing or damaged entry: recompute it
            return None

    def outputs(self, pixels: torch.Tensor, keys: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Teacher outputs for a batch of (image content hash, view name) keys; runs the teacher only on
        keys not yet on disk, once per distinct key."""
        entries: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
        first_row: dict[tuple[str, str], int] = {}
        for row, key in enumerate(keys):
            first_row.setdefault(key, row)
        for key in first_row:
            entry = self._read(self.path(*key))
            if entry is not None:
                entries[key] = entry
        missing = [key for key in first_row if key not in entries]
        self.hits += len(first_row) - len(missing)
        self.misses += len(missing)
        if missing:
            computed = self.teacher.outputs(pixels[[first_row[key] for key in missing]])
            for row, key in enumerate(missing):
                entry = {name: value[row].detach().cpu().contiguous().clone() for name, value in computed.items()}
                path = self.path(*key)
                path.parent.mkdir(exist_ok=True)
                tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
                save_file(entry, str(tmp))
                tmp.replace(path)
                entries[key] = entry
        names = entries[keys[0]].keys()
        return {name: torch.stack([entries[key][name] for key in keys]).to(pixels.device) for name in names}
