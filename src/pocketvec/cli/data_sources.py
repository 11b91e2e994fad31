"""`pocketvec data fetch|list`: build the public item sets from Debian/npm packages into the cache."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pocketvec.cli import ranged
from pocketvec.cli.output import console, safe
from pocketvec.data.sources import SOURCES, cache_root, cache_status, read_manifest, source_names


def register(app: typer.Typer) -> None:
    app.command("fetch")(fetch)
    app.command("list")(list_sets)
    app.command("pool")(pool)


def fetch(
    name: str = typer.Argument(..., help=f"Set to build: {', '.join(source_names())}, 'pool' (every training "
                               "set) or 'all'."),
    limit: int = typer.Option(None, "--limit", min=1, help="Render only N items (spread evenly, deterministic)."),
    cache: Path = typer.Option(None, "--cache", help="Cache folder (default: $POCKETVEC_CACHE or ~/.cache/pocketvec)."),
) -> None:
    """Build a public item set into the cache (idempotent and resumable).

    Example: pocketvec data fetch flag-icons --limit 50   (every training set: pocketvec data fetch pool)
    """
    from pocketvec.data.pool_build import training_sets
    from pocketvec.data.sources import get_source
    from pocketvec.data.sources.fetch import fetch_set

    names = {"all": source_names(), "pool": training_sets()}.get(name) or [get_source(name).name]
    for set_name in names:
        result = fetch_set(set_name, limit=limit, root=cache)
        state = "complete" if result.complete else f"partial (--limit {limit})"
        console.print(f"[bold]{set_name}[/]: {result.items} items in {safe(result.folder)} "
                      f"({result.rendered} rendered now, {result.skipped} skipped as blank/duplicate/unusable; "
                      f"{state})")


def list_sets(
    cache: Path = typer.Option(None, "--cache", help="Cache folder (default: $POCKETVEC_CACHE or ~/.cache/pocketvec)."),
) -> None:
    """Show every public set: its source, licence, role and what is cached.

    Example: pocketvec data list
    """
    root = cache or cache_root()
    table = Table(title=f"pocketvec data sets (cache: {safe(root)})")
    for column in ("set", "role", "kind", "source", "licence", "cached items", "full set", "size", "state"):
        table.add_column(column, overflow="fold")
    for name, spec in SOURCES.items():
        status = cache_status(name, root)
        state = "complete" if status.complete else ("partial" if status.items else "not fetched")
        planned = read_manifest(status.path).get("planned", "?") if status.items else "?"
        table.add_row(name, spec.role, spec.kind, spec.origin, spec.licence, str(status.items), str(planned),
                      f"{status.bytes / 1e6:.1f} MB", state)
    console.print(table, soft_wrap=False)  # cells fold to the width


def pool(
    out: Path = typer.Argument(..., help="CSV manifest to write (path,label)."),
    sets: list[str] = typer.Option(None, "--set", help="NAME=COUNT (COUNT 'all': every item); repeatable. "
                                   "Default: every fetched training set, all items."),
    seed: int = ranged.option(0, "--seed", key="seed", help="Seed of the per-set shuffle that picks COUNT items."),
    no_dedupe: bool = typer.Option(False, "--no-dedupe", help="Skip the duplicate check across sets."),
) -> None:
    """Write a training pool manifest from the fetched training sets and report its mix.

    Benchmark and background sets are refused; the same picture in two sets becomes one class.
    Example: pocketvec data pool pool.csv --set icons-tabler=500 --set clipart=all
    """
    from pocketvec.data.pool_build import training_sets
    from pocketvec.errors import DatasetError
    from pocketvec.train.pool import build_pool, write_manifest

    if sets:
        try:
            counts = {k: None if v == "all" else int(v) for k, v in (item.split("=", 1) for item in sets)}
        except ValueError as e:
            raise DatasetError(f"--set takes NAME=COUNT (a number or 'all'). Got {sets} ({e}).") from e
    else:
        root = cache_root()
        counts = {n: None for n in training_sets() if cache_status(n, root).items}
    built = build_pool(counts, seed, dedupe=not no_dedupe)
    write_manifest(out, built.rows)
    table = Table(title=f"{safe(out)}: {len(built.rows)} items, {built.classes} classes")
    table.add_column("kind")
    table.add_column("items", justify="right")
    for kind, n in sorted(built.per_kind.items(), key=lambda kv: -kv[1]):
        table.add_row(kind, str(n))
    console.print(table, soft_wrap=False)
    console.print("per set: " + ", ".join(f"{k} {v}" for k, v in built.per_set.items()))
    if built.dedupe:
        d = built.dedupe
        console.print(f"dropped {d.identical_bytes} byte-identical copies and {d.excluded} benchmark items; "
                      f"{d.relabelled} items share a class with the same picture from another item")
