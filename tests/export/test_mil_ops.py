"""Every op of the ML-program interpreter against PyTorch, on programs coremltools converts from small
torch modules (no hand-written protos), in the interpreter's fp32 and fp16 modes; unknown ops refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pocketvec.errors import ModelFileError
from pocketvec.export.mil_interpreter import MILProgram
from pocketvec.export.mil_ops import OPS
from pocketvec.export.mil_proto import load_spec
from pocketvec.int8_grid import round_to_int8_grid

SHAPE = (1, 8, 6, 6)


class Fn(nn.Module):
    def __init__(self, fn) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


def _constant(*shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(sum(shape)))


C = _constant(1, 8, 1, 1)
BN1D, LN1D, LINEAR = nn.BatchNorm1d(8), nn.LayerNorm(8), nn.Linear(8, 5)  # on pooled features
# op -> the torch module coremltools converts to it (from x of SHAPE, random normal)
BRANCHES: dict[str, nn.Module] = {
    "add": Fn(lambda x: x + C), "sub": Fn(lambda x: x - C), "mul": Fn(lambda x: x * C),
    "real_div": Fn(lambda x: x / (x.abs() + 1)), "maximum": Fn(lambda x: torch.maximum(x, C)),
    "minimum": Fn(lambda x: torch.minimum(x, C)), "pow": Fn(lambda x: (x.abs() + 0.1) ** 1.7),
    "sqrt": Fn(lambda x: torch.sqrt(x.abs())), "exp": Fn(torch.exp), "tanh": nn.Tanh(), "abs": Fn(torch.abs),
    "rsqrt": Fn(lambda x: torch.rsqrt(x.abs() + 0.5)), "relu": nn.ReLU(), "sigmoid": nn.Sigmoid(),
    "silu": nn.SiLU(), "clip": Fn(lambda x: torch.clamp(x, -0.5, 0.7)), "relu6": Fn(lambda x: F.relu6(x * 4)),
    "sigmoid_hard": nn.Hardsigmoid(), "thresholded_relu": nn.Hardswish(),  # x * hardsigmoid, as LCNet's
    "reduce_mean": Fn(lambda x: x.mean((2, 3))),
    "reduce_l2_norm": Fn(lambda x: torch.linalg.vector_norm(x, dim=1)),
    "reshape": Fn(lambda x: (x * 2).reshape(1, 16, 18)), "expand_dims": Fn(lambda x: x.mean(1).unsqueeze(1)),
    "squeeze": Fn(lambda x: x.mean(1, keepdim=True).squeeze(1)), "tile": Fn(lambda x: x.repeat(1, 2, 1, 1)),
    "transpose": Fn(lambda x: x.permute(0, 2, 3, 1)), "concat": Fn(lambda x: torch.cat([x, x * C], 1)),
    "cast": Fn(lambda x: (x * 3).half().float()), "linear": Fn(lambda x: LINEAR(x.mean((2, 3)))),
    "matmul": Fn(lambda x: x.flatten(2) @ x.flatten(2).transpose(1, 2)), "layer_norm": nn.LayerNorm(6),
    "batch_norm": nn.BatchNorm2d(8), "pad": Fn(lambda x: F.pad(x, (1, 2, 0, 1), value=0.5)),
    "conv": nn.Conv2d(8, 6, 3, stride=2, padding=1), "avg_pool": nn.AdaptiveAvgPool2d(2),
}
EXTRA = {  # more forms of ops already named above: each must also match PyTorch
    "pad_reflect": Fn(lambda x: F.pad(x, (1, 1, 2, 1), mode="reflect")),
    "pad_replicate": Fn(lambda x: F.pad(x, (2, 0, 1, 1), mode="replicate")),
    "conv_depthwise": nn.Conv2d(8, 8, 3, padding=1, groups=8), "conv_grouped": nn.Conv2d(8, 4, 1, groups=2),
    "conv_dilated": nn.Conv2d(8, 4, 3, dilation=2, bias=False), "batch_norm_1d": Fn(lambda x: BN1D(x.mean((2, 3)))),
    "layer_norm_1d": Fn(lambda x: LN1D(x.mean((2, 3)))),
    "avg_pool_padded": nn.AvgPool2d(3, 2, padding=1),
    "avg_pool_counted": nn.AvgPool2d(3, 2, 1, count_include_pad=False),
    "normalize": Fn(lambda x: F.normalize(x.mean((2, 3)), dim=-1)),
}
# ops only quantized programs hold: weight dequantization (iOS16 / iOS18) and w8a8 activations
QUANTIZED = {"constexpr_affine_dequantize": "iOS16", "constexpr_blockwise_shift_scale": "iOS18",
             "quantize": "w8a8", "dequantize": "w8a8"}


def _randomise(module: nn.Module) -> nn.Module:
    torch.manual_seed(0)
    for norm in module.modules():
        if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm)):
            nn.init.normal_(norm.weight, 1.0, 0.3)
            nn.init.normal_(norm.bias, 0.0, 0.3)
        if isinstance(norm, (nn.BatchNorm1d, nn.BatchNorm2d)):
            norm.running_mean.normal_(0, 0.3)
            norm.running_var.uniform_(0.5, 2.0)
    return module.eval()


class Zoo(nn.Module):
    def __init__(self, branches: dict[str, nn.Module]) -> None:
        super().__init__()
        self.names = list(branches)
        self.branches = nn.ModuleList(branches.values())
        self.shared = nn.ModuleList([BN1D, LN1D, LINEAR])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(branch(x) for branch in self.branches)


def _convert(model: nn.Module, target: str = "iOS17"):
    import coremltools as ct

    example = torch.randn(SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval(), example, check_trace=False)
        return ct.convert(traced, inputs=[ct.TensorType(name="x", shape=SHAPE)], convert_to="mlprogram",
                          minimum_deployment_target=getattr(ct.target, target),
                          compute_precision=ct.precision.FLOAT32)


def _save(mlmodel, folder, name: str) -> MILProgram:
    path = folder / f"{name}.mlpackage"
    mlmodel.save(str(path))
    return MILProgram.load(path)


def op_types(program: MILProgram) -> set[str]:
    spec = load_spec(program.path)
    return {op.type for f in spec.mlProgram.functions.values() for b in f.block_specializations.values()
            for op in b.operations}


def feeding(program: MILProgram, output: str) -> set[str]:
    """The op types that compute `output` (its ancestors in the program)."""
    block = next(iter(load_spec(program.path).mlProgram.functions["main"].block_specializations.values()))
    producer = {out.name: op for op in block.operations for out in op.outputs}
    found, todo, seen = set(), [output], set()
    while todo:
        operation = producer.get(todo.pop())
        if operation is None or id(operation) in seen:
            continue
        seen.add(id(operation))
        found.add(operation.type)
        todo += [arg.name for binding in operation.inputs.values() for arg in binding.arguments if arg.name]
    return found


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """(torch zoo, its converted program): one program holds every float op, one output per branch."""
    model = _randomise(Zoo({**BRANCHES, **EXTRA}))
    folder = tmp_path_factory.mktemp("mil_ops")
    return model, _save(_convert(model), folder, "zoo")


@pytest.fixture(scope="module")
def quantized(tmp_path_factory):
    """{program kind: (torch reference, program)} for the weight-dequantization and w8a8 ops."""
    import coremltools.optimize.coreml as cto

    folder = tmp_path_factory.mktemp("mil_quantized")
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(8, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 48, 1)).eval()
    programs = {}
    config = cto.OptimizationConfig(global_config=cto.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel", weight_threshold=2048))
    rounded = round_to_int8_grid_copy(model)  # the grid coremltools' per-channel int8 uses
    for target in ("iOS16", "iOS18"):
        mlmodel = cto.linear_quantize_weights(_convert(model, target), config=config)
        programs[target] = (rounded, _save(mlmodel, folder, f"weights-{target}"))
    programs["w8a8"] = w8a8_program(model, folder)
    return programs


def round_to_int8_grid_copy(model: nn.Module) -> nn.Module:
    import copy

    rounded = copy.deepcopy(model)
    assert round_to_int8_grid(rounded) == 2  # the 64x8x3x3 and 48x64 weights; their biases stay float
    return rounded


def w8a8_program(model: nn.Module, folder) -> tuple[nn.Module, MILProgram]:
    """coremltools' LinearQuantizer (int8 weights and activations), calibrated on random inputs."""
    from coremltools.optimize.torch.quantization import (
        LinearQuantizer,
        LinearQuantizerConfig,
        ModuleLinearQuantizerConfig,
    )

    config = LinearQuantizerConfig(global_config=ModuleLinearQuantizerConfig(
        quantization_scheme="affine", milestones=[0, 0, 10**9, 0]))
    quantizer = LinearQuantizer(model, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = quantizer.prepare(example_inputs=(torch.randn(SHAPE),), inplace=False)
        quantizer.step()
        prepared.eval()
        with torch.no_grad():
            for seed in range(8):
                prepared(torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed)))
        final = quantizer.finalize(prepared).eval()
    return final, _save(_convert(final), folder, "w8a8")


