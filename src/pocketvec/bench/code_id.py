"""Which code made a cached benchmark artefact: a short hash of the sources, so a change makes it again."""

from __future__ import annotations

import hashlib
from pathlib import Path
from types import ModuleType


def code_id(*modules: ModuleType) -> str:
    """A short hash of the modules' source files (a package: every .py file in its folder and below)."""
    digest = hashlib.sha256()
    for module in modules:
        path = Path(module.__file__ or "")
        sources = sorted(path.parent.rglob("*.py")) if path.name == "__init__.py" else [path]
        for source in sources:
            digest.update(source.relative_to(path.parent).as_posix().encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()[:8]
