"""The validated settings of the phone-photo simulation (see pocketvec.runtime.phone_sim.photo)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import reject_unknown_keys


@dataclass(frozen=True)
class AugmentConfig:
    """How strongly and how often each effect of a simulated phone photo happens.

    `strength` scales every magnitude (angles, tilt, blur radius, noise, darkness of shadows, ...):
    0 gives an upright clean item on a background, 1 is the default, 2 is harsh. The `p_*` fields
    are per-sample probabilities of each effect and are not scaled.
    """

    strength: float = 1.0
    # Fraction of the frame's area covered by the item's (upright, unrotated) rectangle.
    fill: tuple[float, float] = (0.4, 0.9)
    max_rotation: float = 25.0  # degrees, in-plane, at strength 1
    max_tilt: float = 35.0  # degrees the camera looks off the item's normal (perspective), at strength 1
    max_cutoff: float = 0.08  # fraction of the item's size that may fall outside the frame
    # a phone frame (3:4 or 9:16, portrait or landscape) squashed to the square input, as the `scale_fill`
    # query crop squashes a phone photo: the item's picture stretched along one axis, its area kept
    p_phone_frame: float = 0.0
    jpeg_quality: tuple[int, int] = (40, 92)
    p_background: float = 1.0  # otherwise the frame is a plain tabletop colour
    p_shadow: float = 0.4
    p_glare: float = 0.3
    p_color_temperature: float = 0.7
    p_exposure: float = 0.9  # brightness, contrast, gamma
    p_blur: float = 0.5  # one of defocus, motion, gaussian
    p_low_resolution: float = 0.3
    p_vignette: float = 0.4
    p_noise: float = 0.8
    p_erase: float = 0.15
    p_jpeg: float = 0.9

    def __post_init__(self) -> None:
        _check_range("strength", self.strength, 0.0, 3.0)
        _check_pair("fill", self.fill, 0.05, 1.0)
        _check_range("max_rotation", self.max_rotation, 0.0, 180.0)
        _check_range("max_tilt", self.max_tilt, 0.0, 70.0)
        _check_range("max_cutoff", self.max_cutoff, 0.0, 0.5)
        _check_pair("jpeg_quality", self.jpeg_quality, 5, 100)
        for f in fields(self):
            if f.name.startswith("p_"):
                _check_range(f.name, getattr(self, f.name), 0.0, 1.0)
        object.__setattr__(self, "fill", tuple(float(v) for v in self.fill))
        object.__setattr__(self, "jpeg_quality", tuple(int(v) for v in self.jpeg_quality))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AugmentConfig:
        reject_unknown_keys(cls, data)
        return cls(**data)


def _check_range(name: str, value: Any, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise ConfigError(f"{name} must be a number in [{low}, {high}]. Got {value!r}.")


def _check_pair(name: str, value: Any, low: float, high: float) -> None:
    ok = isinstance(value, tuple | list) and len(value) == 2
    if ok:
        try:
            for v in value:
                _check_range(name, v, low, high)
        except ConfigError:
            ok = False
    if not ok or value[0] > value[1]:
        raise ConfigError(f"{name} must be a pair (low, high) with {low} <= low <= high <= {high}. Got {value!r}.")
