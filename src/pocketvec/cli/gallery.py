"""`pocketvec gallery`: not built yet (issue #5)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="pocketvec gallery (not built yet). Example: pocketvec gallery --help", no_args_is_help=True)


@app.command("build")
def build_command() -> None:
    """Not built yet. Example: pocketvec gallery build --help"""
    not_built("gallery build", "issue #5")


@app.command("add")
def add_command() -> None:
    """Not built yet. Example: pocketvec gallery add --help"""
    not_built("gallery add", "issue #5")


@app.command("remove")
def remove_command() -> None:
    """Not built yet. Example: pocketvec gallery remove --help"""
    not_built("gallery remove", "issue #5")


@app.command("info")
def info_command() -> None:
    """Not built yet. Example: pocketvec gallery info --help"""
    not_built("gallery info", "issue #5")
