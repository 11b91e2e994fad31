"""`pocketvec export`: not built yet (issue #4)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="pocketvec export (not built yet). Example: pocketvec export --help", no_args_is_help=True)


@app.command("onnx")
def onnx_command() -> None:
    """Not built yet. Example: pocketvec export onnx --help"""
    not_built("export onnx", "issue #4")


@app.command("coreml")
def coreml_command() -> None:
    """Not built yet. Example: pocketvec export coreml --help"""
    not_built("export coreml", "issue #4")
