"""The model an export starts from: a run folder's merged encoder and the metadata it will carry."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

from pocketvec.errors import ModelFileError
from pocketvec.export.local_codebook import read_codebook
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.metadata import LOCAL_NAME, OUTPUT_NAME, AcceptRule, ModelMetadata
from pocketvec.train.checkpoint import embedding_space_id, load_run, read_run_config
from pocketvec.train.encoder import Encoder, WithLocals

# Same names, same meanings in both formats: int8 = int8 weights (per output channel, symmetric), float
# activations; w8a8 = int8 weights and 8-bit activations calibrated on real images.
QUANTIZE_CHOICES = {kind: ("none", "fp16", "int8", "w8a8") for kind in ("onnx", "coreml")}


def adapter_modules(model: nn.Module) -> list[str]:
    """Names of peft/LoRA/DoRA modules or parameters still inside `model` (empty once merged)."""
    found = [name for name, module in model.named_modules() if type(module).__module__.startswith("peft")]
    found += [name for name, _ in model.named_parameters() if "lora_" in name]
    return found


def refuse_adapters(model: nn.Module, source: str | Path) -> None:
    found = adapter_modules(model)
    if found:
        raise ModelFileError(f"{source}: the model still holds adapter layers ({', '.join(found[:3])}...); "
                             "merge them first (`pocketvec train merge`), adapter graphs are never exported")


def run_accept_rule(config: dict) -> AcceptRule | None:
    """The calibrated accept rule a run folder records, if any (config["accept_rule"])."""
    rule = config.get("accept_rule")
    return AcceptRule.from_dict(rule) if rule else None


def model_metadata(model: Encoder, model_name: str = "", accept_rule=None, local_rerank: bool = False) -> ModelMetadata:
    return ModelMetadata(
        preprocess=model.config.preprocess,
        embedding_dim=model.config.embedding_dim,
        embedding_space_id=embedding_space_id(model),
        model_name=model_name or model.config.backbone,
        accept_rule=accept_rule,
        local_rerank=local_rerank_of(model) if local_rerank else None,
    )


@torch.no_grad()
def local_rerank_of(model: Encoder) -> LocalRerank:
    """The re-rank settings (runtime defaults) and the shape of the model's `local` output."""
    size = model.config.preprocess.input_size
    _, local = model.eval().forward_with_locals(torch.zeros(1, 3, size, size))
    return LocalRerank(locations=local.shape[1], channels=local.shape[2])


def load_export_source(run_dir: str | Path, local_rerank: bool = False) -> tuple[Encoder, ModelMetadata]:
    """The run's encoder (eval, no adapters) and the metadata every exported file embeds (with a local re-rank,
    the run folder's local codebook when it has one: export/local_codebook.py)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ModelFileError(f"{run_dir}: no such run folder")
    config = read_run_config(run_dir)
    model = load_run(run_dir)
    refuse_adapters(model, run_dir)
    name = str(config.get("name") or run_dir.name)
    metadata = model_metadata(model, model_name=name, accept_rule=run_accept_rule(config), local_rerank=local_rerank)
    codebook = read_codebook(run_dir) if local_rerank else None
    if codebook is not None:
        metadata = replace(metadata, local_rerank=replace(metadata.local_rerank, codebook=codebook))
    return model, metadata


def export_graph(model: Encoder, metadata: ModelMetadata) -> tuple[nn.Module, tuple[str, ...]]:
    """The module an export traces and its output names: with a local re-rank in the metadata, the encoder
    returning (embedding, local); eval() on the wrapper too, since exporters restore each module's mode
    and a new module is in training mode."""
    if metadata.local_rerank is None:
        return model, (OUTPUT_NAME,)
    return WithLocals(model).eval(), (OUTPUT_NAME, LOCAL_NAME)


def check_choice(kind: str, quantize: str) -> None:
    from pocketvec.errors import ConfigError

    if quantize not in QUANTIZE_CHOICES[kind]:
        raise ConfigError(f"{kind} quantize must be one of {list(QUANTIZE_CHOICES[kind])}. Got {quantize!r}.")
