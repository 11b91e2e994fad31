"""`pocketvec data fetch|list`: build the public item sets from Debian/npm packages into the cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pocketvec.data.sources import SOURCES, cache_root, cache_status, source_names


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
    app.command("list")(list_sets)


def fetch(
    name: str = typer.Argument(..., help=f"Set to build: {', '.join(source_names())}, or 'all'."),
    limit: int = typer.Option(None, "--limit", min=1, help="Render only N items (spread evenly, deterministic)."),
    cache: Path = typer.Option(None, "--cache", help="Cache folder (default: $POCKETVEC_CACHE or ~/.cache/pocketvec)."),
) -> None:
    """Build a public item set into the cache (idempotent and resumable).

    Example: pocketvec data fetch flag-icons --limit 50
    """
    from pocketvec.data.source_fetch import fetch_set
    from pocketvec.data.sources import get_source

    console = Console()
    names = source_names() if name == "all" else [get_source(name).name]
    for set_name in names:
        result = fetch_set(set_name, limit=limit, root=cache)
        state = "complete" if result.complete else f"partial (--limit {limit})"
        console.print(f"[bold]{set_name}[/]: {result.items} items in {result.folder} "
                      f"({result.rendered} rendered now, {result.skipped} skipped as blank/duplicate/unusable; "
                      f"{state})")


def list_sets(
    cache: Path = typer.Option(None, "--cache", help="Cache folder (default: $POCKETVEC_CACHE or ~/.cache/pocketvec)."),
) -> None:
    """Show every public set: its source, licence, role and what is cached.

    Example: pocketvec data list
    """
    root = cache or cache_root()
    table = Table(title=f"pocketvec data sets (cache: {root})")
    for column in ("set", "role", "source", "licence", "cached items", "size", "state"):
        table.add_column(column, overflow="fold")
    for name, spec in SOURCES.items():
        status = cache_status(name, root)
        state = "complete" if status.complete else ("partial" if status.items else "not fetched")
        table.add_row(name, spec.role, spec.origin, spec.licence, str(status.items),
                      f"{status.bytes / 1e6:.1f} MB", state)
    Console().print(table)
