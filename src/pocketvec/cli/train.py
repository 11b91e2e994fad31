"""`pocketvec train`: train an encoder from a preset or a JSON config; `pocketvec train merge`."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pocketvec.cli import choices, ranged, train_lists
from pocketvec.cli.choices import GPU_PRESETS
from pocketvec.cli.output import console, safe
from pocketvec.errors import ConfigError

app = typer.Typer(help="Train an encoder. Example: pocketvec train --preset enroll --data items/ --out runs/enroll",
                  invoke_without_command=True)


def parse_set(values: list[str]) -> dict:
    """`--set key=value` pairs (also read by experiments/); values are JSON when they parse as JSON, else strings."""
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
    preset: str = choices.option("", "--preset", what="preset", choices=choices.PRESETS,
                                 help="Preset name: enroll, enroll-small, base, base-gpu, base-imagenet,"
                                      " small, small-gpu or "
                                      "smoke (see --list-presets)."),
    config: Path = typer.Option(None, "--config", help="A JSON training config, or a run's config.json "
                                "(instead of --preset)."),
    data: Path = typer.Option(None, "--data", help="Item folder or CSV manifest (path,label)."),
    out: Path = typer.Option(None, "--out", help="Run folder to write (an unfinished run there is resumed)."),
    epochs: int | None = ranged.option(None, "--epochs", key="epochs", help="Override the number of epochs."),
    input_size: int | None = ranged.option(None, "--input-size", key="preprocess.input_size",
                                           help="Override the input size in px (the presets use 160-224)."),
    teacher: str = typer.Option(None, "--teacher", help="Teacher: efficientnet_lite2, base, small or a checkpoint "
                                "folder."),
    teacher_photos: Path = typer.Option(None, "--teacher-photos", help="Train from a teacher-photo cache "
                                        "(`pocketvec train cache`): no teacher or photo simulation while training."),
    seed: int | None = ranged.option(None, "--seed", key="seed", help="Override the random seed."),
    budget: str = typer.Option("", "--budget", help="Wall time for the whole run, e.g. 30m, 90s or 1.5h: the "
                               "steps are fitted to it (instead of epochs and max_steps)."),
    time_limit: float = typer.Option(0, "--time-limit",
                                     help="Stop after this many seconds of training and write the run as it is."),
    set_: list[str] = typer.Option([], "--set", help="Any setting as dotted KEY=VALUE, e.g. margin.kind=cosface."),
    list_presets: bool = typer.Option(False, "--list-presets", help="List the presets and exit."),
    list_what: str = choices.option(None, "--list", what="list", choices=train_lists.LISTS,
                                    help="List what can be used and exit: " + " | ".join(train_lists.LISTS)
                                    + " (filter with --match)."),
    match: str = typer.Option("*", "--match", help="Glob for --list, e.g. '*lcnet*'."),
    print_config: bool = typer.Option(False, "--print-config", help="Print the full config (preset or --config "
                                      "with the overrides) as JSON, usable with --config, and exit."),
    as_json: bool = typer.Option(False, "--json", help="Print the finished run's summary as JSON."),
) -> None:
    """Train from a preset or config. Example: pocketvec train --preset enroll --data items/ --out runs/enroll
    (or with --budget 30m: the steps fitted to 30 minutes)"""
    if ctx.invoked_subcommand is not None:
        return
    if list_presets or list_what:
        print("\n".join(train_lists.entries(list_what or "presets", match)))
        return
    if bool(preset) == bool(config):
        raise ConfigError("give exactly one of --preset NAME or --config FILE")
    overrides = parse_set(set_)
    if "policy" in overrides:  # a real choice, checked before torch loads
        overrides["policy"] = choices.normalize("policy", str(overrides["policy"]), choices.POLICIES)
    if not print_config and (data is None or out is None):
        raise ConfigError("--data DIR and --out RUN_DIR are required")
    if not print_config and not data.exists():  # before torch loads: a typo costs a second, not twenty
        from pocketvec.errors import DatasetError

        raise DatasetError(f"{data}: no such file or folder")
    from pocketvec.train.config import load_train_config
    from pocketvec.train.presets import preset_config
    from pocketvec.train.run import train_config

    if not print_config:
        from pocketvec.output_paths import check_output_folder

        check_output_folder(out, "--out")
    base = preset_config(preset, overrides.get("init")) if preset else load_train_config(config)
    if budget:
        from pocketvec.train.budget import parse_budget

        overrides["budget_s"] = parse_budget(budget)
    for key, value in (("epochs", epochs), ("encoder.preprocess.input_size", input_size),
                       ("time_limit_s", time_limit), ("teacher_photos", str(teacher_photos or ""))):
        if value:
            overrides[key] = value
    if teacher is not None:
        overrides["teacher"] = teacher
    if seed is not None:
        overrides["seed"] = seed
    from pocketvec.train.distributed import rank_and_world

    final = base.with_overrides(overrides) if overrides else base
    if print_config:
        print(json.dumps(final.to_dict(), indent=2))
        return
    if preset in GPU_PRESETS:
        _warn_without_gpu(preset)
    run_dir = train_config(final, data, out)
    if rank_and_world()[0] == 0:
        _report(run_dir, as_json)


def _warn_without_gpu(preset: str) -> None:
    """A GPU preset on a machine without CUDA runs, but on the CPU: say so before the bar sits at 0 for hours."""
    import warnings

    import torch

    from pocketvec.errors import PocketvecWarning

    if not torch.cuda.is_available():
        warnings.warn(PocketvecWarning(
            f"preset {preset} is sized for a GPU and this machine has no CUDA device: it trains on the CPU, "
            "far too slowly to finish (on a CPU: --preset base, or enroll on your items)"), stacklevel=2)


def _report(run_dir: Path, as_json: bool = False) -> None:
    from pocketvec.train.checkpoint import read_run_config

    config = read_run_config(run_dir)
    if as_json:
        keys = ("embedding_space_id", "steps", "total_steps", "history", "kept")
        print(json.dumps({"run_dir": str(run_dir), "finished": "history" in config,
                          **{k: config[k] for k in keys if k in config}}, indent=2))
        return
    if "history" not in config:
        console.print(f"stopped early: resumable state in {safe(run_dir)}/resume")
        return
    history, kept = config["history"], config.get("kept", {})
    if history:
        console.print(history_table(history, kept.get("epoch")), soft_wrap=False)
    if kept:
        console.print(f"[bold]{safe(kept['verdict'])}[/]")
    if "query_crop" in config:
        crops = config["query_crop"]
        when = "end" if "held_out_at_end" in crops else "start"  # runs before the end's choice: the start's
        scores = ", ".join(f"{safe(crop)} {m['decision_recall']:.3f} / {m['recall_at_1']:.3f}"
                           for crop, m in crops[f"held_out_at_{when}"].items())
        console.print(f"photos' crop: {safe(crops['chosen'])} (held-out decision recall / Recall@1 "
                      f"at the {when}: {scores})")
    alpha = config.get("train", {}).get("wise_alpha", 1.0)
    if alpha < 1.0:
        console.print(f"weights shipped: start + {alpha:g} x (fine-tuned - start), WiSE-FT "
                      "(--set wise_alpha=1 ships the fine-tuned weights as they are)")
    console.print(f"[green]run written:[/] {safe(run_dir)}  steps {safe(config.get('steps'))}  "
                  f"embedding space {safe(config['embedding_space_id'])}")


def history_table(history: list[dict], kept_epoch: int | None):
    """The held-out evaluation of each epoch (0 = the start), the kept one marked."""
    from rich.table import Table

    table = Table(title="held-out validation photos: gallery as built, photos' crop, re-rank (weights as shipped)",
                  title_justify="left")
    for name in ("epoch", "decision recall (P ≥ 0.99)", "Recall@1", "threshold", "margin", "mean cos", "kept"):
        table.add_column(name, justify="right")
    for h in history:
        table.add_row("start" if h["epoch"] == 0 else str(h["epoch"]), f"{h['decision_recall']:.3f}",
                      f"{h['recall_at_1']:.3f}", f"{h['threshold']:.2f}", f"{h['margin']:.2f}",
                      f"{h['mean_cosine']:.2f}", "◀" if h["epoch"] == kept_epoch else "")
    return table


@app.command("cache")
def cache_command(
    preset: str = choices.option("small", "--preset", what="preset", choices=choices.PRESETS,
                                 help="The training preset whose teacher, pool policy and batches are cached."),
    data: Path = typer.Option(..., "--data", help="Item folder or CSV manifest (path,label): the training pool."),
    out: Path = typer.Option(..., "--out", help="Cache folder to write (an unfinished one there is resumed)."),
    steps: int = typer.Option(..., "--steps", help="Training batches to simulate and embed."),
    workers: int = typer.Option(1, "--workers", help="Processes simulating photos while the teacher runs."),
    local_scores: bool = typer.Option(False, "--local-scores", help="Also score each photo against its own class "
                                      "and the teacher's 3 nearest on its stride-16 map (for local_distill_weight)."),
    set_: list[str] = typer.Option([], "--set", help="Any setting as dotted KEY=VALUE, e.g. batch_classes=64."),
) -> None:
    """Embed simulated training photos with the frozen teacher once and store them, so a student trains
    against them without the teacher. Example: pocketvec train cache --preset small --data pool.csv
    --out teacher-photos --steps 200; then pocketvec train --preset small --data pool.csv --teacher-photos
    teacher-photos --out runs/small. With --local-scores, train with --set local_distill_weight=W
    (W=50 measured: no gain on look-alikes, docs/TRAINING.md)."""
    from pocketvec.output_paths import check_output_folder
    from pocketvec.train.photo_cache import build_photo_cache, read_spec
    from pocketvec.train.presets import preset_config

    check_output_folder(out, "--out")
    overrides = parse_set(set_)
    config = preset_config(preset, overrides.get("init"))
    config = config.with_overrides(overrides) if overrides else config
    folder = build_photo_cache(config, data, out, steps, workers)
    if local_scores:
        from pocketvec.train.local_scores import build_local_scores

        build_local_scores(config, data, folder)
    spec = read_spec(folder)
    console.print(f"[green]teacher photos written:[/] {safe(folder)}  {spec.steps} steps × {spec.batch_size} photos "
                  f"at {spec.photo_size} px, teacher {safe(spec.teacher_id)}")


@app.command("merge")
def merge_command(run_dir: Path = typer.Argument(..., help="The run folder.")) -> None:
    """Fold a run's adapters into plain weights. Example: pocketvec train merge runs/enroll"""
    from pocketvec.train.checkpoint import read_run_config
    from pocketvec.train.merge import merge_run

    merge_run(run_dir)
    console.print(f"[green]merged:[/] {safe(run_dir)}/model.safetensors "
                  f"(embedding space {safe(read_run_config(run_dir)['embedding_space_id'])})")
