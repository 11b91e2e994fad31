"""The geometry of a simulated phone photo: a background frame and the item placed on it in 3D.

The item is a flat rectangle viewed by a pinhole camera: tilted about two axes (perspective),
rotated in plane, scaled so it covers a chosen fraction of the frame, and shifted so that at most a
little of it falls outside. It is warped once onto the background with an anti-aliased mask and a
soft contact shadow, as a printed item lying on a surface looks.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pocketvec.runtime.phone_sim.config import AugmentConfig


def background_frame(background: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """A random square crop of a background photo (zoomed, maybe mirrored/rotated) resized to `size`."""
    h, w = background.shape[:2]
    side = int(min(h, w) * rng.uniform(0.3, 1.0))
    side = max(side, 8)
    y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = background[y : y + side, x : x + side]
    # Backgrounds are stored at about twice the output size, so linear interpolation does not alias.
    frame = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.5:
        frame = frame[:, ::-1]
    return np.ascontiguousarray(np.rot90(frame, k=int(rng.integers(0, 4))))


def plain_frame(size: int, rng: np.random.Generator) -> np.ndarray:
    """A plain surface (table, cloth, paper): one colour with a gentle gradient and fine texture."""
    colour = rng.uniform(30, 230, size=3) * rng.uniform(0.8, 1.2, size=3)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    gx, gy = rng.uniform(-0.15, 0.15, size=2)
    shade = 1.0 + gx * ramp[None, :] + gy * ramp[:, None]
    texture = cv2.resize(rng.normal(0, 6, size=(size // 8, size // 8, 3)).astype(np.float32), (size, size))
    frame = colour[None, None, :] * shade[..., None] + texture
    return np.clip(frame, 0, 255).astype(np.uint8)


def item_quad(item_hw: tuple[int, int], size: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Where the item's four corners (tl, tr, br, bl) land in the frame, float32 (4, 2)."""
    h, w = item_hw
    s = config.strength
    corners = np.array([[-w, -h, 0], [w, -h, 0], [w, h, 0], [-w, h, 0]], dtype=np.float64) / 2.0
    # Camera tilt: rotate the flat item about x and y, then project with a phone-like focal length.
    tilt = math.radians(config.max_tilt * s)
    ax, ay = rng.uniform(-tilt, tilt, size=2) * rng.uniform(0.3, 1.0)
    rot_x = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    rot_y = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    focal = max(h, w) * rng.uniform(1.0, 1.6)
    points = corners @ (rot_y @ rot_x).T
    projected = points[:, :2] * (focal / (focal + points[:, 2:3]))
    # In-plane rotation.
    angle = math.radians(rng.uniform(-1.0, 1.0) * config.max_rotation * s)
    c, si = math.cos(angle), math.sin(angle)
    projected = projected @ np.array([[c, -si], [si, c]]).T
    if config.p_phone_frame > 0 and rng.random() < config.p_phone_frame:
        projected = projected * phone_frame_stretch(rng)
    # Scale to the chosen frame coverage, then shrink until the cut-off stays within bounds.
    coverage = rng.uniform(*config.fill)
    scale = math.sqrt(coverage * size * size / (h * w))
    allowed = size * (1.0 + 2.0 * config.max_cutoff * min(s, 1.0))
    extent = (projected.max(axis=0) - projected.min(axis=0)) * scale
    scale *= min(1.0, allowed / max(extent.max(), 1e-6))
    projected *= scale
    low, high = projected.min(axis=0), projected.max(axis=0)
    slack = config.max_cutoff * min(s, 1.0) * size
    centre = [
        rng.uniform(min(-lo - slack, size - hi + slack), max(-lo - slack, size - hi + slack))
        for lo, hi in zip(low, high, strict=True)
    ]
    return (projected + np.array(centre)).astype(np.float32)


PHONE_FRAME_ASPECTS = (4 / 3, 16 / 9)  # a phone photo's long side over its short side


def phone_frame_stretch(rng: np.random.Generator) -> np.ndarray:
    """(x, y) factors that squash a random phone frame (portrait or landscape) to a square, area kept."""
    root = math.sqrt(PHONE_FRAME_ASPECTS[int(rng.integers(0, len(PHONE_FRAME_ASPECTS)))])
    return np.array([root, 1 / root] if rng.random() < 0.5 else [1 / root, root])


def composite_item(
    frame: np.ndarray, item: np.ndarray, quad: np.ndarray, rng: np.random.Generator, shadow: bool = True
) -> np.ndarray:
    """Warp `item` onto `frame` at `quad` with an anti-aliased edge and a soft contact shadow."""
    size = frame.shape[0]
    h, w = item.shape[:2]
    # Shrink big items first (INTER_AREA) so the warp does not alias fine print.
    side = float(np.linalg.norm(quad[1] - quad[0]) + np.linalg.norm(quad[2] - quad[1])) / 2.0
    factor = side / ((w + h) / 2.0)
    if factor < 0.7:
        new_w, new_h = max(2, round(w * factor * 1.4)), max(2, round(h * factor * 1.4))
        item = cv2.resize(item, (new_w, new_h), interpolation=cv2.INTER_AREA)
        h, w = new_h, new_w
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
    matrix = cv2.getPerspectiveTransform(source, quad)
    warped = cv2.warpPerspective(item, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = np.full((h, w), 255, dtype=np.uint8)
    alpha = cv2.warpPerspective(mask, matrix, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    alpha = alpha.astype(np.float32) * (1.0 / 255.0)
    if shadow:
        offset = rng.normal(0.0, 0.012 * size, size=2)
        shift = np.float32([[1, 0, offset[0]], [0, 1, offset[1]]])
        soft = cv2.warpAffine(alpha, shift, (size, size))
        soft = cv2.GaussianBlur(soft, (0, 0), sigmaX=max(0.8, 0.02 * size * rng.uniform(0.5, 1.5)))
        soft *= rng.uniform(0.1, 0.45)
        frame = cv2.blendLinear(frame, np.zeros_like(frame), 1.0 - soft, soft)  # frame * (1 - soft)
    return cv2.blendLinear(warped, frame, alpha, 1.0 - alpha)
