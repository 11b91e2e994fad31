"""The `.pvg` header: its bytes (`header_bytes`) and its schema, every key checked by type and range before
anything uses it."""

from __future__ import annotations

import json
from typing import Any

from pocketvec.checks import check_number, check_text
from pocketvec.errors import GalleryError, PocketvecError
from pocketvec.ranges import RANGES
from pocketvec.runtime.local_rerank import MAX_CHANNELS, MAX_LOCATIONS
from pocketvec.runtime.metadata import MAX_NAME, AcceptRule
from pocketvec.runtime.weights_digest import check_digest

DTYPE_NAMES = ("float16", "float32", "int8")
KEYS_V2 = frozenset({"embedding_space_id", "dim", "count", "dtype", "labels", "sources", "accept_rule", "created_by"})
KEYS_V1 = KEYS_V2 | {"payload_sha256"}
KEYS_V3 = KEYS_V2 | {"local_shape"}
# version 4: local_shape optional (local maps kept); version 5: local maps full or compact (`local_codes`)
KEYS = {1: KEYS_V1, 2: KEYS_V2, 3: KEYS_V3, 4: KEYS_V2, 5: KEYS_V2}
# the weights digest of the model that built the rows; the text printed on each row's image and what read it
OPTIONAL_KEYS = frozenset({"model_digest", "texts", "text_reader"})
OPTIONAL_V4 = OPTIONAL_KEYS | {"local_shape"}
# compact local maps: the codebook's digest and code bytes per location; the locations the part codes
OPTIONAL_V5 = OPTIONAL_V4 | {"local_codes", "coded_locations"}
OPTIONAL = {1: OPTIONAL_KEYS, 2: OPTIONAL_KEYS, 3: OPTIONAL_KEYS, 4: OPTIONAL_V4, 5: OPTIONAL_V5}
LOCAL_CODES_KEYS = {"digest", "subvectors"}
MAX_LABEL = 1024
MAX_TEXT = 1 << 16  # characters of one row's text
ALIGN = 16


def header_bytes(header: dict[str, Any], at: int) -> bytes:
    """A header's JSON as written, starting at file offset `at`: compact, keys sorted, padded with spaces so
    that what follows starts at a multiple of ALIGN."""
    text = json.dumps(_whole_floats_as_ints(header), ensure_ascii=False, sort_keys=True, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
    return text + b" " * ((-(at + len(text))) % ALIGN)


def _whole_floats_as_ints(value: Any) -> Any:
    """1.0 -> 1, as JavaScript's JSON.stringify writes it: the sample app writes the same bytes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def check_header(header: Any, source: str, version: int) -> AcceptRule | None:
    """Refuse a header that is not exactly the schema of `version`; returns its accept rule."""
    if not isinstance(header, dict):
        raise GalleryError(f"{source}: gallery header must be a JSON object. Got {type(header).__name__}.")
    keys, optional = KEYS[version], OPTIONAL[version]
    missing, unknown = sorted(keys - set(header)), sorted(set(header) - keys - optional)
    if missing:
        raise GalleryError(f"{source}: gallery header lacks keys {missing}")
    if unknown and version >= 2:
        raise GalleryError(f"{source}: gallery header has unknown keys {unknown}")
    try:
        return _check_values(header)
    except PocketvecError as e:
        raise GalleryError(f"{source}: gallery header: {e}") from e


def _check_values(header: dict[str, Any]) -> AcceptRule | None:
    if not isinstance(header["dtype"], str) or header["dtype"] not in DTYPE_NAMES:
        raise GalleryError(f"dtype must be one of {list(DTYPE_NAMES)}. Got {header['dtype']!r}.")
    RANGES["count"].check("count", header["count"])
    RANGES["dim"].check("dim", header["dim"])
    check_text("embedding_space_id", header["embedding_space_id"], MAX_NAME)
    check_text("created_by", header["created_by"], MAX_NAME, empty=True)
    if "model_digest" in header:
        check_digest("model_digest", header["model_digest"])
    count = header["count"]
    for key in ("labels", "sources"):
        values = header[key]
        if not isinstance(values, list) or len(values) != count:
            raise GalleryError(f"'{key}' must be a list of {count} strings")
        for i, value in enumerate(values):
            check_text(f"{key}[{i}]", value, MAX_LABEL)
    if "local_shape" in header:
        shape = header["local_shape"]
        if not isinstance(shape, list) or len(shape) != 2:
            raise GalleryError(f"local_shape must be [locations, channels]. Got {shape!r}.")
        check_number("local_shape locations", shape[0], 1, MAX_LOCATIONS, integer=True)
        check_number("local_shape channels", shape[1], 1, MAX_CHANNELS, integer=True)
    if ("local_codes" in header) != ("coded_locations" in header) or ("local_codes" in header
                                                                       and "local_shape" not in header):
        raise GalleryError("'local_codes' and 'coded_locations' come together, with 'local_shape'")
    if "local_codes" in header:
        check_local_codes(header["local_codes"], header["coded_locations"])
    if ("texts" in header) != ("text_reader" in header):
        raise GalleryError("'texts' and 'text_reader' come together")
    if "texts" in header:
        check_text("text_reader", header["text_reader"], MAX_NAME)
        texts = header["texts"]
        if not isinstance(texts, list) or len(texts) != count:
            raise GalleryError(f"'texts' must be a list of {count} strings")
        for i, text in enumerate(texts):
            check_text(f"texts[{i}]", text, MAX_TEXT, empty=True)
    if len(set(header["sources"])) != count:
        raise GalleryError("two rows share a source image (sources must be unique)")
    if header["accept_rule"] is None:
        return None
    return AcceptRule.from_dict(header["accept_rule"])


def check_local_codes(codes: Any, coded: Any) -> None:
    """A compact gallery's `local_codes` ({"digest", "subvectors"}) and `coded_locations`."""
    if not isinstance(codes, dict) or set(codes) != LOCAL_CODES_KEYS:
        raise GalleryError(f"local_codes must be an object with {sorted(LOCAL_CODES_KEYS)}. Got {codes!r}.")
    check_digest("local_codes digest", codes["digest"])
    check_number("local_codes subvectors", codes["subvectors"], 1, 255, integer=True)
    check_number("coded_locations", coded, 0, 2**40, integer=True)
