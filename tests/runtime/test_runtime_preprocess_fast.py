"""The fast resampler (float32 matrix products + exact recomputation near ties) gives exactly the
pixels of the spec as first written (float64, tap by tap), on real photos and on images built to
be hard: rounding ties everywhere (flat areas, box filters, exact 2x ratios), overshoot (bicubic
on hard edges), upscaling, tiny and prime sizes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pocketvec
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import CROP_MODES, RESAMPLE_FILTERS, PreprocessSpec, preprocess, resize
from pocketvec.runtime.resample import pass_plan, resample_axis

from .preprocess_reference import reference_preprocess, reference_resize


def hard_images(rng: np.random.Generator) -> list[np.ndarray]:
    noise = rng.integers(0, 256, (53, 71, 3), dtype=np.uint8)
    stripes = np.zeros((64, 96, 3), np.uint8)
    stripes[:, ::2] = 255  # ties for every even-width box or bilinear average, overshoot for bicubic
    levels = np.repeat(np.repeat(rng.integers(0, 256, (8, 12, 3), dtype=np.uint8), 8, 0), 8, 1)
    gradient = np.broadcast_to(np.arange(256, dtype=np.uint8)[None, :, None], (40, 256, 3)).copy()
    return [noise, stripes, levels, gradient, noise[:1, :1], noise[:7, :5], noise[:2, :40]]


@pytest.mark.parametrize("resample", sorted(RESAMPLE_FILTERS))
def test_resize_equals_reference_on_hard_images_and_sizes(resample: str) -> None:
    rng = np.random.default_rng(0)
    for image in hard_images(rng):
        h, w = image.shape[:2]
        sizes = {(w // 2 or 1, h // 2 or 1), (w * 2, h * 2), (w, h // 3 or 1), (13, 29), (1, 1)}
        sizes |= {(int(a), int(b)) for a, b in rng.integers(1, 130, (6, 2))}
        for width, height in sorted(sizes):
            expected = reference_resize(image, width, height, resample)
            got = resize(image, width, height, resample)
            assert got.shape == expected.shape
            assert np.array_equal(got, expected), f"{image.shape} -> {width}x{height} {resample}: " \
                f"{np.count_nonzero(got != expected)} values differ"


@pytest.mark.parametrize("crop_mode", CROP_MODES)
def test_preprocess_equals_reference_on_real_photos(crop_mode, item_paths, photo_paths) -> None:
    images = [load_image(p) for p in [item_paths[0], item_paths[13], *photo_paths[:3]]]
    rng = np.random.default_rng(1)
    images += [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), images[-1][:301, :97]]
    for image in images:
        for resample in RESAMPLE_FILTERS:
            for size in (96, 113, 224):
                spec = PreprocessSpec(input_size=size, crop_mode=crop_mode, resample=resample)
                assert np.array_equal(preprocess(image, spec), reference_preprocess(image, spec)), \
                    f"{image.shape} {spec}"


def test_values_near_a_tie_are_recomputed_the_spec_way() -> None:
    """Box 2:1 makes (a + b) / 2: every odd a + b is an exact tie, which the spec rounds up."""
    row = np.array([[0, 1, 2, 5, 7, 8, 254, 255]], np.uint8)
    plan = pass_plan(8, 4, "box", 0, 4)
    assert resample_axis(row, plan, 1).astype(int).tolist() == [[1, 4, 8, 255]]


def test_plans_are_cached_and_read_only() -> None:
    plan = pass_plan(640, 299, "bilinear", 37, 261)
    assert pass_plan(640, 299, "bilinear", 37, 261) is plan
    assert len(plan.index) == 224 and not plan.weights.flags.writeable


def test_resampling_products_run_on_one_blas_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenBLAS's thread pool made each small product 20-200x slower on a busy machine: the resize
    limits BLAS to one thread while it runs, and gives the caller its own setting back."""
    from threadpoolctl import threadpool_info

    import pocketvec.runtime.resample as resample_module

    def blas_threads() -> set[int]:  # of numpy's own BLAS (scipy, torch and others may load theirs)
        return {pool["num_threads"] for pool in threadpool_info()
                if pool["user_api"] == "blas" and "numpy" in pool["filepath"]}

    if not blas_threads():
        pytest.skip("numpy's BLAS is not a library of its own here")
    seen: list[set[int]] = []

    def recording_axis(*args, **kwargs):
        seen.append(blas_threads())
        return resample_axis(*args, **kwargs)

    monkeypatch.setattr(resample_module, "resample_axis", recording_axis)
    before = blas_threads()
    image = np.random.default_rng(0).integers(0, 256, (640, 480, 3), dtype=np.uint8)
    preprocess(image, PreprocessSpec(input_size=224, crop_mode="scale_fit"))
    assert seen and all(threads == {1} for threads in seen)
    assert blas_threads() == before
    # threads that resize at the same time: the last one out restores the setting
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda size: preprocess(image, PreprocessSpec(input_size=size, crop_mode="scale_fit")),
                      range(100, 164)))
    assert blas_threads() == before


def shipped_spec() -> PreprocessSpec:
    config = json.loads((Path(pocketvec.__file__).parent / "assets/base/config.json").read_text())
    return PreprocessSpec.from_dict(config["encoder"]["preprocess"])


def test_the_shipped_query_crop_equals_reference_on_photos_of_odd_sizes_and_modes(tmp_path, photo_paths) -> None:
    """The query crop the base ships (`scale_fill`, 224 px) and its items' crop, on real photos saved at odd
    sizes (prime, 2:1, 20:7 and 15:7 ratios whose weights make exact ties) in other modes than RGB, decoded
    the runtime's way."""
    spec = shipped_spec()
    assert spec.query_crops == ("scale_fill",)
    sizes = [(640, 480), (480, 640), (641, 479), (333, 517), (448, 224), (97, 1201), (225, 223)]
    modes = ["RGB", "L", "RGBA", "P", "CMYK"]
    checked = 0
    for n, (path, (width, height)) in enumerate(zip(photo_paths * 2, sizes, strict=False)):
        mode = modes[n % len(modes)]
        with Image.open(path) as photo:
            photo = photo.convert("RGB").resize((width, height), Image.BILINEAR).convert(mode)
            file = tmp_path / f"{n}.{'jpg' if mode in ('L', 'RGB', 'CMYK') else 'png'}"
            photo.save(file)
        image = load_image(file)
        assert image.shape == (height, width, 3)
        for crop_spec in (*spec.query_specs(), replace(spec, query_crop_mode=None)):
            assert np.array_equal(preprocess(image, crop_spec), reference_preprocess(image, crop_spec)), \
                f"{file.name} ({mode}, {width}x{height}) {crop_spec.crop_mode}"
            checked += 1
    assert checked == 2 * len(sizes)


def test_reused_working_arrays_never_reach_the_caller() -> None:
    """The resize reuses per-thread working arrays: a result stays as it was after later resizes, in this
    thread and in threads resizing at the same time, and each equals the reference."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), rng.integers(0, 256, (300, 200, 3), dtype=np.uint8)]
    spec = PreprocessSpec(input_size=224, crop_mode="scale_fill")
    first = preprocess(images[0], spec)
    kept = first.copy()
    preprocess(images[1], spec)
    resize(images[1], 50, 70)
    assert np.array_equal(first, kept)
    expected = [reference_preprocess(image, spec) for image in images]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda n: preprocess(images[n % 2], spec), range(16)))
    assert all(np.array_equal(r, expected[n % 2]) for n, r in enumerate(results))
    assert len({id(r) for r in results}) == len(results)
