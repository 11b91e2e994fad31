"""Export an encoder to a Core ML ML program (.mlpackage): image input, fp32/fp16/int8/w8a8.

The graph is captured with torch.export (torch.jit.trace cannot carry timm's dynamic "same" padding
through coremltools). The image input takes RGB 0-255 unchanged (scale 1, bias 0): normalisation
is inside the graph. The .mlpackage is written to a temp folder beside `out` and renamed into place.
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import torch

from pocketvec.atomic import replace_folder, staging_folder
from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.export.source import check_choice, export_graph, load_export_source
from pocketvec.int8_grid import INT8_WEIGHT_THRESHOLD
from pocketvec.runtime.metadata import INPUT_NAME, LOCAL_NAME, METADATA_KEY, OUTPUT_NAME, ModelMetadata
from pocketvec.runtime.weights_digest import coreml_digest

DEPLOYMENT_TARGETS = ("iOS16", "iOS17", "iOS18")


def _target(name: str):
    import coremltools as ct

    if name not in DEPLOYMENT_TARGETS:
        raise ConfigError(f"deployment target must be one of {list(DEPLOYMENT_TARGETS)}. Got {name!r}.")
    return getattr(ct.target, name)


def capture(model: torch.nn.Module, size: int):
    """The graph coremltools converts: torch.export, decomposed to core aten ops."""
    example = (torch.zeros(1, 3, size, size),)
    try:
        return torch.export.export(model.eval(), example).run_decompositions({})
    except Exception as e:
        raise ModelFileError(f"the encoder cannot be captured for Core ML (unsupported layer: {e})") from e


def convert(graph, size: int, target: str, fp16: bool, outputs: tuple[str, ...] = (OUTPUT_NAME,)):
    import coremltools as ct

    image = ct.ImageType(name=INPUT_NAME, shape=(1, 3, size, size), color_layout=ct.colorlayout.RGB,
                         scale=1.0, bias=[0.0, 0.0, 0.0])
    precision = ct.precision.FLOAT16 if fp16 else ct.precision.FLOAT32
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ct.convert(graph, inputs=[image], outputs=[ct.TensorType(name=name) for name in outputs],
                              convert_to="mlprogram", minimum_deployment_target=_target(target),
                              compute_precision=precision)
    except (NotImplementedError, ValueError, TypeError, RuntimeError) as e:
        raise ModelFileError(f"coremltools cannot convert the encoder (unsupported op or layer: {e})") from e


def quantize_weights_int8(mlmodel):
    """Per-channel symmetric int8 weights (constexpr dequantization); activations stay float.

    Weights of INT8_WEIGHT_THRESHOLD values or fewer stay float, as in the ONNX int8 export.
    """
    import coremltools.optimize.coreml as cto

    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=INT8_WEIGHT_THRESHOLD))
    # An all-zero output channel (pruned or dead filters) gets scale 0 in coremltools: 0 / 0 makes NaN
    # quantized values, which are multiplied by that 0 scale again, so the channel stays exactly 0
    # (tests/export/test_export_coreml.py checks it). Only numpy's warnings about it are silenced.
    with np.errstate(divide="ignore", invalid="ignore"):
        return cto.linear_quantize_weights(mlmodel, config=config)


def attach_metadata(mlmodel, metadata: ModelMetadata) -> None:
    """The metadata, with the digest of the weights as `save` writes them (the spec's program and the package's
    weights folder, copied as they are), and the descriptions; after the last change to the weights."""
    digest = coreml_digest(mlmodel.get_spec(), Path(mlmodel.weights_dir))
    mlmodel.user_defined_metadata[METADATA_KEY] = dataclasses.replace(metadata, weights_digest=digest).to_json()
    mlmodel.short_description = f"pocketvec image encoder {metadata.model_name} ({metadata.embedding_dim}-d)"
    mlmodel.version = metadata.pocketvec_version
    mlmodel.input_description[INPUT_NAME] = f"RGB image, {metadata.preprocess.input_size} px square, " \
                                            f"{metadata.preprocess.crop_description()}"
    mlmodel.output_description[OUTPUT_NAME] = "L2-normalised embedding"
    if metadata.local_rerank is not None:
        mlmodel.output_description[LOCAL_NAME] = ("stride-16 feature map (locations x channels), each location "
                                                  "L2-normalised: the local re-rank's input")


def save_mlpackage_atomic(mlmodel, out: Path) -> Path:
    """Save into a temp folder beside `out`, then swap it in; an existing `out` is replaced only at the end."""
    with staging_folder(out) as staged:
        mlmodel.save(str(staged))
        replace_folder(staged, out)
    return out


def export_coreml(run_dir: str | Path, out: str | Path, quantize: str = "none",
                  deployment_target: str = "iOS17", calibration_dir: str | Path | None = None,
                  local_rerank: bool = True) -> Path:
    """Export a run folder's encoder to `out` (.mlpackage) at fp32 ("none"), fp16, int8 or w8a8; with
    `local_rerank`, a second output `local` and the re-rank settings in the metadata, as the ONNX export."""
    check_choice("coreml", quantize)
    _target(deployment_target)
    out = Path(out)
    if out.suffix != ".mlpackage":
        raise ConfigError(f"Core ML output must end in .mlpackage. Got {str(out)!r}.")
    model, metadata = load_export_source(run_dir, local_rerank)
    size = metadata.preprocess.input_size
    source, outputs = export_graph(model, metadata)
    if quantize == "w8a8":
        from pocketvec.export.coreml_w8a8 import w8a8_graph

        graph, check = w8a8_graph(source, run_dir, metadata.preprocess, calibration_dir)
    else:
        graph, check = capture(source, size), None
    mlmodel = convert(graph, size, deployment_target, fp16=quantize == "fp16", outputs=outputs)
    if quantize in ("int8", "w8a8"):  # w8a8: the weights the float rungs of its ladder left float
        mlmodel = quantize_weights_int8(mlmodel)
    attach_metadata(mlmodel, metadata)
    if check is not None:
        mlmodel.short_description += f"; {check.describe()}"
    return save_mlpackage_atomic(mlmodel, out)
