"""Moved to pocketvec.runtime.phone_sim.config (the gallery views use the simulator from the runtime);
kept here for old imports."""

from pocketvec.runtime.phone_sim.config import (
    AugmentConfig,
)

__all__ = ["AugmentConfig"]
