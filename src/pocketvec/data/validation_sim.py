"""The validation photo simulator: phone photos (3:4, 9:16; half turned to the item's orientation, the others
portrait or landscape as the phone comes) that *choose* settings. Its own code, apart from the training
augmentation (trains) and the benchmark's simulator (reports); torch-free; procedural backgrounds, no files.
Photo k of an item depends only on (seed, item, k)."""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from pocketvec.checks import check_number
from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import reject_unknown_keys

__all__ = ["VALIDATION_SEED", "ValidationSimConfig", "decode_jpeg", "validation_jpeg", "validation_jpegs",
           "validation_photo", "validation_photos", "validation_rng"]

VALIDATION_SEED = 7_000_003  # apart from the benchmark's test (0) and dev (1) photo seeds
_STREAM = 0x76616C  # "val": the same seed as another simulator's still gives other photos
_RANGES = {"fill": (0.01, 1), "exposure": (0.2, 5), "contrast": (0.2, 5), "gamma": (0.2, 5), "jpeg_quality": (5, 100)}
_MAXIMA = {"perspective": 0.3, "max_rotation": 45, "max_blur": 0.05, "colour_cast": 0.5, "vignette": 0.9, "noise": 0.2}


def _numbers(name: str, value: Any, low: float, high: float, integer: bool = False) -> tuple[Any, ...]:
    if not isinstance(value, (list, tuple)) or not value:
        raise ConfigError(f"{name} must be a non-empty list of numbers. Got {value!r}.")
    for v in value:
        check_number(f"{name} entries", v, low, high, integer)
    return tuple(int(v) if integer else float(v) for v in value)


@dataclass(frozen=True)
class ValidationSimConfig:
    """What the photos vary in; every range is drawn uniformly, every probability per photo."""

    photo_long_side: int = 640
    aspects: tuple[float, ...] = (4 / 3, 16 / 9)  # long/short: 3:4 and 9:16 phone photos
    turn_to_item_probability: float = 0.5  # the phone turned so its long side lies along the item's
    landscape_probability: float = 0.3  # else held as it comes: landscape, else portrait
    fill: tuple[float, float] = (0.40, 0.95)  # item's size as a fraction of the largest that fits the frame
    perspective: float = 0.18  # corner jitter, up to this fraction of the item's sides
    max_rotation: float = 20.0  # degrees
    motion_blur_probability: float = 0.3  # a line kernel of random length and angle
    defocus_probability: float = 0.25
    max_blur: float = 0.014  # longest blur, fraction of the long side (9 px at 640)
    colour_cast: float = 0.12  # strongest warm, cool or green tint
    exposure: tuple[float, float] = (0.7, 1.25)
    contrast: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.8, 1.25)
    vignette: float = 0.35  # corners' darkening, at most
    shadow_probability: float = 0.25  # a hand's or phone's soft shadow across part of the frame
    glare_probability: float = 0.3
    moire_probability: float = 0.15  # photographing a screen
    noise: float = 0.025  # sensor noise at full brightness, fraction of 255
    jpeg_quality: tuple[int, int] = (50, 92)

    def __post_init__(self) -> None:
        check_number("photo_long_side", self.photo_long_side, 64, 4096, integer=True)
        object.__setattr__(self, "aspects", _numbers("aspects", self.aspects, 1.0, 3.0))
        for name, (low, high) in _RANGES.items():
            pair = _numbers(name, getattr(self, name), low, high, integer=name == "jpeg_quality")
            if len(pair) != 2 or pair[0] > pair[1]:
                raise ConfigError(f"{name} must be [low, high] with low <= high. Got {getattr(self, name)!r}.")
            object.__setattr__(self, name, pair)
        for name in (*_MAXIMA, *(n for n in self.__dataclass_fields__ if n.endswith("probability"))):
            check_number(name, getattr(self, name), 0, _MAXIMA.get(name, 1))
        if self.motion_blur_probability + self.defocus_probability > 1:
            raise ConfigError("motion_blur_probability + defocus_probability must be at most 1.")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationSimConfig:
        reject_unknown_keys(cls, data)
        return cls(**data)


def validation_rng(seed: int, item: str | int, photo_index: int) -> np.random.Generator:
    """The generator of photo `photo_index` of `item` (a label or an index): independent of order and counts."""
    key = int.from_bytes(hashlib.sha256(item.encode("utf-8")).digest()[:8], "big") if isinstance(item, str) else item
    return np.random.default_rng([_STREAM, seed, key, photo_index])


