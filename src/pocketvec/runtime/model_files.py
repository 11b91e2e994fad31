"""Put a calibrated accept rule into an exported ONNX model's pocketvec metadata (onnx, no torch)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from pocketvec.errors import ModelFileError
from pocketvec.file_kinds import refuse_special
from pocketvec.runtime.gallery.file import write_atomic
from pocketvec.runtime.metadata import METADATA_KEY, AcceptRule, ModelMetadata


def write_accept_rule(model_path: str | Path, rule: AcceptRule, embedding_space_id: str | None = None) -> Path:
    """Rewrite the model's metadata entry with `rule` (atomically). With `embedding_space_id`,
    refuse a model other than the one the rule was calibrated for."""
    import onnx

    path = Path(model_path)
    refuse_special(path, ModelFileError)
    if path.suffix.lower() != ".onnx":
        raise ModelFileError(f"{path}: the accept rule can be written into .onnx models; "
                             "for Core ML, export again from a run whose config carries the rule")
    try:
        proto = onnx.load(str(path))
    except Exception as e:  # protobuf / onnx errors
        raise ModelFileError(f"{path}: not an ONNX model ({e})") from e
    entries = [entry for entry in proto.metadata_props if entry.key == METADATA_KEY]
    if not entries:
        raise ModelFileError(f"{path}: an ONNX model without pocketvec metadata")
    metadata = ModelMetadata.from_json(entries[0].value, str(path))
    if embedding_space_id is not None and metadata.embedding_space_id != embedding_space_id:
        raise ModelFileError(f"{path}: another model (embedding space {metadata.embedding_space_id}); "
                             f"the rule was calibrated for {embedding_space_id}")
    entries[0].value = dataclasses.replace(metadata, accept_rule=rule).to_json()
    return write_atomic(path, proto.SerializeToString())
