"""The training loop on tiny settings: resume after an interruption reproduces the uninterrupted run,
unfinished runs are refused by load_run until merged, the CLI trains end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.int8_grid import round_to_int8_grid
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import preprocess
from pocketvec.train.checkpoint import (
    FLOAT_WEIGHTS_FILE,
    embedding_space_id,
    load_float_reference,
    load_run,
    read_run_config,
)
from pocketvec.train.config import TrainConfig, load_train_config
from pocketvec.train.loop import Trainer
from pocketvec.train.merge import merge_run
from pocketvec.train.presets import preset_config
from pocketvec.train.run import train_config
from pocketvec.train.student import build_student, ship_base


def tiny_config(**overrides) -> TrainConfig:
    """lcnet_050 at 64 px, DoRA on the head and last conv, 6 items -> 2 steps per epoch, 2 epochs."""
    return preset_config("smoke").with_overrides({
        "batch_classes": 3, "epochs": 2, "adapters.kind": "dora", "adapters.rank": 4,
        "adapters.targets": ["head.*", "backbone.conv_head"], "trainable": ["head.*"], **overrides})


def test_resume_after_interruption_gives_the_same_weights(few_items: Path, tmp_path: Path) -> None:
    config = tiny_config()
    straight = train_config(config, few_items, tmp_path / "straight")

    interrupted = Trainer(config, few_items, tmp_path / "resumed")
    interrupted.run(stop_after=1)  # mid-epoch: resumable state only
    with pytest.raises(ModelFileError, match="train merge"):
        load_run(tmp_path / "resumed")
    resumed = Trainer(config, few_items, tmp_path / "resumed")
    assert resumed.step == 1
    resumed.run()

    a, b = load_file(str(straight / "model.safetensors")), load_file(str(tmp_path / "resumed/model.safetensors"))
    assert a.keys() == b.keys() and not any("lora_" in k for k in a)
    for key in a:
        torch.testing.assert_close(a[key], b[key], atol=1e-6, rtol=0, msg=key)
    history = read_run_config(straight)["history"]
    assert [h["epoch"] for h in history] == [0, 1, 2] and 0.0 <= history[-1]["recall_at_1"] <= 1.0
    assert read_run_config(tmp_path / "resumed")["history"] == history
    assert not (straight / "resume").exists()
    assert not (straight / FLOAT_WEIGHTS_FILE).exists() and "int8_rounding" not in read_run_config(straight)

    shipped = ship_base(straight, tmp_path / "shipped")  # fp16 copy, as src/pocketvec/assets/base
    assert load_file(str(shipped / "model.safetensors"))["head.layers.1.weight"].dtype == torch.float16
    assert embedding_space_id(load_run(shipped)) == read_run_config(shipped)["embedding_space_id"]


def test_merge_turns_an_unfinished_run_into_plain_weights(few_items: Path, tmp_path: Path) -> None:
    trainer = Trainer(tiny_config(), few_items, tmp_path / "run")
    trainer.run(stop_after=1)
    pixels = torch.rand(2, 3, 64, 64) * 255
    with torch.no_grad():
        adapted = trainer.model.eval()(pixels)
    merge_run(tmp_path / "run")
    merged = load_run(tmp_path / "run")
    assert type(merged).__name__ == "Encoder"
    with torch.no_grad():
        assert (merged(pixels) - adapted).abs().max() <= 1e-5


def test_int8_grid_run_ends_on_the_grid_after_the_merge(few_items: Path, tmp_path: Path) -> None:
    run = train_config(tiny_config(int8_grid=True), few_items, tmp_path / "run")
    model, config = load_run(run), read_run_config(run)
    assert config["int8_grid"] is True and 0.0 <= config["history"][-1]["recall_at_1"] <= 1.0
    weight = model.backbone.conv_head.weight.detach().reshape(model.backbone.conv_head.weight.shape[0], -1)
    steps = weight / (weight.abs().amax(1, keepdim=True) / 127)  # merged DoRA weight, in grid steps
    assert torch.allclose(steps, steps.round(), atol=1e-3)
    assert preset_config("enroll").int8_grid

    # the trained float weights stay next to the shipped ones; rounding them gives the shipped weights
    unrounded = load_float_reference(run)
    assert unrounded is not None
    assert not torch.equal(unrounded.backbone.conv_head.weight, model.backbone.conv_head.weight)
    record = config["int8_rounding"]
    assert record["float_weights"] == FLOAT_WEIGHTS_FILE
    assert record["float_embedding_space_id"] == embedding_space_id(unrounded) != config["embedding_space_id"]
    assert record["rounded_weights"] == round_to_int8_grid(unrounded) > 0
    for name, value in model.state_dict().items():
        torch.testing.assert_close(unrounded.state_dict()[name], value, atol=1e-6, rtol=0, msg=name)
    kept = next(h for h in config["history"] if h["epoch"] == config["kept"]["epoch"])
    assert record["held_out"]["rounded"] == {"decision_recall": kept["decision_recall"],
                                             "recall_at_1": kept["recall_at_1"]}
    assert 0.0 <= record["held_out"]["float"]["recall_at_1"] <= 1.0 and record["held_out"]["queries"] > 0


def test_another_config_does_not_resume_and_finished_runs_are_kept(few_items: Path, tmp_path: Path) -> None:
    Trainer(tiny_config(), few_items, tmp_path / "run").run(stop_after=1)
    with pytest.raises(ConfigError, match="another config"):
        Trainer(tiny_config(lr=0.5), few_items, tmp_path / "run")


def test_config_file_round_trips(tmp_path: Path) -> None:
    config = preset_config("enroll")
    path = tmp_path / "train.json"
    path.write_text(json.dumps(config.to_dict()))
    assert load_train_config(path) == config
    path.write_text("{not json")
    with pytest.raises(ConfigError, match="the training config is not valid JSON"):
        load_train_config(path)


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown keys"):
        TrainConfig.from_dict({"epochz": 3})
    with pytest.raises(ConfigError, match="Got 0"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="Got 'hinge'"):
        TrainConfig(loss="hinge")
    with pytest.raises(ConfigError, match="not a nested config"):
        TrainConfig().with_overrides({"epochs.x": 1})
    assert TrainConfig().with_overrides({"encoder.preprocess.input_size": 160}).encoder.preprocess.input_size == 160


def test_cli_trains_a_run_folder(few_items: Path, tmp_path: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    cmd = [sys.executable, "-m", "pocketvec", "train", "--preset", "smoke", "--data", str(few_items),
           "--out", str(tmp_path / "run"), "--set", "max_steps=1", "--set", "margin.kind=cosface",
           "--set", "wise_alpha=0.25"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "run written" in result.stdout
    assert "weights shipped: start + 0.25 x (fine-tuned - start), WiSE-FT" in result.stdout
    assert read_run_config(tmp_path / "run")["train"]["margin"]["kind"] == "cosface"
    with pytest.raises(ConfigError, match="already holds a finished run"):  # nothing overwritten
        train_config(preset_config("smoke"), few_items, tmp_path / "run")
    from pocketvec.cli.train import parse_set

    overrides = parse_set(["margin.kind=softmax", "epochs=2"])
    assert overrides == {"margin.kind": "softmax", "epochs": 2}
    with pytest.raises(ConfigError, match="Got 'softmax'"):
        preset_config("smoke").with_overrides(overrides)
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parse_set(["epochs"])


def test_wise_alpha_ships_the_blend_of_start_and_trained_weights(few_items: Path, tmp_path: Path) -> None:
    """WiSE-FT: alpha 0 ships the start, 1 the trained weights, 0.5 their mean (BatchNorm statistics too)."""
    shipped = {alpha: load_run(train_config(tiny_config(wise_alpha=alpha, eval_views=0), few_items,
                                            tmp_path / f"alpha{alpha}")).state_dict()
               for alpha in (0.0, 0.5, 1.0)}
    torch.manual_seed(tiny_config().seed)
    start = build_student(tiny_config().encoder, tiny_config().init).state_dict()
    moved = [key for key, value in shipped[1.0].items() if value.is_floating_point()
             and not torch.allclose(value, start[key])]
    assert any("running_mean" in key for key in moved) and any(key.endswith("weight") for key in moved)
    for key, value in shipped[0.5].items():
        if value.is_floating_point():  # (the step counters of BatchNorm count the steps taken)
            torch.testing.assert_close(shipped[0.0][key], start[key], atol=1e-6, rtol=0, msg=key)
            torch.testing.assert_close(value, (shipped[0.0][key] + shipped[1.0][key]) / 2, atol=1e-6, rtol=0, msg=key)


def test_preserve_weight_holds_the_embeddings_near_the_start(few_items: Path, tmp_path: Path) -> None:
    """Feature preservation: the same steps, every layer trained as enrolment does, move the items' embeddings
    much less (here about 0.14 against 1.2 in 1 - cosine)."""
    spec = tiny_config().encoder.preprocess
    pixels = torch.stack([torch.from_numpy(preprocess(load_image(path), spec)).permute(2, 0, 1).float()
                          for path in sorted(few_items.iterdir())])
    torch.manual_seed(tiny_config().seed)
    with torch.no_grad():
        start = torch.nn.functional.normalize(build_student(tiny_config().encoder, tiny_config().init).eval()(pixels))

    def drift(weight: float) -> float:
        config = tiny_config(preserve_weight=weight, lr=0.01, epochs=4, trainable=["*"], adapters={"kind": "none"},
                             eval_views=0)
        model = load_run(train_config(config, few_items, tmp_path / f"preserve{weight}")).eval()
        with torch.no_grad():
            return float(1 - (torch.nn.functional.normalize(model(pixels)) * start).sum(-1).mean())

    free, held = drift(0.0), drift(100.0)
    assert held < 0.5 * free, (held, free)
