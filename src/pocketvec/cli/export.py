"""`pocketvec export onnx|coreml`: a run folder's encoder to a phone-ready file."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import choices
from pocketvec.cli.output import console, safe
from pocketvec.file_kinds import file_size

app = typer.Typer(help="Export a trained run to ONNX or Core ML. Example: pocketvec export onnx runs/demo "
                       "--quantize int8 --out model.onnx", no_args_is_help=True)
QUANTIZE_HELP = ("none | fp16 | int8 (int8 weights per output channel, float activations; weights of 2048 "
                 "values or fewer stay float) | w8a8 (int8 weights and 8-bit activations, calibrated on images).")
QUANTIZE = choices.option("none", "--quantize", what="quantize mode", choices=choices.QUANTIZE, help=QUANTIZE_HELP)
CALIBRATION_HELP = "Image folder for w8a8 calibration (default: the run's training data, if its config records it)."
LOCAL_RERANK_HELP = ("Add the `local` output (the stride-16 feature map) and the local re-rank settings: the matcher "
                     "re-scores the 5 best labels by their local marks (docs/RUNTIME.md). "
                     "--no-local-rerank exports the embedding alone (plain cosine matching).")


def _done(path: Path) -> None:
    console.print(f"[green]wrote[/] {safe(path)} ({file_size(path) / 1e6:.2f} MB)")


@app.command("onnx")
def onnx_command(
    run_dir: Path = typer.Argument(..., help="Run folder (config.json + model.safetensors)."),
    out: Path = typer.Option(..., "--out", help="Output .onnx file."),
    quantize: str = QUANTIZE,
    calibration: Path | None = typer.Option(None, "--calibration", help=CALIBRATION_HELP),
    local_rerank: bool = typer.Option(True, "--local-rerank/--no-local-rerank", help=LOCAL_RERANK_HELP),
) -> None:
    """Export to ONNX. Example: pocketvec export onnx runs/demo --quantize int8 --out model.onnx"""
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.output_paths import check_output_file

    check_output_file(out, "--out")
    _done(export_onnx(run_dir, out, quantize, calibration, local_rerank))


@app.command("coreml")
def coreml_command(
    run_dir: Path = typer.Argument(..., help="Run folder (config.json + model.safetensors)."),
    out: Path = typer.Option(..., "--out", help="Output .mlpackage."),
    quantize: str = QUANTIZE,
    deployment_target: str = typer.Option("iOS17", "--deployment-target", help="iOS16 | iOS17 | iOS18."),
    calibration: Path | None = typer.Option(None, "--calibration", help=CALIBRATION_HELP),
    local_rerank: bool = typer.Option(True, "--local-rerank/--no-local-rerank", help=LOCAL_RERANK_HELP),
) -> None:
    """Export to a Core ML ML program. Example: pocketvec export coreml runs/demo --quantize int8 --out m.mlpackage"""
    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.output_paths import check_output_folder

    check_output_folder(out, "--out")  # an .mlpackage is a folder
    _done(export_coreml(run_dir, out, quantize, deployment_target, calibration, local_rerank))
