"""Read a .mlpackage's ML program (protobuf + weight blob file) with numpy only.

coremltools' generated protobuf modules need only `google.protobuf`, but `import coremltools`
imports torch. The modules are loaded here under a private package name, straight from
coremltools' `proto` folder, so the interpreter (and the torch-free runtime) never imports torch.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path

import numpy as np

from pocketvec.errors import ModelFileError

_ALIAS = "_pocketvec_coreml_proto"
BLOB_SENTINEL = 0xDEADBEEF


def proto_modules() -> tuple[types.ModuleType, types.ModuleType]:
    """(Model_pb2, MIL_pb2): coremltools' own if already imported, else loaded without coremltools."""
    if "coremltools.proto.Model_pb2" in sys.modules:
        return sys.modules["coremltools.proto.Model_pb2"], sys.modules["coremltools.proto.MIL_pb2"]
    if _ALIAS not in sys.modules:
        spec = importlib.util.find_spec("coremltools")
        if spec is None or not spec.submodule_search_locations:
            raise ModelFileError("reading Core ML files needs the coremltools package (the coreml extra: "
                                 "pip install 'pocketvec[coreml]')")
        package = types.ModuleType(_ALIAS)
        package.__path__ = [str(Path(next(iter(spec.submodule_search_locations))) / "proto")]
        sys.modules[_ALIAS] = package
    return importlib.import_module(f"{_ALIAS}.Model_pb2"), importlib.import_module(f"{_ALIAS}.MIL_pb2")


def package_paths(package: str | Path) -> tuple[Path, Path]:
    """(model.mlmodel spec, weights folder) inside an .mlpackage."""
    package = Path(package)
    data = package / "Data" / "com.apple.CoreML"
    spec = data / "model.mlmodel"
    if not spec.is_file():
        raise ModelFileError(f"{package}: not an .mlpackage (no Data/com.apple.CoreML/model.mlmodel)")
    return spec, data / "weights"


def load_spec(package: str | Path):
    model_pb2, _ = proto_modules()
    spec_path, _ = package_paths(package)
    spec = model_pb2.Model()
    try:
        spec.ParseFromString(spec_path.read_bytes())
    except Exception as e:  # protobuf's DecodeError
        raise ModelFileError(f"{spec_path}: unreadable Core ML spec ({e})") from e
    if not spec.HasField("mlProgram"):
        raise ModelFileError(f"{package}: not an ML program (a neural-network model type is not supported)")
    return spec


_DTYPES = {
    "FLOAT16": np.float16, "FLOAT32": np.float32, "FLOAT64": np.float64, "INT8": np.int8, "UINT8": np.uint8,
    "INT16": np.int16, "UINT16": np.uint16, "INT32": np.int32, "UINT32": np.uint32, "INT64": np.int64,
    "UINT64": np.uint64, "BOOL": np.bool_,
}


def numpy_dtype(data_type: int) -> type:
    _, mil_pb2 = proto_modules()
    name = mil_pb2.DataType.Name(data_type)
    if name not in _DTYPES:
        raise ModelFileError(f"the ML program uses a tensor type the interpreter does not support: {name}")
    return _DTYPES[name]


def tensor_shape(tensor_type) -> tuple[int, ...]:
    return tuple(int(d.constant.size) for d in tensor_type.dimensions)


def _immediate(tensor, dtype: type, shape: tuple[int, ...]) -> np.ndarray | str:
    kind = tensor.WhichOneof("value")
    if kind == "strings":
        values = list(tensor.strings.values)
        return values[0] if not shape else values
    if kind == "bytes":
        array = np.frombuffer(tensor.bytes.values, dtype=dtype)
    else:
        array = np.asarray(list(getattr(tensor, kind).values), dtype=dtype)
    return array.reshape(shape)


def read_blob(weights_dir: Path, file_name: str, offset: int, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    """A tensor from the MIL blob file: a 64-byte record (sentinel, type, size, data offset) then data."""
    path = weights_dir / Path(file_name.replace("@model_path/weights/", "")).name
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            sentinel, _, size, data_offset = np.frombuffer(handle.read(24), dtype="<u4,<u4,<u8,<u8")[0]
            if sentinel != BLOB_SENTINEL:
                raise ModelFileError(f"{path}: corrupt weight record at offset {offset}")
            handle.seek(int(data_offset))
            raw = handle.read(int(size))
    except OSError as e:
        raise ModelFileError(f"{path}: unreadable weights ({e})") from e
    count = int(np.prod(shape, dtype=np.int64))
    array = np.frombuffer(raw, dtype=dtype)
    if array.size != count:
        raise ModelFileError(f"{path}: weight at offset {offset} holds {array.size} values, expected {count}")
    return array.reshape(shape)


def decode_value(value, weights_dir: Path) -> np.ndarray | str:
    """A MIL `Value` (immediate or blob-file) as a numpy array (or a string)."""
    tensor_type = value.type.tensorType
    _, mil_pb2 = proto_modules()
    if mil_pb2.DataType.Name(tensor_type.dataType) == "STRING":
        return _immediate(value.immediateValue.tensor, object, tensor_shape(tensor_type))
    dtype, shape = numpy_dtype(tensor_type.dataType), tensor_shape(tensor_type)
    if value.HasField("blobFileValue"):
        return read_blob(weights_dir, value.blobFileValue.fileName, value.blobFileValue.offset, dtype, shape)
    return _immediate(value.immediateValue.tensor, dtype, shape)
