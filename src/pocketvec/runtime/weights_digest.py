"""The digest of an exported model's weights, "sha256:<64 hex>": written into its metadata at export and
recomputed when the model is opened, so a damaged or edited weight is refused, not trusted.

ONNX: every initializer (name, data type, dims, bytes) and every tensor a node attribute holds (a Constant's
value; a Constant's scalar and list values too), in subgraphs as well, sorted by name. Core ML: every file in
the package's weights folder and the ML program (its ops and inline constants), not the model description
that carries the metadata. A guard against damage and careless edits, not a signature: whoever edits the
weights on purpose can rewrite the digest too. Imports neither torch nor coremltools.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pocketvec.checks import check_pattern
from pocketvec.errors import ConfigError, ModelFileError, PocketvecError

PREFIX = "sha256:"
PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
SHORT = len(PREFIX) + 12  # what a one-line note shows of a digest
ONNX_STRING = 8  # onnx.TensorProto.STRING: values in string_data, never raw_data

Entry = tuple[str, bytes]


def check_digest(name: str, value: Any, error: type[PocketvecError] = ConfigError) -> None:
    check_pattern(name, value, PATTERN, "'sha256:' followed by 64 lowercase hex digits", error)


def short(digest: str) -> str:
    return digest[:SHORT]


def _digest(entries: list[Entry]) -> str:
    """sha256 over the entries sorted by name, each name and its bytes length-prefixed."""
    h = hashlib.sha256()
    for name, data in sorted(entries, key=lambda e: e[0]):
        key = name.encode("utf-8")
        h.update(struct.pack("<Q", len(key)) + key + struct.pack("<Q", len(data)))
        h.update(data)
    return PREFIX + h.hexdigest()


def _tensor_bytes(tensor) -> bytes:
    """An onnx.TensorProto as data type, dims and its values' bytes (raw_data as stored, else the typed field's
    values as little-endian array bytes)."""
    head = struct.pack(f"<iI{len(tensor.dims)}q", tensor.data_type, len(tensor.dims), *tensor.dims)
    if tensor.HasField("raw_data"):
        return head + tensor.raw_data
    if tensor.data_type == ONNX_STRING:
        return head + b"".join(struct.pack("<Q", len(s)) + s for s in tensor.string_data)
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor)
    return head + array.astype(array.dtype.newbyteorder("<"), copy=False).tobytes()


def _sparse_bytes(sparse) -> bytes:
    return struct.pack(f"<{len(sparse.dims)}q", *sparse.dims) + _tensor_bytes(sparse.values) + \
        _tensor_bytes(sparse.indices)


def _graph_entries(graph, scope: str = "") -> Iterator[Entry]:
    for tensor in graph.initializer:
        yield f"{scope}{tensor.name}", _tensor_bytes(tensor)
    for sparse in graph.sparse_initializer:
        yield f"{scope}{sparse.values.name}", _sparse_bytes(sparse)
    for node in graph.node:
        where = f"{scope}{node.output[0] if node.output else node.name}"
        for attribute in node.attribute:
            key = f"{where}.{attribute.name}"
            if attribute.HasField("t"):
                yield key, _tensor_bytes(attribute.t)
            if attribute.HasField("sparse_tensor"):
                yield key, _sparse_bytes(attribute.sparse_tensor)
            yield from ((f"{key}[{i}]", _tensor_bytes(t)) for i, t in enumerate(attribute.tensors))
            yield from ((f"{key}[{i}]", _sparse_bytes(s)) for i, s in enumerate(attribute.sparse_tensors))
            if attribute.HasField("g"):
                yield from _graph_entries(attribute.g, f"{key}/")
            for i, subgraph in enumerate(attribute.graphs):
                yield from _graph_entries(subgraph, f"{key}[{i}]/")
            if node.op_type == "Constant" and attribute.name != "value":  # value_float(s), value_int(s), ...
                yield key, attribute.SerializeToString()


def onnx_digest(model) -> str:
    """The weights digest of an onnx.ModelProto (its metadata_props are not part of it)."""
    return _digest(list(_graph_entries(model.graph)))


def coreml_digest(spec, weights_dir: Path) -> str:
    """The weights digest of a Core ML ML program: its `spec` (a parsed Model message; only its mlProgram
    counts, serialized deterministically) and the files of the package's `weights_dir`."""
    entries = [("program", spec.mlProgram.SerializeToString(deterministic=True))]
    if weights_dir.is_dir():
        entries += [(f"weights/{path.relative_to(weights_dir).as_posix()}", path.read_bytes())
                    for path in weights_dir.rglob("*") if path.is_file()]
    return _digest(entries)


def check_weights(path: Path, recorded: str | None, compute: Callable[[], str]) -> None:
    """Refuse a model whose weights are not those its metadata's digest records; a model without a digest
    (exported before pocketvec wrote one) opens as before."""
    if recorded is not None and compute() != recorded:
        raise ModelFileError(f"{path}: its weights do not match the digest recorded at export (the file is damaged "
                             "or was edited); export the model again")
