"""`pocketvec train`: not built yet (issue #3)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="Train an encoder (not built yet). Example: pocketvec train --preset enroll --data DIR",
                  invoke_without_command=True)


@app.callback()
def train(ctx: typer.Context) -> None:
    """Not built yet. Example: pocketvec train --preset enroll --data items/ --out runs/enroll"""
    if ctx.invoked_subcommand is None:
        not_built("train", "issue #3")


@app.command("merge")
def merge_command() -> None:
    """Not built yet. Example: pocketvec train merge runs/enroll"""
    not_built("train merge", "issue #3")
