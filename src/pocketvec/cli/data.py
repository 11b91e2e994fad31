"""`pocketvec data`: not built yet (issue #2)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="pocketvec data (not built yet). Example: pocketvec data --help", no_args_is_help=True)


@app.command("fetch")
def fetch_command() -> None:
    """Not built yet. Example: pocketvec data fetch --help"""
    not_built("data fetch", "issue #2")


@app.command("list")
def list_command() -> None:
    """Not built yet. Example: pocketvec data list --help"""
    not_built("data list", "issue #2")


@app.command("preview")
def preview_command() -> None:
    """Not built yet. Example: pocketvec data preview --help"""
    not_built("data preview", "issue #2")
