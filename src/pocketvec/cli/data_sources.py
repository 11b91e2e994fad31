"""`pocketvec data fetch|list`: not built yet (issue #2)."""

from __future__ import annotations

import typer

from pocketvec.cli._common import not_built


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
    app.command("list")(list_sets)


def fetch() -> None:
    """Not built yet. Example: pocketvec data fetch flag-icons"""
    not_built("data fetch", "issue #2")


def list_sets() -> None:
    """Not built yet. Example: pocketvec data list"""
    not_built("data list", "issue #2")
