"""Moved to pocketvec.runtime.phone_sim.scene_params (the gallery views use the simulator from the runtime);
kept here for old imports."""

from pocketvec.runtime.phone_sim.scene_params import (
    BLUR_KINDS,
    INDEX,
    PARAMS,
    Scene,
    clean_scene,
    draw_params,
    inverse_homography,
    item_canvas,
)

__all__ = ["BLUR_KINDS", "INDEX", "PARAMS", "Scene", "clean_scene", "draw_params", "inverse_homography", "item_canvas"]
