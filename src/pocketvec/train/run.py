"""Public entry points: train from a preset or a config, returning the run folder (weights merged)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pocketvec.errors import ConfigError
from pocketvec.train.checkpoint import WEIGHTS_FILE
from pocketvec.train.config import TrainConfig
from pocketvec.train.presets import preset_config
from pocketvec.train.state import has_state


def train_config(config: TrainConfig, data: str | Path, out: str | Path) -> Path:
    """Train (or resume an unfinished run in `out`) and return the run folder with merged weights."""
    from pocketvec.train.loop import Trainer

    out = Path(out)
    if (out / WEIGHTS_FILE).is_file() and not has_state(out):
        raise ConfigError(f"{out}: already holds a finished run; choose another --out (nothing overwritten)")
    return Trainer(config, data, out).run()


def train_preset(preset: str, data: Path, out: Path, overrides: dict[str, Any] | None = None) -> Path:
    """`pocketvec train --preset NAME`: the preset's config with `overrides` (dotted keys) applied."""
    config = preset_config(preset)
    if overrides:
        config = config.with_overrides(overrides)
    return train_config(config, data, out)
