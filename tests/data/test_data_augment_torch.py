"""The device photo simulation (torch, run here on the CPU) against the CPU path (albumentations/OpenCV):
the same kind of photos, not the same pixels. Over a few hundred seeded photos of the demo items, the
two paths' distributions of brightness, contrast, sharpness (log Laplacian variance), colourfulness
(Hasler–Süsstrunk) and visible item coverage differ by less than a small effect size (Cohen's d < 0.25)
with spreads within 0.8–1.25× of each other; and the torch path is deterministic per seed."""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import pytest
import torch

from pocketvec.data.assets import demo_items_dir
from pocketvec.data.augment import AugmentConfig, PhoneAugment
from pocketvec.data.augment_torch import TorchPhotoSim, stack_scenes
from pocketvec.runtime.images import load_image

SIZE, PHOTOS = 64, 240
MAX_EFFECT_SIZE, SPREAD_RATIO = 0.25, (0.8, 1.25)


@pytest.fixture(scope="module")
def items() -> list[np.ndarray]:
    return [load_image(path, max_side=2 * SIZE) for path in sorted(demo_items_dir().glob("*.png"))]


@pytest.fixture(scope="module")
def augment() -> PhoneAugment:
    return PhoneAugment(AugmentConfig(), SIZE)


def _cpu(augment: PhoneAugment, item_of: Callable[[int], np.ndarray], seed: int = 1) -> np.ndarray:
    return np.stack([augment(item_of(i), np.random.default_rng([seed, i])) for i in range(PHOTOS)])


def _torch(augment: PhoneAugment, item_of: Callable[[int], np.ndarray], seed: int = 1) -> np.ndarray:
    scenes = [augment.scene(item_of(i), np.random.default_rng([seed, i])) for i in range(PHOTOS)]
    photos = TorchPhotoSim(SIZE)(stack_scenes(scenes), "cpu")
    return photos.permute(0, 2, 3, 1).numpy().astype(np.uint8)


def _statistics(photos: np.ndarray) -> dict[str, np.ndarray]:
    f = photos.astype(np.float32)
    grey = 0.299 * f[..., 0] + 0.587 * f[..., 1] + 0.114 * f[..., 2]
    rg, yb = f[..., 0] - f[..., 1], 0.5 * (f[..., 0] + f[..., 1]) - f[..., 2]
    return {"brightness": grey.mean((1, 2)), "contrast": grey.std((1, 2)),
            "sharpness": np.array([np.log10(cv2.Laplacian(g, cv2.CV_32F).var() + 1.0) for g in grey]),
            "colourfulness": np.hypot(rg.std((1, 2)), yb.std((1, 2))) + 0.3 * np.hypot(rg.mean((1, 2)),
                                                                                      yb.mean((1, 2)))}


def _coverage(render: Callable, augment: PhoneAugment, items: list[np.ndarray]) -> np.ndarray:
    """Fraction of each frame where the item shows: a white and a black item on the same seeds differ
    there (after light, occluder, blur, noise and JPEG), and only there."""
    white = render(augment, lambda i: np.full_like(items[i % len(items)], 255))
    black = render(augment, lambda i: np.zeros_like(items[i % len(items)]))
    return (np.abs(white.astype(np.int16) - black).max(-1) > 30).mean((1, 2))


def test_both_paths_make_photos_of_the_same_statistics(items: list[np.ndarray], augment: PhoneAugment) -> None:
    torch.set_num_threads(1)
    item_of = lambda i: items[i % len(items)]  # noqa: E731
    cpu, dev = _statistics(_cpu(augment, item_of)), _statistics(_torch(augment, item_of))
    cpu["coverage"], dev["coverage"] = _coverage(_cpu, augment, items), _coverage(_torch, augment, items)
    report = {}
    for name in cpu:
        pooled = np.sqrt((cpu[name].var() + dev[name].var()) / 2)
        effect = abs(cpu[name].mean() - dev[name].mean()) / pooled
        ratio = dev[name].std() / cpu[name].std()
        report[name] = (round(float(cpu[name].mean()), 3), round(float(dev[name].mean()), 3), round(float(effect), 3),
                        round(float(ratio), 3))
    print("statistic: (cpu mean, device mean, Cohen's d, spread ratio)", report)  # docs/TRAINING.md
    assert 0.3 < cpu["coverage"].mean() < 0.9, report  # the measure sees the item
    for name, (_, _, effect, ratio) in report.items():
        assert effect < MAX_EFFECT_SIZE, (name, report)
        assert SPREAD_RATIO[0] < ratio < SPREAD_RATIO[1], (name, report)


def test_torch_path_is_deterministic_per_seed(items: list[np.ndarray], augment: PhoneAugment) -> None:
    def photos(seed: int) -> torch.Tensor:
        scenes = [augment.scene(items[i], np.random.default_rng([seed, i])) for i in range(4)]
        return TorchPhotoSim(SIZE)(stack_scenes(scenes), "cpu")

    first, again, other = photos(3), photos(3), photos(4)
    assert first.shape == (4, 3, SIZE, SIZE) and first.dtype == torch.float32
    assert torch.equal(first, again)
    assert (first - other).abs().mean() > 10


def test_every_device_effect_changes_pixels(items: list[np.ndarray]) -> None:
    """With each effect forced on (and the rest off) the photo differs from the effect-free photo."""
    from pocketvec.data.augment_scene_params import INDEX

    off = {f"p_{n}": 0.0 for n in ("shadow", "glare", "color_temperature", "exposure", "blur", "low_resolution",
                                   "vignette", "noise", "erase", "jpeg")}
    augment = PhoneAugment(AugmentConfig(**off), SIZE)
    scene = augment.scene(items[0], np.random.default_rng(0))
    plain = TorchPhotoSim(SIZE)(stack_scenes([scene]))
    forced = {"finger": {"finger_along": 0.5, "finger_width": 0.2, "finger_length": 0.3, "finger_sigma": 0.01,
                         "skin_r": 200, "skin_g": 140, "skin_b": 110},
              "shadow": {"shadow_dark": 0.5, "shadow_soft": 0.05, "shadow_px": 0.5, "shadow_py": 0.5},
              "vignette": {"vignette_cx": 0.5, "vignette_cy": 0.5, "vignette_amount": 0.4},
              "glare": {"glare_cx": 0.5, "glare_cy": 0.5, "glare_sx": 0.1, "glare_sy": 0.1, "glare_amount": 0.8},
              "temperature": {"kelvin": 3500}, "exposure": {"gamma": 1.3, "contrast": 0.8, "brightness": 0.1},
              "blur": {"blur_kind": 0, "blur_size": 3}, "low_res": {"low_res_factor": 0.4},
              "noise": {"noise_read": 4, "noise_shot": 0.5, "noise_chroma": 0.3}, "jpeg": {"jpeg_quality": 20}}
    for effect, values in forced.items():
        scene.params[:] = 0
        for name, value in {effect: 1, **values}.items():
            scene.params[INDEX[name]] = value
        changed = (TorchPhotoSim(SIZE)(stack_scenes([scene])) - plain).abs().mean()
        assert changed > 0.5, effect


def test_a_clean_view_passes_through_unchanged(items: list[np.ndarray]) -> None:
    from pocketvec.data.augment_scene_params import clean_scene
    from pocketvec.runtime.preprocess import PreprocessSpec, preprocess

    clean = preprocess(items[0], PreprocessSpec(input_size=SIZE))
    photo = TorchPhotoSim(SIZE)(stack_scenes([clean_scene(clean)]))[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(photo.astype(np.uint8), clean)
