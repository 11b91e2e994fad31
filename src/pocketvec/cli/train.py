"""`pocketvec train`: train an encoder from a preset or a JSON config; `pocketvec train merge`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console

from pocketvec.errors import ConfigError

app = typer.Typer(help="Train an encoder. Example: pocketvec train --preset enroll --data items/ --out runs/enroll",
                  invoke_without_command=True)


def _parse_set(values: list[str]) -> dict:
    """`--set key=value` pairs; values are JSON when they parse as JSON, else strings."""
    overrides = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set needs KEY=VALUE (dotted keys reach nested settings). Got {item!r}.")
        try:
            overrides[key] = json.loads(raw)
        except ValueError:
            overrides[key] = raw
    return overrides


@app.callback()
def train(
    ctx: typer.Context,
    preset: str = typer.Option("", "--preset", help="Preset name: enroll, base, base-gpu or smoke."),
    config: Path = typer.Option(None, "--config", help="A JSON training config (instead of --preset)."),
    data: Path = typer.Option(None, "--data", help="Item folder or CSV manifest (path,label)."),
    out: Path = typer.Option(None, "--out", help="Run folder to write (an unfinished run there is resumed)."),
    epochs: int = typer.Option(0, "--epochs", help="Override the number of epochs."),
    input_size: int = typer.Option(0, "--input-size", help="Override the input size (128-256 px)."),
    teacher: str = typer.Option(None, "--teacher", help="Teacher: efficientnet_lite2 or a checkpoint folder."),
    seed: int = typer.Option(None, "--seed", help="Override the random seed."),
    time_limit: float = typer.Option(0, "--time-limit",
                                     help="Stop after this many seconds of training and write the run as it is."),
    set_: list[str] = typer.Option([], "--set", help="Any setting as dotted KEY=VALUE, e.g. margin.kind=cosface."),
) -> None:
    """Train from a preset or config. Example: pocketvec train --preset enroll --data items/ --out runs/enroll"""
    if ctx.invoked_subcommand is not None:
        return
    from pocketvec.train.config import load_train_config
    from pocketvec.train.presets import preset_config
    from pocketvec.train.run import train_config

    if bool(preset) == bool(config):
        raise ConfigError("give exactly one of --preset NAME or --config FILE")
    if data is None or out is None:
        raise ConfigError("--data DIR and --out RUN_DIR are required")
    from pocketvec.output_paths import check_output_folder

    check_output_folder(out, "--out")
    base = preset_config(preset) if preset else load_train_config(config)
    overrides = _parse_set(set_)
    for key, value in (("epochs", epochs), ("encoder.preprocess.input_size", input_size),
                       ("time_limit_s", time_limit)):
        if value:
            overrides[key] = value
    if teacher is not None:
        overrides["teacher"] = teacher
    if seed is not None:
        overrides["seed"] = seed
    from pocketvec.train.distributed import rank_and_world

    run_dir = train_config(base.with_overrides(overrides) if overrides else base, data, out)
    if rank_and_world()[0] == 0:
        _report(run_dir)


def _report(run_dir: Path) -> None:
    from pocketvec.train.checkpoint import read_run_config

    console = Console()
    config = read_run_config(run_dir)
    if "history" not in config:
        console.print(f"stopped early: resumable state in {run_dir}/resume")
        return
    history, kept = config["history"], config.get("kept", {})
    if history:
        console.print(history_table(history, kept.get("epoch")))
    if kept:
        console.print(f"[bold]{kept['verdict']}[/]")
    console.print(f"[green]run written:[/] {run_dir}  steps {config.get('steps')}  "
                  f"embedding space {config['embedding_space_id']}")


def history_table(history: list[dict], kept_epoch: int | None):
    """The held-out evaluation of each epoch (0 = the start), the kept one marked."""
    from rich.table import Table

    table = Table(title="held-out simulated photos (weights as shipped)", title_justify="left")
    for name in ("epoch", "Recall@1", "best F1", "threshold", "mean cos", "kept"):
        table.add_column(name, justify="right")
    for h in history:
        table.add_row("start" if h["epoch"] == 0 else str(h["epoch"]), f"{h['recall_at_1']:.3f}",
                      f"{h['best_f1']:.3f}", f"{h['best_threshold']:.2f}", f"{h.get('mean_cosine', float('nan')):.2f}",
                      "◀" if h["epoch"] == kept_epoch else "")
    return table


@app.command("merge")
def merge_command(run_dir: Path = typer.Argument(..., help="The run folder.")) -> None:
    """Fold a run's adapters into plain weights. Example: pocketvec train merge runs/enroll"""
    from pocketvec.train.checkpoint import read_run_config
    from pocketvec.train.merge import merge_run

    merge_run(run_dir)
    Console().print(f"[green]merged:[/] {run_dir}/model.safetensors "
                    f"(embedding space {read_run_config(run_dir)['embedding_space_id']})")
