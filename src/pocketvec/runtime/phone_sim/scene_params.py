"""The CPU half of the device photo simulation: decode-side work and every random number.

For the torch path (pocketvec.data.augment_torch) a sample is prepared on the CPU as a `Scene`: the
background frame (crop + resize of a background photo, or a plain surface), the item shrunk into a
fixed canvas, the inverse homography that puts it on the frame (the same camera model as the CPU
path, `item_quad`), and the effect parameters, all drawn from the sample's generator. The device
then runs the pixel work for a whole batch. So a sample's photo depends only on (seed, step), on
any device, and the CPU does no per-pixel effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pocketvec.runtime.phone_sim.config import AugmentConfig

# The effect parameters of one sample, in a fixed order (a float32 vector per sample; 0/1 toggles).
PARAMS: tuple[str, ...] = (
    "contact", "contact_dx", "contact_dy", "contact_sigma", "contact_dark",
    "finger", "finger_along", "finger_width", "finger_length", "finger_turn", "finger_sigma",
    "skin_r", "skin_g", "skin_b",
    "shadow", "shadow_dark", "shadow_soft", "shadow_blob", "shadow_angle", "shadow_px", "shadow_py",
    "shadow_rx", "shadow_ry",
    "vignette", "vignette_cx", "vignette_cy", "vignette_amount",
    "glare", "glare_cx", "glare_cy", "glare_sx", "glare_sy", "glare_angle", "glare_amount",
    "temperature", "kelvin",
    "exposure", "gamma", "contrast", "brightness",
    "blur", "blur_kind", "blur_size", "blur_angle",
    "low_res", "low_res_factor",
    "noise", "noise_read", "noise_shot", "noise_chroma",
    "jpeg", "jpeg_quality",
)
INDEX = {name: i for i, name in enumerate(PARAMS)}
BLUR_KINDS = ("defocus", "motion", "gaussian")


@dataclass
class Scene:
    """One prepared sample (numpy, CPU): what the device needs to finish the photo."""

    frame: np.ndarray  # (S, S, 3) uint8 background
    item: np.ndarray  # (S, S, 3) uint8 canvas, the item at its top-left, (item_h, item_w) of it used
    item_hw: tuple[int, int]
    inverse_homography: np.ndarray  # (3, 3) float32: frame pixel -> item canvas pixel
    params: np.ndarray  # (len(PARAMS),) float32
    noise_seed: int


def clean_scene(pixels: np.ndarray) -> Scene:
    """A view that is already the finished picture (the clean item as the gallery sees it): no item on
    it (the homography sends every pixel far outside the canvas) and every effect off."""
    far = np.array([[0, 0, -1e6], [0, 0, -1e6], [0, 0, 1]], dtype=np.float32)
    return Scene(np.ascontiguousarray(pixels, dtype=np.uint8), np.zeros_like(pixels, dtype=np.uint8), (1, 1), far,
                 np.zeros(len(PARAMS), dtype=np.float32), 0)


def item_canvas(item: np.ndarray, quad: np.ndarray, size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The item shrunk (INTER_AREA, as the CPU path does before its warp) to about the size it takes in
    the frame, never more than the canvas, placed at the top-left of an (S, S, 3) canvas."""
    h, w = item.shape[:2]
    side = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2.0
    factor = min(1.0, 1.4 * side / ((w + h) / 2.0), size / max(h, w))
    if factor < 1.0:
        w, h = max(2, round(w * factor)), max(2, round(h * factor))
        item = cv2.resize(item, (w, h), interpolation=cv2.INTER_AREA)
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    canvas[:h, :w] = item
    return canvas, (h, w)


def inverse_homography(item_hw: tuple[int, int], quad: np.ndarray) -> np.ndarray:
    h, w = item_hw
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    return np.linalg.inv(cv2.getPerspectiveTransform(source, quad.astype(np.float32))).astype(np.float32)


