"""Model metadata is checked against the graph when the model is opened: a metadata input size or
embedding dim that the graph does not have is refused by name, before any image is embedded."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pocketvec.errors import ModelFileError
from pocketvec.runtime.engines import open_engine


@pytest.fixture
def edited_model(tmp_path: Path, test_encoder):
    """The runtime's tiny real ONNX model, re-saved with its metadata edited."""
    import onnx

    from pocketvec.export.onnx_export import export_onnx_fp32

    base = export_onnx_fp32(test_encoder(0), tmp_path / "base.onnx")

    def edited(name: str, **changes) -> Path:
        proto = onnx.load(str(base))
        entry = next(e for e in proto.metadata_props if e.key == "pocketvec")
        data = json.loads(entry.value)
        for key, value in changes.items():
            section, _, leaf = key.rpartition(".")
            (data[section] if section else data)[leaf] = value
        entry.value = json.dumps(data)
        onnx.save(proto, str(tmp_path / name))
        return tmp_path / name

    return edited


def test_metadata_that_disagrees_with_the_graph_is_refused_on_open(edited_model) -> None:
    path = edited_model("small.onnx", **{"preprocess.input_size": 64})
    with pytest.raises(ModelFileError, match=r"small\.onnx: the graph's input shape .* does not match its "
                                             r"metadata \(input_size 64"):
        open_engine(path)
    with pytest.raises(ModelFileError, match=r"graph's output shape .* embedding_dim 256"):
        open_engine(edited_model("wide.onnx", embedding_dim=256))
    with pytest.raises(ModelFileError, match=r"embedding_dim must be an integer"):
        open_engine(edited_model("text.onnx", embedding_dim="64"))
    assert open_engine(edited_model("same.onnx")).metadata.embedding_dim == 64
