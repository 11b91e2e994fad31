"""Small helpers shared by the command modules."""

from __future__ import annotations

import typer

from pocketvec.errors import NotBuiltYet

TEXT = typer.Option(None, "--text/--no-text",
                    help="Text verification: read the items' printed text at enrolment and, where look-alikes' texts "
                         "differ, the photo's (needs pip install 'pocketvec\\[text]'). Default: on where installed and "
                         "the gallery keeps texts.")


def not_built(command: str, issue: str) -> None:
    raise NotBuiltYet(f"`pocketvec {command}` is not built yet ({issue}).")
