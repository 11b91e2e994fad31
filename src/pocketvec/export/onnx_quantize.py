"""ONNX fp16 conversion (float32 I/O kept) and static int8 QDQ quantization calibrated on real images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader

from pocketvec.export.calibration import (
    MAX_CALIBRATION_IMAGES,
    calibration_feeds,
    calibration_folder,
    list_images,
    load_batch,
)
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.checkpoint import read_run_config


def to_fp16(fp32_path: Path) -> onnx.ModelProto:
    """Weights and activations in float16; the `image` input and `embedding` output stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)


class FeedReader(CalibrationDataReader):
    """onnxruntime's CalibrationDataReader protocol over a plain iterator of feeds."""

    def __init__(self, pixels: np.ndarray) -> None:
        self._feeds = calibration_feeds(pixels)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def calibration_pixels(run_dir: str | Path, spec: PreprocessSpec, calibration_dir: str | Path | None) -> np.ndarray:
    folder = calibration_folder(read_run_config(run_dir), calibration_dir)
    return load_batch(list_images(folder, MAX_CALIBRATION_IMAGES), spec)


def to_int8(fp32_path: Path, run_dir: str | Path, spec: PreprocessSpec, calibration_dir: str | Path | None,
            workdir: Path) -> onnx.ModelProto:
    """Static QDQ: int8 per-channel weights, uint8 activations with MinMax ranges from real images."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pixels = calibration_pixels(run_dir, spec, calibration_dir)
    prepared = workdir / "prepared.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    reader = FeedReader(pixels)
    quantized = workdir / "int8.onnx"
    quantize_static(str(prepared), str(quantized), reader, quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    return onnx.load(str(quantized))
