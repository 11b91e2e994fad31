"""Execute a saved Core ML ML program in numpy: Core ML parity on machines that cannot run Core ML.

`MILProgram.load(path).predict(pixels, precision)` runs the program's `main` function op by op.
precision="fp32" computes in float32; "fp16" rounds every intermediate value (and every weight) to
float16, the way the phone's GPU / Neural Engine store activations, so fp16 overflow shows up here.
The image input is fed as Core ML would: RGB 0-255 planar, reordered for a BGR input, with the
NeuralNetwork-style scale/bias of the input description applied if present. Imports no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.runtime.metadata import METADATA_KEY, ModelMetadata
from pocketvec.runtime.mil.ops import OPS
from pocketvec.runtime.mil.proto import decode_value, load_spec, package_paths

PRECISIONS = ("fp32", "fp16")


@dataclass(frozen=True)
class MILOperation:
    type: str
    inputs: dict[str, list[tuple[str, Any]]]  # key -> [("ref", name) | ("val", array)]
    outputs: tuple[str, ...]


def _arguments(binding, weights: Path) -> list[tuple[str, Any]]:
    return [("ref", arg.name) if arg.name else ("val", decode_value(arg.value, weights)) for arg in binding.arguments]


class MILProgram:
    """A loaded ML program: constants folded at load time, the rest executed per image."""

    def __init__(self, path: Path, spec, constants: dict[str, Any], operations: list[MILOperation],
                 input_name: str, output_names: list[str]) -> None:
        self.path = path
        self.spec = spec
        self.constants = constants
        self.operations = operations
        self.input_name = input_name
        self.output_names = output_names
        image = spec.description.input[0].type
        self.is_image = image.HasField("imageType")
        self.input_size = (int(image.imageType.height), int(image.imageType.width)) if self.is_image else None
        self.color_space = image.imageType.ColorSpace.Name(image.imageType.colorSpace) if self.is_image else "RGB"

    @classmethod
    def load(cls, path: str | Path) -> MILProgram:
        path = Path(path)
        spec = load_spec(path)
        _, weights = package_paths(path)
        functions = spec.mlProgram.functions
        if "main" not in functions:
            raise ModelFileError(f"{path}: the ML program has no `main` function")
        main = functions["main"]
        block = main.block_specializations[main.opset]
        constants: dict[str, Any] = {}
        operations = []
        for proto in block.operations:
            if proto.type == "const":
                constants[proto.outputs[0].name] = decode_value(proto.attributes["val"], weights)
                continue
            if proto.type not in OPS:
                raise ModelFileError(f"{path}: unsupported Core ML op {proto.type!r} (op {proto.outputs[0].name}); "
                                     f"the interpreter knows {sorted(OPS)}")
            inputs = {k: _arguments(v, weights) for k, v in proto.inputs.items()}
            inputs.update({k: [("val", decode_value(v, weights))] for k, v in proto.attributes.items() if k != "name"})
            operation = MILOperation(proto.type, inputs, tuple(o.name for o in proto.outputs))
            if proto.type.startswith("constexpr_"):  # dequantized once, at load time
                constants[operation.outputs[0]] = cls._run(operation, constants, "fp32")
                continue
            operations.append(operation)
        return cls(path, spec, constants, operations, main.inputs[0].name, list(block.outputs))

    @property
    def metadata_text(self) -> str | None:
        return self.spec.description.metadata.userDefined.get(METADATA_KEY)

    @property
    def metadata(self) -> ModelMetadata | None:
        text = self.metadata_text
        return ModelMetadata.from_json(text, str(self.path)) if text else None

    def op_types(self) -> set[str]:
        return {operation.type for operation in self.operations}

    @staticmethod
    def _run(operation: MILOperation, values: dict[str, Any], precision: str) -> Any:
        kwargs = {}
        for key, args in operation.inputs.items():
            resolved = [values[ref] if kind == "ref" else ref for kind, ref in args]
            kwargs[key] = resolved if operation.type == "concat" and key == "values" else resolved[0]
        try:
            with np.errstate(over="ignore" if precision == "fp16" else "warn"):
                result = OPS[operation.type](**kwargs)
        except (TypeError, ValueError, KeyError, NotImplementedError) as e:
            raise ModelFileError(f"Core ML op {operation.type!r} ({operation.outputs[0]}) failed: {e}") from e
        if precision == "fp16" and isinstance(result, np.ndarray) and np.issubdtype(result.dtype, np.floating):
            with np.errstate(over="ignore", invalid="ignore"):
                result = result.astype(np.float16)
        return result

    def _check_pixels(self, pixels: np.ndarray) -> np.ndarray:
        pixels = np.asarray(pixels, dtype=np.float32)
        if self.input_size is not None:
            expected = (3, *self.input_size)
            if pixels.ndim != 4 or pixels.shape[1:] != expected:
                raise ConfigError(f"{self.path.name}: the image input takes (N, {expected[0]}, {expected[1]}, "
                                  f"{expected[2]}) RGB 0-255 pixels. Got shape {pixels.shape}.")
        if self.color_space == "BGR":
            pixels = pixels[:, ::-1]
        elif self.color_space != "RGB":
            raise ModelFileError(f"{self.path}: image input color space {self.color_space} is not supported")
        return pixels

    def _constants(self, precision: str) -> dict[str, Any]:
        if precision not in PRECISIONS:
            raise ConfigError(f"precision must be one of {list(PRECISIONS)}. Got {precision!r}.")
        if precision == "fp32":
            return self.constants
        return {k: v.astype(np.float16) if isinstance(v, np.ndarray) and v.dtype.kind == "f" else v
                for k, v in self.constants.items()}

    def _execute(self, x: np.ndarray, constants: dict[str, Any], precision: str) -> dict[str, Any]:
        values = dict(constants)
        values[self.input_name] = x.astype(np.float16) if precision == "fp16" else x
        for operation in self.operations:
            values[operation.outputs[0]] = self._run(operation, values, precision)
        return values

    def run(self, x: np.ndarray, precision: str = "fp32") -> dict[str, np.ndarray]:
        """Every output of the program for one input array, as float32 (no image handling)."""
        return self._outputs(self._execute(np.asarray(x, dtype=np.float32), self._constants(precision), precision))

    def predict(self, pixels: np.ndarray, precision: str = "fp32") -> np.ndarray:
        """NCHW float32 RGB 0-255 pixels -> the program's first output (float32), one row per image."""
        return self.predict_outputs(pixels, precision)[self.output_names[0]]

    def predict_outputs(self, pixels: np.ndarray, precision: str = "fp32") -> dict[str, np.ndarray]:
        """NCHW float32 RGB 0-255 pixels -> every output (float32), one image at a time as on the phone: the
        first flattened to one row per image, the others keeping their shape after the batch axis."""
        constants = self._constants(precision)
        pixels = self._check_pixels(pixels)
        runs = [self._outputs(self._execute(image[None], constants, precision)) for image in pixels]
        outputs = {}
        for i, name in enumerate(self.output_names):
            rows = [run[name] for run in runs]
            outputs[name] = np.concatenate([r.reshape(1, -1) if i == 0 else r.reshape(1, *r.shape[1:]) for r in rows])
        return outputs

    def _outputs(self, values: dict[str, Any]) -> dict[str, np.ndarray]:
        """An image's outputs as float32, taken from all its values (the intermediate ones are let go)."""
        return {name: np.asarray(values[name], dtype=np.float32) for name in self.output_names}
