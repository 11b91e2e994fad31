"""Phone-photo simulation: an item image becomes a plausible phone photo of it.

The pipeline follows a camera: scene (background photo, the item in 3D on it with a contact
shadow, an occluder) -> light (cast shadow, vignette, specular glare) -> white balance (colour
temperature) -> exposure (brightness, contrast, gamma) -> optics (defocus, motion or gaussian blur,
low resolution) -> sensor noise -> JPEG. Every random choice comes from the generator passed to
each call, so the same seed gives identical pixels.

It sits in the runtime (numpy, OpenCV and three albumentations transforms) because the gallery views
(pocketvec.runtime.gallery.views) photograph items with it; training uses it through pocketvec.data.augment,
whose PhoneAugment defaults to the cached wallpaper set. albumentations is imported when a PhoneAugment is
made: it needs no torch, but where torch is installed its package imports it (the base install has none).

    augment = PhoneAugment(AugmentConfig(), output_size=224)
    photo = augment(item_rgb_uint8, np.random.default_rng(seed))
"""

from __future__ import annotations

import functools
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np

from pocketvec.asset_dirs import backgrounds_dir
from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import is_image_path, load_image
from pocketvec.runtime.phone_sim import effects as fx
from pocketvec.runtime.phone_sim.config import AugmentConfig
from pocketvec.runtime.phone_sim.scene import background_frame, composite_item, item_quad, plain_frame
from pocketvec.runtime.phone_sim.scene_params import Scene, draw_params, inverse_homography, item_canvas

__all__ = ["AugmentConfig", "PhoneAugment", "load_backgrounds"]

if TYPE_CHECKING:
    import albumentations as A


def load_backgrounds(folder: str | Path | None = None, max_side: int = 768, limit: int = 64) -> list[np.ndarray]:
    """Decode up to `limit` background photos from `folder` (sorted; default: the embedded photos), each at
    most `max_side` px."""
    folder = Path(folder) if folder is not None else backgrounds_dir()
    return list(_decoded_backgrounds(folder.resolve(), max_side, limit))


@functools.lru_cache(maxsize=4)
def _decoded_backgrounds(folder: Path, max_side: int, limit: int) -> tuple[np.ndarray, ...]:
    """Decoded once per process: several augmenters (train, bench, preview) share them."""
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))[:limit]
    if not paths:
        raise DatasetError(f"{folder}: no background images found")
    decoded = tuple(load_image(p, max_side=max_side) for p in paths)
    for image in decoded:
        image.setflags(write=False)
    return decoded


