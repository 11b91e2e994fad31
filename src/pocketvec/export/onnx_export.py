"""Export an encoder to ONNX (fp32) with the pocketvec metadata embedded."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from pocketvec.runtime.metadata import INPUT_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata
from pocketvec.train.checkpoint import embedding_space_id
from pocketvec.train.encoder import Encoder


def model_metadata(model: Encoder, model_name: str = "", accept_rule=None) -> ModelMetadata:
    return ModelMetadata(
        preprocess=model.config.preprocess,
        embedding_dim=model.config.embedding_dim,
        embedding_space_id=embedding_space_id(model),
        model_name=model_name or model.config.backbone,
        accept_rule=accept_rule,
    )


def write_metadata(proto: onnx.ModelProto, metadata: ModelMetadata) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()


def export_onnx_fp32(model: Encoder, out: str | Path, metadata: ModelMetadata | None = None) -> Path:
    """fp32 ONNX with a dynamic batch axis; input `image` NCHW 0-255, output `embedding`."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    size = model.config.preprocess.input_size
    dummy = torch.zeros(2, 3, size, size)
    tmp = out.with_name(out.name + ".tmp")
    torch.onnx.export(
        model, (dummy,), str(tmp), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=17, dynamo=False,
    )
    proto = onnx.load(str(tmp))
    write_metadata(proto, metadata or model_metadata(model))
    onnx.save(proto, str(tmp))
    tmp.replace(out)
    return out