def _smooth(rng: np.random.Generator, h: int, w: int, ch: int, cw: int) -> np.ndarray:  # (ch, cw) normals, upsampled
    return cv2.resize(rng.standard_normal((ch, cw), np.float32), (w, h), interpolation=cv2.INTER_CUBIC)


def _background(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A desk, table or cloth (wood grain, fabric weave, flat surface with a gradient), then some clutter."""
    yy, xx = np.ogrid[:h, :w]
    kind = rng.integers(3)
    if kind == 0:  # wood: fine streaks along the grain, wavy rings; grain horizontal or vertical
        gh, gw = (w, h) if (flip := rng.random() < 0.5) else (h, w)
        y = np.arange(gh, dtype=np.float32)[:, None] / rng.uniform(15, 50)
        rings = np.sin(y + 2.5 * _smooth(rng, gh, gw, 4, 4))
        field = 0.08 * _smooth(rng, gh, gw, gh // 3, 5) + 0.07 * rings
        field, tone = field.T if flip else field, rng.uniform(100, 215)
        colour = [tone, tone * rng.uniform(0.62, 0.78), tone * rng.uniform(0.35, 0.55)]
    elif kind == 1:  # fabric: a fine weave and fibres
        f = np.float32(2 * math.pi / rng.uniform(2.5, 6))
        weave = np.sin(xx.astype(np.float32) * f) * np.sin(yy.astype(np.float32) * f)
        field = 0.06 * weave + 0.05 * _smooth(rng, h, w, h // 2, w // 2) + 0.06 * _smooth(rng, h, w, 5, 5)
        colour = rng.uniform(40, 190) + rng.uniform(-70, 70, 3) * rng.random()  # grey to a muted colour
    else:  # a painted or laminated surface, grey or coloured, with a light gradient
        a = rng.uniform(0, 2 * math.pi)
        field = rng.uniform(0, 0.25) / max(h, w) * (xx * math.cos(a) + yy * math.sin(a)).astype(np.float32)
        field = field + 0.015 * _smooth(rng, h, w, h // 4, w // 4)
        colour = rng.uniform(70, 235) + rng.uniform(-80, 80, 3) * rng.random()
    bg = cv2.merge([cv2.convertScaleAbs(np.ascontiguousarray(field), alpha=c, beta=c) for c in np.clip(colour, 0, 255)])
    for _ in range(rng.integers(0, 5)):  # clutter: other papers (with lines of text), objects, cups, coins
        c = (int(rng.uniform(0, w)), int(rng.uniform(0, h)))
        if rng.random() > 0.6:
            cv2.circle(bg, c, int(rng.uniform(0.03, 0.15) * w), rng.uniform(0, 255, 3).tolist(), -1, cv2.LINE_AA)
            continue
        box = cv2.boxPoints((c, (rng.uniform(0.15, 0.6) * w, rng.uniform(0.15, 0.6) * h), rng.uniform(0, 180)))
        paper = rng.random() < 0.6
        colour = [rng.uniform(215, 250)] * 3 if paper else rng.uniform(0, 255, 3).tolist()
        cv2.fillConvexPoly(bg, box.astype(np.int32), colour, cv2.LINE_AA)
        for t in np.linspace(0.15, 0.85, int(rng.integers(3, 9))) if paper else ():
            a, b = box[0] + t * (box[1] - box[0]), box[3] + t * (box[2] - box[3])
            cv2.line(bg, tuple((a + 0.1 * (b - a)).astype(int)), tuple((a + 0.8 * (b - a)).astype(int)), (90,) * 3)
    return bg


def _as_rgb(item: np.ndarray, cap: int) -> np.ndarray:
    """RGB uint8, shrunk (area filter) to at most `cap` pixels on its long side: idempotent."""
    if not (isinstance(item, np.ndarray) and item.dtype == np.uint8 and item.ndim == 3 and item.shape[2] in (3, 4)
            and min(item.shape[:2]) >= 2):
        raise ValueError(f"item must be an (H, W, 3) uint8 array. Got {getattr(item, 'shape', type(item))}.")
    if (scale := cap / max(item.shape[:2])) < 1:
        size = (max(2, round(item.shape[1] * scale)), max(2, round(item.shape[0] * scale)))
        item = cv2.resize(item[..., :3], size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(item[..., :3])


def validation_jpeg(item: np.ndarray, rng: np.random.Generator,
                    cfg: ValidationSimConfig = ValidationSimConfig()) -> bytes:
    """A phone photo of `item` (RGB uint8) as JPEG bytes: portrait or landscape, in phone aspect."""
    item, L = _as_rgb(item, round(cfg.photo_long_side * 1.25)), cfg.photo_long_side
    short = round(L / cfg.aspects[rng.integers(len(cfg.aspects))])
    ih, iw = item.shape[:2]
    turned = rng.random() < cfg.turn_to_item_probability
    W, H = (L, short) if (iw > ih if turned else rng.random() < cfg.landscape_probability) else (short, L)
    bg = _background(rng, H, W)
    # Geometry: jitter the corners, rotate, scale to a fraction of the largest fit, place in the frame.
    t = math.radians(rng.uniform(-cfg.max_rotation, cfg.max_rotation))
    quad = np.array([[-iw, -ih], [iw, -ih], [iw, ih], [-iw, ih]]) / 2
    quad = (quad + rng.uniform(0, cfg.perspective) * rng.uniform(-1, 1, (4, 2)) * [iw, ih]) @ np.array(
        [[math.cos(t), math.sin(t)], [-math.sin(t), math.cos(t)]])
    quad *= min(np.array([W, H]) / np.ptp(quad, 0)) * rng.uniform(*cfg.fill)
    quad += rng.uniform(-quad.min(0), [W, H] - quad.max(0))
    if (scale := math.sqrt(cv2.contourArea(quad.astype(np.float32)) / (iw * ih))) < 0.8:  # so the warp won't alias
        item = cv2.resize(item, (max(2, round(iw * scale)), max(2, round(ih * scale))), interpolation=cv2.INTER_AREA)
        ih, iw = item.shape[:2]
    src = np.array([[0, 0], [iw, 0], [iw, ih], [0, ih]], np.float32) - 0.5
    rgba = np.dstack([item, np.full((ih, iw), 255, np.uint8)])  # zero border: premultiplied, anti-aliased edge
    warped = cv2.warpPerspective(rgba, cv2.getPerspectiveTransform(src, quad.astype(np.float32)), (W, H))
    # Light fields at low resolution: the item's soft shadow, uneven light and vignette, a cast shadow, glare.
    alpha, small = warped[..., 3].astype(np.float32) / 255, (max(1, W // 8), max(1, H // 8))
    yy, xx = np.ogrid[-1 : 1 : small[1] * 1j, -1 : 1 : small[0] * 1j]
    drop = cv2.GaussianBlur(cv2.resize(alpha, small, interpolation=cv2.INTER_AREA), (0, 0), rng.uniform(0.5, 2))
    drop = np.roll(drop, tuple(rng.integers(-2, 3, 2)), (0, 1)) * rng.uniform(0.1, 0.35)
    a, b = rng.uniform(0, 2 * math.pi, 2)
    light = 1 + rng.uniform(0, 0.2) * (xx * math.cos(a) + yy * math.sin(a)) - rng.uniform(0, cfg.vignette) * (
        xx**2 + yy**2) / 2
    if rng.random() < cfg.shadow_probability:
        edge = (xx * math.cos(b) + yy * math.sin(b) - rng.uniform(-0.8, 0.8)) / rng.uniform(0.05, 0.4)
        light = light * (1 - rng.uniform(0.2, 0.5) * np.clip(edge, 0, 1))
    glare = np.zeros_like(light)
    if rng.random() < cfg.glare_probability:  # a specular highlight: towards white
        (gx, gy), (rx, ry) = rng.uniform(-0.7, 0.7, 2), rng.uniform(0.05, 0.35, 2)
        glare = rng.uniform(0.4, 0.95) * np.exp(-(((xx - gx) / rx) ** 2 + ((yy - gy) / ry) ** 2))
    drop, light, glare = cv2.split(cv2.resize(np.dstack([drop, light, glare]).astype(np.float32), (W, H)))
    gain = light * (1 - glare)
    if rng.random() < cfg.moire_probability:  # a screen: two fine gratings, slightly rotated, beat on the item
        yy, xx = np.ogrid[:H, :W]
        period, a, d = rng.uniform(2.2, 4.5), rng.uniform(0, math.pi), rng.uniform(0.02, 0.09)
        g1, g2 = (np.cos((xx * math.cos(r) + yy * math.sin(r)).astype(np.float32) * np.float32(2 * math.pi / period))
                  for r in (a, a + d))
        gain *= 1 - alpha * rng.uniform(0.15, 0.4) * (0.5 + 0.5 * g1 * g2)
    c = rng.uniform(0, cfg.colour_cast)  # a warm, cool or green cast of the whole photo
    tint = [(1 + c, 1, 1 - c), (1 - c, 1, 1 + c), (1 - c / 2, 1 + c / 2, 1 - c / 2)][rng.integers(3)]
    keep, glare = (1 - drop) * (1 - alpha), 255 * glare
    photo = cv2.merge([cv2.convertScaleAbs((bp * keep + ip) * (gain * np.float32(k)) + glare)  # per plane: fast
                       for bp, ip, k in zip(cv2.split(bg), cv2.split(warped), tint, strict=False)])
    # Optics: motion blur (a line kernel) or defocus.
    u, blur = rng.random(), rng.uniform(0.3, 1) * cfg.max_blur * L
    if u < cfg.motion_blur_probability and blur >= 2:
        k, a = int(blur) | 1, rng.uniform(0, math.pi)
        ends = np.round(k // 2 + np.outer([-1, 1], [math.cos(a), math.sin(a)]) * (k // 2)).astype(int)
        kernel = cv2.line(np.zeros((k, k), np.float32), tuple(ends[0]), tuple(ends[1]), 1, 1, cv2.LINE_AA)
        photo = cv2.filter2D(photo, -1, kernel / kernel.sum())
    elif u < cfg.motion_blur_probability + cfg.defocus_probability:
        photo = cv2.GaussianBlur(photo, (0, 0), blur / 4)
    # Sensor noise (shot noise grows with brightness; grain at half resolution), the tone curve, the JPEG.
    gray = cv2.resize(cv2.cvtColor(photo, cv2.COLOR_RGB2GRAY), (W // 2, H // 2), interpolation=cv2.INTER_AREA)
    sigma = 255 * (rng.uniform(0.002, 0.01) + rng.uniform(0, cfg.noise) * np.sqrt(gray.astype(np.float32) / 255))
    grain = rng.standard_normal((4, H // 2, W // 2), np.float32) * sigma
    photo = cv2.merge([cv2.add(p, cv2.resize(0.8 * grain[0] + 0.5 * g, (W, H)), dtype=cv2.CV_8U)
                       for p, g in zip(cv2.split(photo), grain[1:], strict=False)])
    x, e, k, g = np.arange(256) / 255, *(rng.uniform(*r) for r in (cfg.exposure, cfg.contrast, cfg.gamma))
    photo = cv2.LUT(photo, np.round(255 * np.clip((x * e - 0.5) * k + 0.5, 0, 1) ** g).astype(np.uint8))
    quality = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
    _, data = cv2.imencode(".jpg", cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    return data.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """A validation photo's JPEG bytes -> (H, W, 3) RGB uint8."""
    return cv2.cvtColor(cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def validation_photo(item: np.ndarray, rng: np.random.Generator,
                     cfg: ValidationSimConfig = ValidationSimConfig()) -> np.ndarray:
    """One validation photo of `item` (RGB uint8, any size), decoded: (H, W, 3) RGB uint8 in phone aspect."""
    return decode_jpeg(validation_jpeg(item, rng, cfg))


def validation_jpegs(item: np.ndarray, label: str, count: int, seed: int = VALIDATION_SEED,
                     cfg: ValidationSimConfig = ValidationSimConfig()) -> list[bytes]:
    """Photos 0..count-1 of `item` as JPEG files: photo k is the same whatever `count` is."""
    item = _as_rgb(item, round(cfg.photo_long_side * 1.25))  # once: validation_jpeg's own shrink is then a no-op
    return [validation_jpeg(item, validation_rng(seed, label, k), cfg) for k in range(count)]


def validation_photos(item: np.ndarray, label: str, count: int, seed: int = VALIDATION_SEED,
                      cfg: ValidationSimConfig = ValidationSimConfig()) -> list[np.ndarray]:
    """Photos 0..count-1 of `item`, decoded: photo k is the same whatever `count` is, and as validation_photo's."""
    return [decode_jpeg(data) for data in validation_jpegs(item, label, count, seed, cfg)]