def _inputs(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(SHAPE).astype(np.float32)


def _check(expected: np.ndarray, got: np.ndarray, precision: str, name: str) -> None:
    assert got.shape == expected.shape, name
    scale = max(1.0, float(np.abs(expected).max()))
    tolerance = 1e-5 if precision == "fp32" else 1e-2  # fp16 keeps 11 significant bits per intermediate
    error = float(np.abs(got - expected).max()) / scale
    assert error <= tolerance, f"{name} ({precision}): max relative error {error:.2e}"


def test_the_op_table_is_all_covered() -> None:
    assert set(OPS) == set(BRANCHES) | set(QUANTIZED)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("op", sorted(BRANCHES) + sorted(EXTRA))
def test_float_op_matches_torch(op, precision, zoo) -> None:
    model, program = zoo
    index = model.names.index(op)
    if op in BRANCHES:
        ops = feeding(program, program.output_names[index])
        assert op in ops, f"the conversion computes the branch with {sorted(ops)}, not {op!r}"
    for seed in (0, 1):
        x = _inputs(seed)
        with torch.no_grad():
            expected = model(torch.from_numpy(x))[index].numpy()
        _check(expected, program.run(x, precision)[program.output_names[index]], precision, op)


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
@pytest.mark.parametrize("op", sorted(QUANTIZED))
def test_quantized_op_matches_torch(op, precision, quantized) -> None:
    reference, program = quantized[QUANTIZED[op]]
    assert op in op_types(program), f"the conversion holds no {op!r}: {sorted(op_types(program))}"
    x = _inputs(2)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    got = program.run(x, precision)[program.output_names[0]]
    if QUANTIZED[op] != "w8a8":
        _check(expected, got, precision, op)
        return
    # w8a8: the same int8 grid in both; an activation on a rounding tie may land one step apart
    cosine = float(np.sum(expected * got) / (np.linalg.norm(expected) * np.linalg.norm(got)))
    assert cosine >= (0.9999 if precision == "fp32" else 0.999), f"{op} ({precision}): cosine {cosine:.6f}"


def test_an_unknown_op_is_refused_by_name(tmp_path) -> None:
    """A real conversion holding an op the interpreter does not implement (softmax)."""
    program = _convert(Fn(lambda x: torch.softmax(x, dim=1)))
    program.save(str(tmp_path / "softmax.mlpackage"))
    with pytest.raises(ModelFileError, match="unsupported Core ML op 'softmax'"):
        MILProgram.load(tmp_path / "softmax.mlpackage")


@pytest.mark.parametrize("backbone, head", [("lcnet_050", "squeeze"), ("mobilenetv4_conv_small", "mlp")])
def test_the_small_students_run_in_the_interpreter(backbone, head, demo_items, tmp_path) -> None:
    """PP-LCNet-0.5 and MobileNetV4-small (timm, pretrained=False) with the LN+BN heads: every op of their
    Core ML program is one the interpreter runs, and it computes what PyTorch does."""
    from pocketvec.export.calibration import list_images, load_batch
    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import EncoderConfig, build_encoder

    torch.manual_seed(0)
    model = _randomise(build_encoder(EncoderConfig(backbone=backbone, head=head, embedding_dim=32,
                                                   preprocess=PreprocessSpec(input_size=64))))
    run = save_run(tmp_path / "run", model)
    program = MILProgram.load(export_coreml(run, tmp_path / "model.mlpackage"))  # refuses an unknown op
    assert op_types(program) - {"const"} <= set(OPS)
    pixels = load_batch(list_images(demo_items)[:2], model.config.preprocess)
    with torch.no_grad():
        expected = model(torch.from_numpy(pixels)).numpy()
    assert np.abs(program.predict(pixels) - expected).max() <= 1e-4
    assert np.sum(program.predict(pixels, "fp16") * expected, axis=1).min() >= 0.999
