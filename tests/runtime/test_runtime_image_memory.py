"""Image loading bounded by memory, not only by pixel count: small files that claim huge images are
decoded reduced (JPEG draft, `reduce` for the rest) or refused from their header, naming the file, and
the resampler never makes a full-size float copy. Peaks are measured in a fresh process (max RSS)."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pocketvec.errors import ImageLoadError
from pocketvec.runtime import resample
from pocketvec.runtime.images import MEMORY_BUDGET_ENV, load_image, probe_image
from pocketvec.runtime.preprocess import CROP_MODES, PreprocessSpec, preprocess

PEAK_LIMIT_MIB = 600  # issue 39: any image file under 1 MiB, the whole process

MEASURE = """
import json, sys
from pocketvec.errors import ImageLoadError
from pocketvec.runtime.image_bounds import check_bounds
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess
spec = PreprocessSpec(crop_mode=sys.argv[2])
try:
    image = load_image(sys.argv[1])
    check_bounds(image.shape[1], image.shape[0], spec, sys.argv[1])
    result = {"shape": list(preprocess(image, spec).shape), "decoded": list(image.shape)}
except ImageLoadError as e:
    result = {"error": str(e)}
# VmHWM: this process's own peak (ru_maxrss would keep the parent's across fork and exec)
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
result["peak_mib"] = int(status["VmHWM"].split()[0]) / 1024
print(json.dumps(result))
"""


def measure(path: Path, crop_mode: str = "center_crop") -> dict:
    """Load and preprocess `path` in a fresh process: its result and peak memory (MiB)."""
    if not Path("/proc/self/status").exists():
        pytest.skip("peak memory is read from /proc/self/status (Linux)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop(MEMORY_BUDGET_ENV, None)
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path), crop_mode], capture_output=True, text=True,
                          timeout=120, env=env, check=True)
    return json.loads(done.stdout)


def claimed_jpeg(path: Path, width: int, height: int) -> Path:
    """A tiny JPEG whose header claims width x height (the scan data is a 16 x 16 image's)."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    frame = data.find(b"\xff\xc0")
    data[frame + 5 : frame + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path


def bombs(folder: Path) -> dict[str, Path]:
    """Files under 1 MiB that claim 81 M pixels."""
    files = {"bilevel": folder / "bilevel.png", "palette": folder / "palette.png", "deep": folder / "deep.png"}
    Image.new("1", (9000, 9000), 1).save(files["bilevel"])
    Image.new("P", (9000, 9000), 3).save(files["palette"])
    Image.fromarray(np.full((9000, 9000), 1000, np.uint16)).save(files["deep"])
    files["jpeg"] = claimed_jpeg(folder / "claimed.jpg", 9000, 9000)
    return files


@pytest.fixture(scope="module")
def bomb_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return bombs(tmp_path_factory.mktemp("bombs"))


@pytest.mark.parametrize("kind", ["bilevel", "palette", "deep", "jpeg"])
def test_a_small_file_claiming_81_megapixels_stays_within_the_budget(bomb_files: dict[str, Path], kind: str) -> None:
    """A 21 KB 1-bit PNG of 9000 x 9000 took 4.6 GiB; a 0.6 KB JPEG claiming 9000 x 9000 1.3 GiB."""
    path = bomb_files[kind]
    assert path.stat().st_size < 1 << 20
    for crop_mode in CROP_MODES:
        result = measure(path, crop_mode)
        assert result["peak_mib"] < PEAK_LIMIT_MIB, (kind, crop_mode, result)
        assert result["shape"] == [224, 224, 3], result  # decoded reduced, not refused
        assert max(result["decoded"]) < 9000


def test_a_strip_is_refused_from_its_header(tmp_path: Path) -> None:
    """An 80,000,000 x 1 strip took 963 MiB before its aspect ratio was refused."""
    path = tmp_path / "strip.png"
    Image.new("L", (80_000_000, 1), 7).save(path)
    assert path.stat().st_size < 1 << 20
    result = measure(path)
    assert result["peak_mib"] < 150, result
    assert result["error"] == f"{path}: aspect ratio 80000000:1 (80000000 x 1) is beyond 20:1; crop the item out " \
                              "of the image"
    with pytest.raises(ImageLoadError, match="aspect ratio"):
        probe_image(path)  # the dataset scan refuses it too, from the header


def test_the_budget_is_configurable_and_the_refusal_names_the_file(monkeypatch, tmp_path: Path) -> None:
    path = tmp_path / "shade.png"
    Image.new("LA", (2000, 2000), (30, 200)).save(path)
    assert load_image(path).shape == (2000, 2000, 3)  # within the default budget: full size, as before
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "16")
    with pytest.raises(ImageLoadError, match=rf"shade\.png: decoding 2000 x 2000 \(LA\) would take about .* MiB even "
                                             rf"reduced, beyond the 16 MiB for one image \({MEMORY_BUDGET_ENV} sets"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="beyond the 16 MiB"):
        probe_image(path)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "lots")
    with pytest.raises(Exception, match=f"{MEMORY_BUDGET_ENV} must be a whole number of MiB"):
        load_image(path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_a_reduced_decode_keeps_the_exif_rotation_and_the_picture(monkeypatch, tmp_path: Path, suffix: str) -> None:
    """Over the budget the image is decoded reduced: still upright (EXIF 6), still the same picture."""
    pixels = np.zeros((2000, 3000, 3), np.uint8)
    pixels[:, :1500] = (220, 20, 20)  # left half red, right half blue
    pixels[:, 1500:] = (20, 20, 220)
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = 6  # stored sideways: rotate 90 degrees clockwise to show
    path = tmp_path / f"sideways{suffix}"
    image.save(path, exif=exif.tobytes(), **({"quality": 95} if suffix == ".jpg" else {}))
    full = load_image(path)
    assert full.shape == (3000, 2000, 3)
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "48")
    small = load_image(path)
    factor = 3000 // small.shape[0]
    assert factor >= 2 and small.shape == (-(-3000 // factor), -(-2000 // factor), 3)
    top, bottom = small[: small.shape[0] // 4].mean(axis=(0, 1)), small[-small.shape[0] // 4 :].mean(axis=(0, 1))
    assert top[0] > 180 > top[2] and bottom[2] > 180 > bottom[0]  # red on top after the rotation


def test_the_horizontal_pass_in_strips_is_exact(monkeypatch) -> None:
    """Rows are resampled a strip at a time (no full-size float copy): the pixels are the same."""
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (301, 407, 3), dtype=np.uint8)
    spec = {mode: PreprocessSpec(input_size=64, crop_mode=mode, resample="bicubic") for mode in CROP_MODES}
    whole = {mode: preprocess(image, s) for mode, s in spec.items()}
    monkeypatch.setattr(resample, "STRIP_VALUES", 1000)  # a few rows per strip
    for mode, s in spec.items():
        assert np.array_equal(preprocess(image, s), whole[mode]), mode
