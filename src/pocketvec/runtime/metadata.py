"""The metadata every exported model carries (ONNX metadata_props / Core ML user metadata)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from pocketvec import __version__
from pocketvec.errors import ModelFileError
from pocketvec.runtime.preprocess import PreprocessSpec, reject_unknown_keys

METADATA_KEY = "pocketvec"
INPUT_NAME = "image"
OUTPUT_NAME = "embedding"


@dataclass(frozen=True)
class AcceptRule:
    """Accept the best label when its score >= threshold and beats the best other label by margin."""

    threshold: float
    margin: float = 0.0
    precision: float | None = None  # measured at this rule on the calibration set
    recall: float | None = None
    target_precision: float | None = None
    method: str = "decision"  # "decision" (threshold x margin at target precision) | "pair_f1"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AcceptRule:
        reject_unknown_keys(cls, data)
        return cls(**data)


@dataclass(frozen=True)
class ModelMetadata:
    preprocess: PreprocessSpec
    embedding_dim: int
    embedding_space_id: str
    model_name: str = ""
    accept_rule: AcceptRule | None = None
    pocketvec_version: str = field(default=__version__)

    def to_json(self) -> str:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return json.dumps(data, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> ModelMetadata:
        try:
            data = json.loads(text)
            reject_unknown_keys(cls, data)
            data["preprocess"] = PreprocessSpec.from_dict(data["preprocess"])
            if data.get("accept_rule") is not None:
                data["accept_rule"] = AcceptRule.from_dict(data["accept_rule"])
            return cls(**data)
        except (ValueError, KeyError, TypeError) as e:
            raise ModelFileError(f"{source}: pocketvec metadata is unreadable ({e})") from e
