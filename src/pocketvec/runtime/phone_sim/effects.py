"""Photometric effects of a phone camera on a whole frame (uint8 RGB in, uint8 RGB out).

Each effect takes the frame, the sample's random generator and the strength (magnitudes scale
with it). Light-field maps are computed on a coarse grid and upsampled: cheap and smooth.
"""

from __future__ import annotations

import cv2
import numpy as np

_GRID = 48  # resolution of shadow/glare/vignette maps before upsampling


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    axis = (np.arange(_GRID, dtype=np.float32) + 0.5) / _GRID
    return np.meshgrid(axis, axis)  # x, y in [0, 1]


def _upsample(field: np.ndarray, size: int) -> np.ndarray:
    return cv2.resize(field, (size, size), interpolation=cv2.INTER_LINEAR)


def shadow_map(size: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiplicative light map of a cast shadow: a soft half-plane (hand, phone) or a blob."""
    x, y = _grid(size)
    darkness = min(0.85, rng.uniform(0.2, 0.55) * strength)
    softness = rng.uniform(0.02, 0.2)
    if rng.random() < 0.6:
        angle = rng.uniform(0, 2 * np.pi)
        px, py = rng.uniform(0.2, 0.8, size=2)
        distance = (x - px) * np.cos(angle) + (y - py) * np.sin(angle)
    else:
        cx, cy = rng.uniform(0.1, 0.9, size=2)
        rx, ry = rng.uniform(0.15, 0.5, size=2)
        distance = 1.0 - np.sqrt(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2)
        softness *= 3.0
    inside = 1.0 / (1.0 + np.exp(-distance / softness))
    return _upsample((1.0 - darkness * inside).astype(np.float32), size)


def vignette_map(size: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Multiplicative lens fall-off towards the corners."""
    x, y = _grid(size)
    cx, cy = 0.5 + rng.normal(0, 0.08, size=2)
    radius2 = ((x - cx) ** 2 + (y - cy) ** 2) * 2.0
    return _upsample((1.0 - min(0.6, rng.uniform(0.1, 0.4) * strength) * radius2).astype(np.float32), size)


def glare_map(size: int, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Additive specular highlight (0..1): an elongated bright spot, as a lamp reflected on gloss."""
    x, y = _grid(size)
    cx, cy = rng.uniform(0.2, 0.8, size=2)
    sx, sy = rng.uniform(0.04, 0.2, size=2)
    angle = rng.uniform(0, np.pi)
    u = (x - cx) * np.cos(angle) + (y - cy) * np.sin(angle)
    v = -(x - cx) * np.sin(angle) + (y - cy) * np.cos(angle)
    spot = np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2))
    return _upsample((min(1.0, rng.uniform(0.35, 0.9) * strength) * spot).astype(np.float32), size)


def apply_light(frame: np.ndarray, gain: np.ndarray | None, glare: np.ndarray | None) -> np.ndarray:
    """Multiply by a light map, then blend towards white by a glare map."""
    out = frame.astype(np.float32)
    if gain is not None:
        out *= gain[..., None]
    if glare is not None:
        out += (255.0 - out) * glare[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def exposure(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Brightness, contrast and gamma through one lookup table."""
    gamma = float(np.exp(rng.uniform(-0.35, 0.35) * strength))
    contrast = 1.0 + rng.uniform(-0.35, 0.25) * strength
    brightness = rng.uniform(-0.2, 0.15) * strength
    levels = np.linspace(0.0, 1.0, 256) ** gamma
    levels = (levels - 0.5) * contrast + 0.5 + brightness
    table = np.clip(levels * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return cv2.LUT(frame, table)


def gaussian_blur(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    return cv2.GaussianBlur(frame, (0, 0), sigmaX=rng.uniform(0.4, 0.6 + 1.2 * strength))


def low_resolution(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Capture at a lower resolution (digital zoom, small sensor crop) and upscale again."""
    size = frame.shape[0]
    factor = float(np.clip(1.0 - rng.uniform(0.2, 0.6) * strength, 0.25, 0.95))
    small = max(8, round(size * factor))
    down = cv2.resize(frame, (small, small), interpolation=cv2.INTER_AREA)
    return cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)


class NoiseBank:
    """Pre-drawn standard normal noise; a sample takes a random window of it (fast, still i.i.d.)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.noise = np.random.default_rng(seed).standard_normal((2 * size, 2 * size, 4), dtype=np.float32)

    def take(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(luminance (S,S,1), colour (S,S,3)) windows at a random offset."""
        y, x = rng.integers(0, self.size, size=2)
        window = self.noise[y : y + self.size, x : x + self.size]
        turn = int(rng.integers(0, 4))
        window = np.rot90(window, k=turn) if turn else window
        return window[..., :1], window[..., 1:]


def sensor_noise(frame: np.ndarray, rng: np.random.Generator, strength: float, bank: NoiseBank) -> np.ndarray:
    """Shot noise (grows with brightness) plus read noise, mostly in luminance, a little in colour."""
    out = frame.astype(np.float32)
    read = rng.uniform(1.0, 4.0) * strength
    shot = rng.uniform(0.1, 0.6) * strength
    sigma = cv2.sqrt(cv2.cvtColor(out, cv2.COLOR_RGB2GRAY) * (shot * shot) + read * read)
    luma, chroma = bank.take(rng)
    out += sigma[..., None] * (luma + chroma * rng.uniform(0.2, 0.5))
    return np.clip(out, 0, 255).astype(np.uint8)


def erase(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """An occluder: a fingertip reaching in from an edge, or a patch of other pixels (sticker, object)."""
    size = frame.shape[0]
    if rng.random() < 0.8:
        return _finger(frame, rng, strength)
    area = rng.uniform(0.02, 0.08) * min(strength, 1.5) * size * size
    aspect = np.exp(rng.uniform(-0.7, 0.7))
    h = int(np.clip(np.sqrt(area / aspect), 2, size - 1))
    w = int(np.clip(np.sqrt(area * aspect), 2, size - 1))
    y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    sy, sx = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
    out = frame.copy()
    out[y : y + h, x : x + w] = frame[sy : sy + h, sx : sx + w]
    return out


def _finger(frame: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """A skin-coloured, softly shaded capsule entering the frame from one side."""
    size = frame.shape[0]
    width = size * rng.uniform(0.13, 0.22) * min(max(strength, 0.5), 1.5)
    length = size * rng.uniform(0.12, 0.3)
    x, y = _grid(size)
    along = rng.uniform(0.1, 0.9)  # where on the edge it enters
    tip = length / size
    d = np.abs(x - along) * size  # distance from the finger's axis (entering from the bottom)
    inside = np.clip((width / 2 - d) / (width / 2), 0, 1) * (y > 1.0 - tip)
    radius = width / 2 / size
    cap = np.sqrt(np.maximum(0, 1 - ((x - along) / radius) ** 2 - ((y - (1 - tip)) / radius) ** 2))
    shape = np.maximum(inside, cap * (y <= 1.0 - tip))
    alpha = _upsample(np.clip(shape * 4.0, 0, 1).astype(np.float32), size)
    alpha = cv2.GaussianBlur(alpha, (0, 0), sigmaX=size * rng.uniform(0.006, 0.02))  # close to the lens: defocused
    shade = _upsample((0.7 + 0.3 * np.sqrt(shape)).astype(np.float32), size)
    turn = int(rng.integers(0, 4))
    alpha, shade = np.rot90(alpha, k=turn), np.rot90(shade, k=turn)
    skin = np.array([rng.uniform(150, 235), rng.uniform(95, 170), rng.uniform(70, 140)], dtype=np.float32)
    skin *= rng.uniform(0.55, 1.0)
    colour = skin[None, None, :] * shade[..., None]
    out = frame.astype(np.float32) * (1 - alpha[..., None]) + colour * alpha[..., None]
    return np.clip(out, 0, 255).astype(np.uint8)


def jpeg(frame: np.ndarray, rng: np.random.Generator, quality_range: tuple[int, int]) -> np.ndarray:
    """Encode and decode as JPEG at a random quality (4:2:0 chroma, as phones store photos)."""
    quality = int(rng.integers(quality_range[0], quality_range[1] + 1))
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 RGB frame
        return frame
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
