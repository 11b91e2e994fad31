"""onnxruntime engine: the default for `.onnx` files."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketvec.errors import ModelFileError
from pocketvec.runtime.engines.base import Engine
from pocketvec.runtime.metadata import INPUT_NAME, LOCAL_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata
from pocketvec.runtime.preprocess import to_batch
from pocketvec.runtime.weights_digest import check_weights, onnx_digest


class OnnxEngine(Engine):
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        from pocketvec.runtime.onnx_options import session_options

        try:
            self.session = ort.InferenceSession(str(path), session_options(path, threads),
                                                providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{path}: not a model onnxruntime can load ({str(e).splitlines()[0][:200]})") from e
        text = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if text is None:
            raise ModelFileError(f"{path}: an ONNX model without pocketvec metadata "
                                 "(export it with `pocketvec export`)")
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if INPUT_NAME not in inputs or OUTPUT_NAME not in outputs:
            raise ModelFileError(f"{path}: expected input {INPUT_NAME!r} and output {OUTPUT_NAME!r}, "
                                 f"found inputs {inputs} and outputs {outputs}")
        metadata = ModelMetadata.from_json(text, str(path))
        if metadata.local_rerank is not None and LOCAL_NAME not in outputs:
            raise ModelFileError(f"{path}: its metadata asks for a local re-rank but the graph has no "
                                 f"{LOCAL_NAME!r} output (outputs {outputs})")
        _check_shapes(path, metadata, self.session.get_inputs(), self.session.get_outputs())
        check_weights(path, metadata.weights_digest, lambda: onnx_digest(_load_proto(path)))
        self.outputs = [OUTPUT_NAME] + ([LOCAL_NAME] if metadata.local_rerank else [])
        super().__init__(path, metadata)

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        results = self.session.run(self.outputs, {INPUT_NAME: to_batch(list(batch))})
        return results[0], results[1] if len(results) > 1 else None


def _check_shapes(path: Path, metadata: ModelMetadata, inputs, outputs) -> None:
    """The graph's fixed sizes agree with the metadata (symbolic sizes are left to run time)."""
    size, dim = metadata.preprocess.input_size, metadata.embedding_dim
    image = next(i for i in inputs if i.name == INPUT_NAME).shape
    embedding = next(o for o in outputs if o.name == OUTPUT_NAME).shape
    expected = {"input": (image[1:], [3, size, size]), "output": (embedding[1:], [dim])}
    for what, (shape, want) in expected.items():
        fixed = [(got, w) for got, w in zip(shape, want, strict=False) if isinstance(got, int)]
        if len(shape) != len(want) or any(got != w for got, w in fixed):
            raise ModelFileError(f"{path}: the graph's {what} shape {shape} does not match its metadata "
                                 f"(input_size {size}, embedding_dim {dim})")


def _load_proto(path: Path):
    import onnx

    try:
        return onnx.load(str(path))
    except Exception as e:  # protobuf / onnx errors on a file onnxruntime did load
        raise ModelFileError(f"{path}: not an ONNX model the onnx package can read ({str(e)[:200]})") from e
