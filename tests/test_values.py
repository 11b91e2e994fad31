"""Every value is checked before work starts: one line naming the option or key, the bad value and
what is expected; NaN and infinities refused; output paths checked up front; model metadata
validated when the model is opened."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.config import TrainConfig

from .runtime.test_runtime_cli import cli

DEMO_ITEMS = Path(__file__).resolve().parents[1] / "src" / "pocketvec" / "assets" / "demo_items"
BIG = "1" + "0" * 400  # a 401-digit integer: math.isfinite() of it overflows


def run(monkeypatch, capsys, *args) -> tuple[int, str]:
    code, out, err = cli(monkeypatch, capsys, *args)
    return code, out + err


BAD_TRAIN_ARGS = {
    "lr=abc": (["--set", "lr=abc"], "lr must be a finite number in [0, 10]. Got 'abc'."),
    "lr=NaN": (["--set", "lr=NaN"], "lr must be a finite number in [0, 10]. Got nan."),
    "lr=Infinity": (["--set", "lr=Infinity"], "lr must be a finite number"),
    "seed=abc": (["--set", "seed=abc"], "seed must be an integer in [0, 2147483647]. Got 'abc'."),
    "epochs=true": (["--set", "epochs=true"], "epochs must be an integer in [1, 1000000000]. Got True."),
    "trainable=5": (["--set", "trainable=5"], "trainable must be a list of glob patterns (strings). Got 5."),
    "augment=[]": (["--set", "augment=[]"], "augment must be a JSON object"),
    "margin.scale=NaN": (["--set", "margin.scale=NaN"], "margin scale must be a finite number in [0, 10000]. Got nan."),
    "adapters.rank=true": (["--set", "adapters.rank=true"], "adapter rank must be an integer in [1, 4096]. Got True."),
    "adapters.targets=7": (["--set", "adapters.targets=7"], "adapter targets must be a list"),
    "time limit -5": (["--time-limit", "-5"], "time_limit_s must be a finite number in [0, 1000000000]. Got -5.0."),
    # issue 39: integers of any size get the range error (no float overflow); every documented range enforced
    "epochs of 401 digits": (["--epochs", BIG], f"--epochs must be an integer in [1, 1000000000]. Got {BIG[:40]}..."),
    "lr of 401 digits": (["--set", f"lr={BIG}"], "lr must be a finite number in [0, 10]. Got 1000"),
    "seed of 401 digits": (["--set", f"seed=-{BIG}"], "seed must be an integer in [0, 2147483647]. Got -1000"),
    "lr=1e999": (["--set", "lr=1e999"], "lr must be a finite number in [0, 10]. Got inf."),
    "embedding_dim 1e9": (["--set", "encoder.embedding_dim=1000000000"],
                          "embedding_dim must be an integer in [8, 8192]. Got 1000000000."),
    "input size 20": (["--input-size", "20"], "--input-size must be an integer in [32, 1024]. Got 20."),
    "input size 0": (["--input-size", "0"], "--input-size must be an integer in [32, 1024]. Got 0."),
    "seed -1": (["--seed", "-1"], "--seed must be an integer in [0, 2147483647]. Got -1."),
    "seed 2**32": (["--seed", str(2**32)], "--seed must be an integer in [0, 2147483647]. Got 4294967296."),
    "dropout as text": (["--set", "encoder.dropout=abc"], "dropout must be a finite number in [0, 1]. Got 'abc'."),
    "mean of a number": (["--set", "encoder.preprocess.mean=5"], "mean must be a list of 3 numbers (R, G, B). Got 5."),
    "resample as a list": (["--set", "encoder.preprocess.resample=[1]"], "resample must be one of"),
    "encoder as a number": (["--set", "encoder=5"], "EncoderConfig must be a JSON object. Got int."),
}


@pytest.mark.parametrize("case", list(BAD_TRAIN_ARGS))
def test_train_values_are_refused_before_work(monkeypatch, capsys, tmp_path: Path, case: str) -> None:
    args, message = BAD_TRAIN_ARGS[case]
    code, out = run(monkeypatch, capsys, "train", "--preset", "smoke", "--data", DEMO_ITEMS,
                    "--out", tmp_path / "run", *args)
    assert code == 2 and message in out and "Traceback" not in out, out
    assert not (tmp_path / "run").exists()  # nothing was started


def test_train_help_states_the_enforced_ranges(monkeypatch, capsys) -> None:
    code, out = run(monkeypatch, capsys, "train", "--help")
    assert code == 0
    for text in ("an integer in [32, 1024]", "an integer in [1, 1000000000]", "an integer in [0, 2147483647]"):
        assert text in out, out


BAD_CONFIG_FILES = {  # issue 39: a --config file's problems are ConfigErrors naming the file and the key
    "epochs of 401 digits": ('{"epochs": ' + BIG + '}', "epochs must be an integer in [1, 1000000000]. Got 1000"),
    "100,000 nested brackets": ("[" * 100_000 + "]" * 100_000, "the training config is nested 100000 deep"),
    "run config, dropout as text": ('{"embedding_space_id": "s", "train": {"encoder": {"dropout": "0.1"}}}',
                                    "dropout must be a finite number in [0, 1]. Got '0.1'."),
    "run config, mean as a number": ('{"embedding_space_id": "s", "train": {"encoder": {"preprocess": {"mean": 5}}}}',
                                     "mean must be a list of 3 numbers"),
    "run config, margin as a number": ('{"embedding_space_id": "s", "train": {"margin": 5}}',
                                       "MarginConfig must be a JSON object. Got int."),
}


@pytest.mark.parametrize("case", list(BAD_CONFIG_FILES))
def test_config_file_values_are_refused_naming_the_file(monkeypatch, capsys, tmp_path: Path, case: str) -> None:
    text, message = BAD_CONFIG_FILES[case]
    config = tmp_path / "config.json"
    config.write_text(text)
    code, out = run(monkeypatch, capsys, "train", "--config", config, "--data", DEMO_ITEMS, "--out", tmp_path / "r")
    assert code == 2 and f"{config}: {message}" in out and "Traceback" not in out, out
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("args", [
    ["data", "photos", DEMO_ITEMS, "--out", "{tmp}/photos", "--seed", "-1"],
    ["data", "photos", DEMO_ITEMS, "--out", "{tmp}/photos", "--seed", str(2**32)],
    ["data", "preview", "--out", "{tmp}/sheet.png", "--seed", "-1"],
    ["demo", "--out", "{tmp}/demo", "--seed", BIG],
])
def test_every_seed_has_the_one_documented_range(monkeypatch, capsys, tmp_path: Path, args: list) -> None:
    code, out = run(monkeypatch, capsys, *[str(a).format(tmp=tmp_path) for a in args])
    assert code == 2 and "--seed must be an integer in [0, 2147483647]. Got " in out, out
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("port", ["70000", "-1", BIG])
def test_app_serve_refuses_a_port_out_of_range(monkeypatch, capsys, port: str) -> None:
    code, out = run(monkeypatch, capsys, "app", "serve", "--model", "m.onnx", "--port", port)
    assert code == 2 and "--port must be an integer in [0, 65535]. Got " in out, out


def test_a_config_file_must_be_an_object(monkeypatch, capsys, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text("[]")
    code, out = run(monkeypatch, capsys, "train", "--config", config, "--data", DEMO_ITEMS, "--out", tmp_path / "r")
    assert code == 2 and "must be a JSON object of settings. Got list." in out


@pytest.mark.parametrize("command", [
    ["train", "--preset", "smoke", "--data", DEMO_ITEMS, "--out", "{file}/run"],
    ["export", "onnx", "runs/none", "--out", "{file}/m.onnx"],
    ["export", "coreml", "runs/none", "--out", "{file}"],
    ["gallery", "build", "m.onnx", "--images", DEMO_ITEMS, "--out", "{folder}"],
    ["data", "preview", "--out", "{file}/sheet.png"],
    ["demo", "--out", "{file}/demo"],
    ["bench", "--quick", "--out", "{file}/B.md"],
])
def test_output_paths_are_checked_up_front(monkeypatch, capsys, tmp_path: Path, command: list) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    args = [str(a).format(file=a_file, folder=tmp_path) for a in command]
    code, out = run(monkeypatch, capsys, *args)
    assert code == 2 and "--out" in out and ("is a file" in out or "is a folder" in out), out


def test_a_nan_lock_timeout_is_refused(monkeypatch, capsys, tmp_path: Path) -> None:
    code, out = run(monkeypatch, capsys, "gallery", "remove", tmp_path / "g.pvg", "x", "--lock-timeout", "nan")
    assert code == 2 and "lock timeout (seconds) must be a finite number in [0, 86400]. Got nan." in out


def test_match_refuses_a_nan_threshold(monkeypatch, capsys) -> None:
    code, out = run(monkeypatch, capsys, "match", "m.onnx", "g.pvg", "x.jpg", "--threshold", "nan")
    assert code == 2 and "--threshold must be a finite number in [-2, 2]. Got nan." in out


def test_train_config_refuses_wrong_types_directly() -> None:
    with pytest.raises(ConfigError, match=r"grad_clip must be a finite number"):
        TrainConfig(grad_clip=float("inf"))
    with pytest.raises(ConfigError, match="teacher must be a string"):
        TrainConfig(teacher=5)


def metadata_with(**changes) -> str:
    data = json.loads(ModelMetadata(PreprocessSpec(input_size=96), 64, "space01", "m",
                                    AcceptRule(0.5, 0.05)).to_json())
    for key, value in changes.items():
        section, _, leaf = key.rpartition(".")
        (data[section] if section else data)[leaf] = value
    return json.dumps(data)


BAD_METADATA = {
    "dim as text": ({"embedding_dim": "256"}, "embedding_dim must be an integer"),
    "negative dim": ({"embedding_dim": -1}, "embedding_dim must be an integer in [1, 65536]. Got -1."),
    "threshold 5": ({"accept_rule.threshold": 5}, "accept rule threshold must be a finite number"),
    "empty space id": ({"embedding_space_id": ""}, "embedding_space_id must not be empty"),
    "input size as list": ({"preprocess.input_size": [96]}, "input_size must be an int"),
    "mean as text": ({"preprocess.mean": "abc"}, "pocketvec metadata is invalid"),
    "dim of 401 digits": ({"embedding_dim": int(BIG)}, "embedding_dim must be an integer in [1, 65536]. Got 1000"),
    "threshold of 401 digits": ({"accept_rule.threshold": int(BIG)}, "threshold must be a finite number in [-2, 2]"),
    "input size of 401 digits": ({"preprocess.input_size": -int(BIG)}, "input_size must be an integer in [32, 1024]"),
}


@pytest.mark.parametrize("case", list(BAD_METADATA))
def test_model_metadata_is_validated(case: str) -> None:
    changes, message = BAD_METADATA[case]
    with pytest.raises(ModelFileError, match=r"^m\.onnx: pocketvec metadata is invalid") as caught:
        ModelMetadata.from_json(metadata_with(**changes), "m.onnx")
    assert message in str(caught.value)