def draw_params(cfg: AugmentConfig, rng: np.random.Generator, shadow_allowed: bool) -> np.ndarray:
    """Every effect's toggle and magnitudes, with the CPU path's probabilities and ranges."""
    s = cfg.strength
    p = np.zeros(len(PARAMS), dtype=np.float32)

    def put(**values: float) -> None:
        for name, value in values.items():
            p[INDEX[name]] = value

    if shadow_allowed and rng.random() < 0.7:
        dx, dy = rng.normal(0.0, 0.012, size=2)
        put(contact=1, contact_dx=dx, contact_dy=dy, contact_sigma=0.02 * rng.uniform(0.5, 1.5),
            contact_dark=rng.uniform(0.1, 0.45))
    if rng.random() < cfg.p_erase:
        skin = np.array([rng.uniform(150, 235), rng.uniform(95, 170), rng.uniform(70, 140)]) * rng.uniform(0.55, 1.0)
        put(finger=1, finger_along=rng.uniform(0.1, 0.9),
            finger_width=rng.uniform(0.13, 0.22) * min(max(s, 0.5), 1.5), finger_length=rng.uniform(0.12, 0.3),
            finger_turn=int(rng.integers(0, 4)), finger_sigma=rng.uniform(0.006, 0.02),
            skin_r=skin[0], skin_g=skin[1], skin_b=skin[2])
    if rng.random() < cfg.p_shadow:
        blob = rng.random() >= 0.6
        put(shadow=1, shadow_dark=min(0.85, rng.uniform(0.2, 0.55) * s),
            shadow_soft=rng.uniform(0.02, 0.2) * (3.0 if blob else 1.0), shadow_blob=float(blob),
            shadow_angle=rng.uniform(0, 2 * np.pi), shadow_px=rng.uniform(0.1, 0.9), shadow_py=rng.uniform(0.1, 0.9),
            shadow_rx=rng.uniform(0.15, 0.5), shadow_ry=rng.uniform(0.15, 0.5))
    if rng.random() < cfg.p_vignette:
        cx, cy = 0.5 + rng.normal(0, 0.08, size=2)
        put(vignette=1, vignette_cx=cx, vignette_cy=cy, vignette_amount=min(0.6, rng.uniform(0.1, 0.4) * s))
    if rng.random() < cfg.p_glare:
        put(glare=1, glare_cx=rng.uniform(0.2, 0.8), glare_cy=rng.uniform(0.2, 0.8), glare_sx=rng.uniform(0.04, 0.2),
            glare_sy=rng.uniform(0.04, 0.2), glare_angle=rng.uniform(0, np.pi),
            glare_amount=min(1.0, rng.uniform(0.35, 0.9) * s))
    if rng.random() < cfg.p_color_temperature:
        spread = max(100, int(1500 * min(s, 2.0)))
        put(temperature=1, kelvin=rng.uniform(max(3000, 6000 - spread), 6000 + spread))
    if rng.random() < cfg.p_exposure:
        put(exposure=1, gamma=float(np.exp(rng.uniform(-0.35, 0.35) * s)), contrast=1.0 + rng.uniform(-0.35, 0.25) * s,
            brightness=rng.uniform(-0.2, 0.15) * s)
    if rng.random() < cfg.p_blur:
        kind = int(rng.integers(0, 3))
        size = {0: rng.uniform(1, max(1, round(1 + 2.5 * s)) + 1),  # defocus radius
                1: rng.uniform(3, max(3, 2 * round(1 + 3 * s) + 1)),  # motion length
                2: rng.uniform(0.4, 0.6 + 1.2 * s)}[kind]  # gaussian sigma
        put(blur=1, blur_kind=kind, blur_size=size, blur_angle=rng.uniform(0, np.pi))
    if rng.random() < cfg.p_low_resolution:
        put(low_res=1, low_res_factor=float(np.clip(1.0 - rng.uniform(0.2, 0.6) * s, 0.25, 0.95)))
    if rng.random() < cfg.p_noise:
        put(noise=1, noise_read=rng.uniform(1.0, 4.0) * s, noise_shot=rng.uniform(0.1, 0.6) * s,
            noise_chroma=rng.uniform(0.2, 0.5))
    if rng.random() < cfg.p_jpeg:
        put(jpeg=1, jpeg_quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return p
