"""preprocess.py (PIL's algorithm in float64 numpy) against Pillow itself, on real images.

What is compared, and why not bit for bit:
- One resampling pass (only the width or only the height changes) is Pillow's own computation
  except for rounding: Pillow sums in 22-bit fixed point, preprocess.py in float64. They differ
  by one level exactly where the true value is a rounding tie (x.5), e.g. 181.5 -> Pillow 181,
  float64 182: about 0.6 % of pixels for bilinear on flat documents, 0.05 % for bicubic.
- Two passes: Pillow <= 12 always resamples horizontally first; Pillow 13 (PR #9549) sometimes
  does the vertical pass first, which changes results by several levels. The spec keeps the
  fixed order (horizontal, round, vertical, round), so the reference is Pillow's horizontal call
  followed by its vertical call; a one-level tie in the first pass can become two after the second.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from pocketvec.errors import ConfigError
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, resize

PIL_FILTERS = {"bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC, "box": Image.BOX}


def pil_resize(image: np.ndarray, width: int, height: int, resample: str) -> np.ndarray:
    """Pillow's classic order: horizontal pass, then vertical pass."""
    out = Image.fromarray(image)
    if out.width != width:
        out = out.resize((width, out.height), PIL_FILTERS[resample])
    if out.height != height:
        out = out.resize((width, height), PIL_FILTERS[resample])
    return np.asarray(out)


def pil_preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The three crop modes written with Pillow's resize, as Vision's centerCrop/scaleFit/scaleFill."""
    size, (h, w) = spec.input_size, image.shape[:2]
    if spec.crop_mode == "scale_fill":
        return pil_resize(image, size, size, spec.resample)
    if spec.crop_mode == "center_crop":
        r = size / min(h, w)
        nw, nh = max(size, int(np.floor(w * r + 0.5))), max(size, int(np.floor(h * r + 0.5)))
        scaled = pil_resize(image, nw, nh, spec.resample)
        top, left = (nh - size) // 2, (nw - size) // 2
        return scaled[top : top + size, left : left + size]
    r = size / max(h, w)
    nw, nh = max(1, min(size, int(np.floor(w * r + 0.5)))), max(1, min(size, int(np.floor(h * r + 0.5))))
    canvas = np.zeros((size, size, 3), np.uint8)
    top, left = (size - nh) // 2, (size - nw) // 2
    canvas[top : top + nh, left : left + nw] = pil_resize(image, nw, nh, spec.resample)
    return canvas


def level_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a.astype(int) - b.astype(int))


@pytest.fixture(scope="module")
def real_images(item_paths, photo_paths) -> list[np.ndarray]:
    images = [load_image(p) for p in [item_paths[0], item_paths[13], *photo_paths[:2]]]
    photo = images[-1]  # odd shapes cut from a real photo: tall, wide, tiny, prime-sized
    images += [photo[:301, :97], photo[:61, :257], photo[:7, :5], photo[:127, :131]]
    return images


@pytest.mark.parametrize("resample", ["bilinear", "bicubic", "box"])
@pytest.mark.parametrize("crop_mode", ["center_crop", "scale_fit", "scale_fill"])
@pytest.mark.parametrize("size", [96, 113, 224])
def test_preprocess_matches_pillow(real_images, crop_mode, resample, size) -> None:
    spec = PreprocessSpec(input_size=size, crop_mode=crop_mode, resample=resample)
    same = total = 0
    for image in real_images:
        ours, theirs = preprocess(image, spec), pil_preprocess(image, spec)
        assert ours.shape == theirs.shape == (size, size, 3)
        diff = level_diff(ours, theirs)
        assert diff.max() <= 2, f"{crop_mode}/{resample}/{size}: {diff.max()} levels apart"
        same, total = same + int((diff == 0).sum()), total + diff.size
    assert same / total > 0.98, f"only {same / total:.4f} of pixels identical to Pillow"


@pytest.mark.parametrize("resample", ["bilinear", "bicubic", "box"])
def test_one_pass_differs_only_on_rounding_ties(real_images, resample) -> None:
    for image in real_images[:4]:
        h, w = image.shape[:2]
        for out_w, out_h in ((97, h), (w * 2 + 1, h), (w, 89), (w, 333)):  # shrink and enlarge, each axis
            diff = level_diff(resize(image, out_w, out_h, resample), pil_resize(image, out_w, out_h, resample))
            assert diff.max() <= 1, f"{resample} {w}x{h}->{out_w}x{out_h}: {diff.max()} levels"
            assert (diff == 0).mean() > 0.9


def test_box_filter_is_pillows_half_open_interval(real_images) -> None:
    """Integer upscaling puts taps exactly at +-0.5: Pillow's box keeps one side only."""
    tiny = real_images[6]
    assert level_diff(resize(tiny, 35, 5, "box"), pil_resize(tiny, 35, 5, "box")).max() == 0


def test_spec_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="Got 'lanczos'"):
        PreprocessSpec(resample="lanczos")
    with pytest.raises(ConfigError, match="crop_mode"):
        PreprocessSpec(crop_mode="fit")
