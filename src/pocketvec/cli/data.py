"""`pocketvec data preview`: not built yet (issue #2)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built

app = typer.Typer(help="Item data: public sets and phone-photo previews. Example: pocketvec data list",
                  no_args_is_help=True)


@app.command("preview")
def preview_command() -> None:
    """Not built yet. Example: pocketvec data preview items/ --out sheet.png"""
    not_built("data preview", "issue #2")
