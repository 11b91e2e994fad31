"""The metadata every exported model carries (ONNX metadata_props / Core ML user metadata)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from pocketvec.bounded_json import loads_bounded
from pocketvec.checks import check_number, check_text
from pocketvec.errors import ConfigError, ModelFileError, PocketvecError
from pocketvec.ranges import RANGES
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.preprocess import PreprocessSpec, reject_unknown_keys
from pocketvec.runtime.weights_digest import check_digest
from pocketvec.version import __version__

METADATA_KEY = "pocketvec"
INPUT_NAME = "image"
OUTPUT_NAME = "embedding"
LOCAL_NAME = "local"  # the second output of a model with a local re-rank: (N, locations, channels)
MAX_NAME = 256
MAX_METADATA_BYTES = 1 << 20


@dataclass(frozen=True)
class AcceptRule:
    """Accept the best label when its score >= threshold and beats the best other label by margin."""

    threshold: float
    margin: float = 0.0
    precision: float | None = None  # measured at this rule on the calibration set
    recall: float | None = None
    target_precision: float | None = None
    method: str = "decision"  # "decision" (threshold x margin at target precision) | "pair_f1"

    def __post_init__(self) -> None:
        RANGES["accept_rule.threshold"].check("accept rule threshold", self.threshold)
        RANGES["accept_rule.margin"].check("accept rule margin", self.margin)
        for name in ("precision", "recall", "target_precision"):
            if getattr(self, name) is not None:
                check_number(f"accept rule {name}", getattr(self, name), 0.0, 1.0)
        check_text("accept rule method", self.method, MAX_NAME)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptRule:
        if not isinstance(data, dict):
            raise ConfigError(f"accept rule must be a JSON object. Got {type(data).__name__}.")
        reject_unknown_keys(cls, data)
        if "threshold" not in data:
            raise ConfigError("accept rule lacks its threshold")
        return cls(**data)


@dataclass(frozen=True)
class ModelMetadata:
    preprocess: PreprocessSpec
    embedding_dim: int
    embedding_space_id: str
    model_name: str = ""
    accept_rule: AcceptRule | None = None
    pocketvec_version: str = field(default=__version__)
    local_rerank: LocalRerank | None = None  # None: the model has no `local` output, plain cosine matching
    weights_digest: str | None = None  # "sha256:<hex>" of the weights (runtime.weights_digest); None: an older export

    def __post_init__(self) -> None:
        if not isinstance(self.preprocess, PreprocessSpec):
            raise ConfigError("preprocess must be a PreprocessSpec")
        RANGES["dim"].check("embedding_dim", self.embedding_dim)
        check_text("embedding_space_id", self.embedding_space_id, MAX_NAME)
        check_text("model_name", self.model_name, MAX_NAME, empty=True)
        check_text("pocketvec_version", self.pocketvec_version, MAX_NAME)
        if self.accept_rule is not None and not isinstance(self.accept_rule, AcceptRule):
            raise ConfigError("accept_rule must be an AcceptRule or null")
        if self.local_rerank is not None and not isinstance(self.local_rerank, LocalRerank):
            raise ConfigError("local_rerank must be a LocalRerank or null")
        if self.weights_digest is not None:
            check_digest("weights_digest", self.weights_digest)

    def to_json(self) -> str:
        data = asdict(replace(self, local_rerank=None))
        data["preprocess"] = self.preprocess.to_dict()
        data["local_rerank"] = None if self.local_rerank is None else self.local_rerank.to_dict()
        for key in ("local_rerank", "weights_digest"):  # files without them keep the metadata they always had
            if data[key] is None:
                del data[key]
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelMetadata:
        data = loads_bounded(text, source, "pocketvec metadata", ModelFileError, MAX_METADATA_BYTES)
        try:
            if not isinstance(data, dict):
                raise ConfigError(f"must be a JSON object. Got {type(data).__name__}.")
            reject_unknown_keys(cls, data)
            missing = sorted({"preprocess", "embedding_dim", "embedding_space_id"} - set(data))
            if missing:
                raise ConfigError(f"lacks keys {missing}")
            if not isinstance(data["preprocess"], dict):
                raise ConfigError("preprocess must be a JSON object")
            data["preprocess"] = PreprocessSpec.from_dict(data["preprocess"])
            if data.get("accept_rule") is not None:
                data["accept_rule"] = AcceptRule.from_dict(data["accept_rule"])
            if data.get("local_rerank") is not None:
                data["local_rerank"] = LocalRerank.from_dict(data["local_rerank"])
            return cls(**data)
        except (PocketvecError, TypeError, ValueError) as e:
            raise ModelFileError(f"{source}: pocketvec metadata is invalid: {e}") from e
