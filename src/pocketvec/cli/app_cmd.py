"""`pocketvec app`: not built yet (issue #6)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="pocketvec app (not built yet). Example: pocketvec app --help", no_args_is_help=True)


@app.command("serve")
def serve_command() -> None:
    """Not built yet. Example: pocketvec app serve --help"""
    not_built("app serve", "issue #6")
