"""Inference engines behind one call: `open_engine(model_path)` -> `.metadata`, `.embed(images)`."""

from __future__ import annotations

import platform
from pathlib import Path

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.file_kinds import refuse_special
from pocketvec.runtime.engines.base import EmbedResult, Engine

ENGINES = ("auto", "onnxruntime", "coreml", "interpreter")
COREML_SUFFIXES = (".mlpackage",)

__all__ = ["ENGINES", "EmbedResult", "Engine", "open_engine"]


def open_engine(model_path: str | Path, engine: str = "auto", threads: int | None = None) -> Engine:
    """Open an exported pocketvec model. `auto`: onnxruntime for ONNX; for Core ML, coremltools on
    macOS and the Core ML program interpreter elsewhere. A model whose output on a test image is not a
    finite unit vector is refused."""
    if engine not in ENGINES:
        raise ConfigError(f"engine must be one of {list(ENGINES)}. Got {engine!r}.")
    if threads is not None and threads < 1:
        raise ConfigError(f"threads must be >= 1. Got {threads!r}.")
    path = Path(model_path)
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    refuse_special(path, ModelFileError)
    is_coreml = path.suffix.lower() in COREML_SUFFIXES
    if engine == "auto":
        engine = ("coreml" if platform.system() == "Darwin" else "interpreter") if is_coreml else "onnxruntime"
    if engine != "onnxruntime" and not is_coreml:
        raise ModelFileError(f"{path}: engine {engine!r} needs a Core ML model ({', '.join(COREML_SUFFIXES)})")
    if engine == "onnxruntime":
        if path.is_dir() or is_coreml:
            raise ModelFileError(f"{path}: onnxruntime needs an .onnx file; this is a Core ML model or a folder")
        from pocketvec.runtime.engines.onnx_engine import OnnxEngine

        opened: Engine = OnnxEngine(path, threads)
    else:
        from pocketvec.runtime.engines.coreml_engine import CoreMLEngine, InterpreterEngine

        opened = (CoreMLEngine if engine == "coreml" else InterpreterEngine)(path, threads)
    opened.check_probe()
    return opened
