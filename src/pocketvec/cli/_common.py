"""Small helpers shared by the command modules."""

from __future__ import annotations

import typer

from pocketvec.errors import NotBuiltYet

TEXT = typer.Option(None, "--text/--no-text",
                    help="Text verification: where look-alikes' printed texts differ, read the photo's (needs pip "
                         "install 'pocketvec\\[text]'). Default: on for a gallery that keeps its items' texts.")
READ_TEXT = typer.Option(None, "--text/--no-text",
                         help="Read each item's printed text (0.1-1 s per item) and keep it in the gallery: "
                              "look-alikes whose texts differ are then told apart by reading the photo. Default: "
                              "read when the OCR models are installed (pip install 'pocketvec\\[text]').")

ITEM_ZOOM = typer.Option(True, "--item-zoom/--no-item-zoom",
                         help="Zoom to the item: embed each photo again from the item's region, located by the local "
                              "maps (a model with a local re-rank; a second pass per photo). Calibrate as you match.")


def not_built(command: str, issue: str) -> None:
    raise NotBuiltYet(f"`pocketvec {command}` is not built yet ({issue}).")