class PhoneAugment:
    """Callable `(item uint8 (H,W,3), rng) -> phone photo uint8 (S,S,3)`; picklable for data loaders."""

    def __init__(
        self,
        config: AugmentConfig | None = None,
        output_size: int = 224,
        backgrounds: Sequence[np.ndarray] | str | Path | None = None,
    ) -> None:
        if not isinstance(output_size, int) or not 32 <= output_size <= 1024:
            raise ConfigError(f"output_size must be an int in [32, 1024]. Got {output_size!r}.")
        self.config = config or AugmentConfig()
        self.output_size = output_size
        if backgrounds is None:
            backgrounds = self.default_backgrounds()
        if isinstance(backgrounds, str | Path):
            backgrounds = load_backgrounds(backgrounds, max_side=2 * output_size)
        self.backgrounds = [_fit(np.ascontiguousarray(b, dtype=np.uint8), 2 * output_size) for b in backgrounds]
        if self.config.p_background > 0 and not self.backgrounds:
            raise ConfigError("p_background > 0 needs at least one background image. Got none.")
        self._noise = fx.NoiseBank(output_size)
        s = self.config.strength
        # Phones auto-white-balance: the residual cast is moderate (kelvin around albumentations' neutral 6000 K).
        import albumentations as A

        spread = max(100, int(1500 * min(s, 2.0)))
        self._temperature = A.PlanckianJitter(
            mode="blackbody", temperature_limit=(max(3000, 6000 - spread), 6000 + spread), p=1.0
        )
        self._defocus = A.Defocus(radius=(1, max(1, round(1 + 2.5 * s))), alias_blur=(0.1, 0.4), p=1.0)
        self._motion = A.MotionBlur(blur_limit=(3, max(3, 2 * round(1 + 3 * s) + 1)), p=1.0)

    @staticmethod
    def default_backgrounds() -> Path:
        """Where the backgrounds come from when none are given: the embedded photos."""
        return backgrounds_dir()

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        _check_item(image)
        cfg, size, s = self.config, self.output_size, self.config.strength
        frame = self._frame(rng)
        quad = item_quad(image.shape[:2], size, cfg, rng)
        frame = composite_item(frame, image, quad, rng, shadow=cfg.p_background > 0 and rng.random() < 0.7)
        if rng.random() < cfg.p_erase:
            frame = fx.erase(frame, rng, s)
        frame = self._light(frame, rng)
        if rng.random() < cfg.p_color_temperature:
            frame = self._albumentation(self._temperature, frame, rng)
        if rng.random() < cfg.p_exposure:
            frame = fx.exposure(frame, rng, s)
        if rng.random() < cfg.p_blur:
            kind = rng.integers(0, 3)
            if kind == 0:
                frame = self._albumentation(self._defocus, frame, rng)
            elif kind == 1:
                frame = self._albumentation(self._motion, frame, rng)
            else:
                frame = fx.gaussian_blur(frame, rng, s)
        if rng.random() < cfg.p_low_resolution:
            frame = fx.low_resolution(frame, rng, s)
        if rng.random() < cfg.p_noise:
            frame = fx.sensor_noise(frame, rng, s, self._noise)
        if rng.random() < cfg.p_jpeg:
            frame = fx.jpeg(frame, rng, cfg.jpeg_quality)
        return np.ascontiguousarray(frame, dtype=np.uint8)

    def scene(self, image: np.ndarray, rng: np.random.Generator) -> Scene:
        """The CPU half of the device path (pocketvec.data.augment_torch): background, item canvas,
        homography and effect parameters of one sample; the pixel effects run later, batched."""
        _check_item(image)
        frame = self._frame(rng)
        quad = item_quad(image.shape[:2], self.output_size, self.config, rng)
        canvas, item_hw = item_canvas(image, quad, self.output_size)
        params = draw_params(self.config, rng, shadow_allowed=self.config.p_background > 0)
        return Scene(frame, canvas, item_hw, inverse_homography(item_hw, quad), params, int(rng.integers(0, 2**31)))

    def _frame(self, rng: np.random.Generator) -> np.ndarray:
        if self.backgrounds and rng.random() < self.config.p_background:
            background = self.backgrounds[int(rng.integers(0, len(self.backgrounds)))]
            return background_frame(background, self.output_size, rng)
        return plain_frame(self.output_size, rng)

    def _light(self, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        cfg, size, s = self.config, self.output_size, self.config.strength
        gain = None
        if rng.random() < cfg.p_shadow:
            gain = fx.shadow_map(size, rng, s)
        if rng.random() < cfg.p_vignette:
            vignette = fx.vignette_map(size, rng, s)
            gain = vignette if gain is None else gain * vignette
        glare = fx.glare_map(size, rng, s) if rng.random() < cfg.p_glare else None
        if gain is None and glare is None:
            return frame
        return fx.apply_light(frame, gain, glare)

    @staticmethod
    def _albumentation(transform: A.BasicTransform, frame: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Run an albumentations transform with randomness drawn from this sample's generator."""
        transform.set_random_state(rng, random.Random(int(rng.integers(0, 2**63))))
        return transform(image=frame)["image"]


def _check_item(image: np.ndarray) -> None:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ConfigError(f"PhoneAugment needs an RGB uint8 (H, W, 3) image. Got {image.dtype} {image.shape}.")


def _fit(image: np.ndarray, max_side: int) -> np.ndarray:
    """Shrink so the longer side is at most `max_side` (what background_frame expects)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise ConfigError(f"background images must be RGB (H, W, 3). Got shape {image.shape}.")
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    return cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
