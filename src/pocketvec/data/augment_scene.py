"""Moved to pocketvec.runtime.phone_sim.scene (the gallery views use the simulator from the runtime);
kept here for old imports."""

from pocketvec.runtime.phone_sim.scene import (
    background_frame,
    composite_item,
    item_quad,
    plain_frame,
)

__all__ = ["background_frame", "composite_item", "item_quad", "plain_frame"]
