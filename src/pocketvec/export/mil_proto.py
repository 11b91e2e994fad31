"""Moved to pocketvec.runtime.mil.proto (the runtime runs Core ML files with it; export verifies with it
from there); kept here for old imports."""

from pocketvec.runtime.mil.proto import (
    BLOB_SENTINEL,
    decode_value,
    load_spec,
    numpy_dtype,
    package_paths,
    proto_modules,
    read_blob,
    tensor_shape,
)

__all__ = ["BLOB_SENTINEL", "decode_value", "load_spec", "numpy_dtype", "package_paths", "proto_modules", "read_blob",
           "tensor_shape"]
