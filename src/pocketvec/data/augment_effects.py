"""Moved to pocketvec.runtime.phone_sim.effects (the gallery views use the simulator from the runtime);
kept here for old imports."""

from pocketvec.runtime.phone_sim.effects import (
    NoiseBank,
    apply_light,
    erase,
    exposure,
    gaussian_blur,
    glare_map,
    jpeg,
    low_resolution,
    sensor_noise,
    shadow_map,
    vignette_map,
)

__all__ = [
    "NoiseBank", "apply_light", "erase", "exposure", "gaussian_blur", "glare_map", "jpeg", "low_resolution",
    "sensor_noise", "shadow_map", "vignette_map",
]
