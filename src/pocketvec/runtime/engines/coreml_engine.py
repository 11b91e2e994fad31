"""Core ML engines: coremltools' own runtime on macOS, the Core ML program interpreter elsewhere.

The Core ML model takes an image input (a pixel buffer on the phone); both engines are fed the
same preprocessed RGB pixels as the ONNX engine, so all three see identical inputs. The file is
read with the runtime's protobuf reader (pocketvec.runtime.mil), which never imports torch.
"""

from __future__ import annotations

import contextlib
import platform
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pocketvec.errors import ModelFileError, PocketvecError
from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.metadata import INPUT_NAME, LOCAL_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata
from pocketvec.runtime.preprocess import to_batch
from pocketvec.runtime.weights_digest import check_weights, coreml_digest


@contextlib.contextmanager
def _damaged_model(path: Path) -> Iterator[None]:
    """The reader's and interpreter's failures on a damaged file as one ModelFileError naming it."""
    try:
        yield
    except PocketvecError:
        raise
    except Exception as e:  # protobuf, numpy and index errors from a truncated or edited package
        raise ModelFileError(f"{path}: the Core ML model is damaged or truncated ({type(e).__name__}: "
                             f"{str(e)[:200]})") from e


def read_coreml_metadata(path: Path) -> ModelMetadata:
    """The pocketvec metadata of an `.mlpackage`, read from its model spec; its weights checked against the
    metadata's digest."""
    from pocketvec.runtime.mil import proto as mil_proto

    with _damaged_model(path):
        spec = mil_proto.load_spec(path)
    text = dict(spec.description.metadata.userDefined).get(METADATA_KEY)
    if text is None:
        raise ModelFileError(f"{path}: a Core ML model without pocketvec metadata (export it with `pocketvec export`)")
    metadata = ModelMetadata.from_json(text, str(path))
    outputs = [o.name for o in spec.description.output]
    if metadata.local_rerank is not None and LOCAL_NAME not in outputs:
        raise ModelFileError(f"{path}: its metadata asks for a local re-rank but the model has no "
                             f"{LOCAL_NAME!r} output (outputs {outputs})")
    with _damaged_model(path):
        check_weights(path, metadata.weights_digest, lambda: coreml_digest(spec, mil_proto.package_paths(path)[1]))
    return metadata


class CoreMLEngine(Engine):
    """coremltools' runtime (the real Core ML framework): needs macOS."""

    name = "coreml"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        if platform.system() != "Darwin":
            raise ModelFileError(f"{path}: the Core ML runtime needs macOS (this is {platform.system()}); "
                                 "use --engine interpreter on Linux, or the ONNX model")
        metadata = read_coreml_metadata(path)
        import coremltools as ct

        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        super().__init__(path, metadata)

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        from PIL import Image

        results = [self.model.predict({INPUT_NAME: Image.fromarray(image)}) for image in batch]
        embeddings = np.asarray([r[OUTPUT_NAME] for r in results], dtype=np.float32).reshape(len(batch), -1)
        if self.metadata.local_rerank is None:
            return embeddings, None
        return embeddings, np.concatenate([np.asarray(r[LOCAL_NAME], dtype=np.float32) for r in results])


class InterpreterEngine(Engine):
    """The runtime's Core ML program interpreter (pocketvec.runtime.mil, numpy): Core ML files on any machine."""

    name = "coreml-interpreter"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        metadata = read_coreml_metadata(path)
        from pocketvec.runtime.mil.interpreter import MILProgram

        with _damaged_model(path):
            self.program = MILProgram.load(path)
        # An fp16 program casts its fp32 input: compute in fp16 as the phone does.
        self.precision = "fp16" if "cast" in self.program.op_types() else "fp32"
        super().__init__(path, metadata)

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        with _damaged_model(self.path):
            outputs = self.program.predict_outputs(to_batch(list(batch)), self.precision)
        return outputs[OUTPUT_NAME], outputs.get(LOCAL_NAME) if self.metadata.local_rerank else None
