"""The benchmark photo simulator: synthetic phone photos of an item, with a fixed seed.

Deliberately its own code path (numpy + OpenCV + Pillow's JPEG), not the training augmentation:
a model must not be scored on photos made by the same code it was trained on. One photo is
  item -> perspective warp onto a background -> lighting (gain, contrast, gamma, white balance,
  illumination ramp) -> cast shadow -> specular glare -> defocus or motion blur -> sensor noise -> JPEG.
Photo k of an item depends only on (seed, item label, k): the same seed gives the same bytes.

Two framings: `item` (the benchmark's photos: 4:3, the photo's long side along the item's) and `phone` (`data
photos`, which calibrate the accept rule: 3:4 or 9:16, held portrait or landscape as a phone comes whatever the
item's shape, so an item may fill a small part of the frame, as in users' photos).
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from pocketvec.data.photo_framing import FRAMINGS
from pocketvec.data.query_backgrounds import background
from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import reject_unknown_keys

PHONE_ASPECTS = (4 / 3, 16 / 9)  # long / short side of a phone photo: 3:4 and 9:16
PHONE_PORTRAIT_PROBABILITY = 0.7  # else held landscape


@dataclass(frozen=True)
class PhotoSimConfig:
    photo_long_side: int = 480
    fill: tuple[float, float] = (0.6, 0.95)  # item size as a fraction of the largest size that fits the photo
    rotation_deg: float = 12.0
    perspective: float = 0.10  # corner jitter as a fraction of the item's size
    gain: tuple[float, float] = (0.6, 1.25)
    contrast: tuple[float, float] = (0.7, 1.1)
    gamma: tuple[float, float] = (0.8, 1.25)
    illumination_ramp: float = 0.35  # brightness change from the photo's centre to its edges
    white_balance: float = 0.12  # max relative change of the red/blue gains
    shadow_probability: float = 0.5
    glare_probability: float = 0.5
    blur_sigma: tuple[float, float] = (0.0, 1.6)
    motion_probability: float = 0.25
    noise_sigma: tuple[float, float] = (1.0, 6.0)
    jpeg_quality: tuple[int, int] = (45, 90)
    framing: str = "item"  # item: 4:3 along the item's long side; phone: PHONE_ASPECTS, portrait or landscape

    def __post_init__(self) -> None:
        if self.framing not in FRAMINGS:
            raise ConfigError(f"framing must be one of {list(FRAMINGS)}. Got {self.framing!r}.")

    @classmethod
    def from_dict(cls, values: dict) -> PhotoSimConfig:
        reject_unknown_keys(cls, values)
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

    def to_dict(self) -> dict:
        return asdict(self)


def _place(item: np.ndarray, canvas: np.ndarray, rng: np.random.Generator, cfg: PhotoSimConfig) -> np.ndarray:
    """Warp the item onto the canvas under a random rotation + perspective; returns the composite."""
    height, width = canvas.shape[:2]
    h, w = item.shape[:2]
    scale = rng.uniform(*cfg.fill) * min(width / w, height / h)  # a fraction of "fits the frame"
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], np.float64) / 2 * scale
    corners += rng.uniform(-cfg.perspective, cfg.perspective, (4, 2)) * np.array([w, h]) * scale
    angle = np.deg2rad(rng.uniform(-cfg.rotation_deg, cfg.rotation_deg))
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    corners = corners @ rotation.T
    span = corners.max(0) - corners.min(0)
    slack = np.maximum(np.array([width, height]) - span, 0) / 2
    centre = np.array([width, height]) / 2 + rng.uniform(-1, 1, 2) * slack * 0.8
    target = (corners + centre).astype(np.float32)
    source = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    matrix = cv2.getPerspectiveTransform(source, target)
    warped = cv2.warpPerspective(item, matrix, (width, height), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.ones((h, w), np.float32), matrix, (width, height), flags=cv2.INTER_LINEAR)
    return warped * mask[..., None] + canvas.astype(np.float32) * (1 - mask[..., None])


def _lighting(photo: np.ndarray, rng: np.random.Generator, cfg: PhotoSimConfig) -> np.ndarray:
    height, width = photo.shape[:2]
    x = (np.arange(width, dtype=np.float32) / width - 0.5)[None, :]
    y = (np.arange(height, dtype=np.float32) / height - 0.5)[:, None]
    ramp_x, ramp_y = rng.uniform(-cfg.illumination_ramp, cfg.illumination_ramp, 2)
    illumination = rng.uniform(*cfg.gain) * (1 + ramp_x * x + ramp_y * y)
    balance = np.array([1 + rng.uniform(-cfg.white_balance, cfg.white_balance), 1.0,
                        1 + rng.uniform(-cfg.white_balance, cfg.white_balance)], np.float32)
    mean = photo.mean()
    photo = (photo - mean) * rng.uniform(*cfg.contrast) + mean
    photo = np.clip(photo * illumination[..., None] * balance, 0, 255)
    return 255.0 * (photo / 255.0) ** rng.uniform(*cfg.gamma)


def _shadow(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A soft-edged dark region bounded by a random line (a hand or a phone in the light)."""
    height, width = photo.shape[:2]
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    offset = rng.uniform(0.2, 0.8) * np.array([width, height])
    distance = (xx - offset[0]) * np.cos(angle) + (yy - offset[1]) * np.sin(angle)
    softness = rng.uniform(0.02, 0.15) * max(width, height)
    inside = 1 / (1 + np.exp(-distance / softness))
    return photo * (1 - rng.uniform(0.25, 0.6) * inside)[..., None]


