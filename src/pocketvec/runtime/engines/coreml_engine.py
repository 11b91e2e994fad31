"""Core ML engines: coremltools' own runtime on macOS, the Core ML program interpreter elsewhere.

The Core ML model takes an image input (a pixel buffer on the phone); both engines are fed the
same preprocessed RGB pixels as the ONNX engine, so all three see identical inputs.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from pocketvec.errors import ModelFileError, NotBuiltYet
from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata
from pocketvec.runtime.preprocess import to_batch


def read_coreml_metadata(path: Path) -> ModelMetadata:
    """The pocketvec metadata of a `.mlpackage`/`.mlmodel`, read from its model spec."""
    try:
        import coremltools as ct

        spec = ct.utils.load_spec(str(path))
    except Exception as e:  # protobuf / coremltools errors
        raise ModelFileError(f"{path}: not a Core ML model coremltools can read ({e})") from e
    text = dict(spec.description.metadata.userDefined).get(METADATA_KEY)
    if text is None:
        raise ModelFileError(f"{path}: a Core ML model without pocketvec metadata (export it with `pocketvec export`)")
    json.loads(text)  # fail early on garbage; ModelMetadata explains the details
    return ModelMetadata.from_json(text, str(path))


class CoreMLEngine(Engine):
    """coremltools' runtime: needs macOS."""

    name = "coreml"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        if platform.system() != "Darwin":
            raise ModelFileError(f"{path}: the Core ML runtime needs macOS (this is {platform.system()}); "
                                 "use --engine interpreter on Linux, or the ONNX model")
        import coremltools as ct

        metadata = read_coreml_metadata(path)
        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        super().__init__(path, metadata)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        from PIL import Image

        rows = [self.model.predict({INPUT_NAME: Image.fromarray(image)})[OUTPUT_NAME] for image in batch]
        return np.asarray(rows, dtype=np.float32).reshape(len(batch), -1)


class InterpreterEngine(Engine):
    """The Core ML program interpreter of pocketvec.export (numpy), for Core ML files on Linux."""

    name = "coreml-interpreter"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        try:
            from pocketvec.export import mil_interpreter
        except ImportError as e:
            raise NotBuiltYet(f"{path}: the Core ML program interpreter (pocketvec.export.mil_interpreter) "
                              "is not available in this build") from e
        metadata = read_coreml_metadata(path)
        self.program = mil_interpreter.load(path)
        super().__init__(path, metadata)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.program.run({INPUT_NAME: to_batch(list(batch))})[OUTPUT_NAME], dtype=np.float32)