def _glare(photo: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An additive specular highlight: an elongated Gaussian blob of near-white light."""
    height, width = photo.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.15, 0.85) * width, rng.uniform(0.15, 0.85) * height
    sx, sy = rng.uniform(0.03, 0.18, 2) * max(width, height)
    blob = np.exp(-(((xx - cx) / sx) ** 2 + ((yy - cy) / sy) ** 2) / 2)
    return photo + rng.uniform(120, 255) * blob[..., None]


def _blur(photo: np.ndarray, rng: np.random.Generator, cfg: PhotoSimConfig) -> np.ndarray:
    if rng.random() < cfg.motion_probability:
        length = int(rng.integers(3, 10))
        kernel = np.zeros((length, length), np.float32)
        kernel[length // 2, :] = 1 / length
        rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rotation, (length, length))
        return cv2.filter2D(photo, -1, kernel / max(kernel.sum(), 1e-6))
    sigma = rng.uniform(*cfg.blur_sigma)
    return cv2.GaussianBlur(photo, (0, 0), sigma) if sigma > 0.3 else photo


def _photo_size(height: int, width: int, rng: np.random.Generator, cfg: PhotoSimConfig) -> tuple[int, int]:
    """The photo's (width, height) under the config's framing."""
    long = cfg.photo_long_side
    if cfg.framing == "item":
        short = round(long * 3 / 4)
        return (long, short) if width >= height else (short, long)
    short = round(long / PHONE_ASPECTS[int(rng.integers(len(PHONE_ASPECTS)))])
    return (short, long) if rng.random() < PHONE_PORTRAIT_PROBABILITY else (long, short)


def simulate_photo(item: np.ndarray, rng: np.random.Generator, wallpapers: list[Path],
                   cfg: PhotoSimConfig = PhotoSimConfig()) -> bytes:
    """One synthetic phone photo (JPEG bytes) of `item` (RGB uint8)."""
    photo = _place(item, background(_photo_size(*item.shape[:2], rng, cfg), rng, wallpapers), rng, cfg)
    photo = _lighting(photo, rng, cfg)
    if rng.random() < cfg.shadow_probability:
        photo = _shadow(photo, rng)
    if rng.random() < cfg.glare_probability:
        photo = _glare(photo, rng)
    photo = _blur(np.clip(photo, 0, 255).astype(np.float32), rng, cfg)
    noise_sigma = rng.uniform(*cfg.noise_sigma)
    photo = photo + rng.normal(0, 1, photo.shape).astype(np.float32) * noise_sigma * np.sqrt(photo / 128 + 0.1)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(photo + 0.5, 0, 255).astype(np.uint8)).save(
        buffer, format="JPEG", quality=int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return buffer.getvalue()


def query_rng(seed: int, item: str | int, photo_index: int) -> np.random.Generator:
    """The generator of photo `photo_index` of `item` (a label or an index): independent of order and counts."""
    if isinstance(item, str):
        item = int.from_bytes(hashlib.sha256(item.encode()).digest()[:8], "big")
    return np.random.default_rng([seed, item, photo_index])
