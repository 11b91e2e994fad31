"""`pocketvec bench`: the public benchmark, every model in every form, written to BENCHMARKS.md;
`pocketvec bench scale`: what galleries of 10k to 1M items cost (size, build, match latency, memory)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer

from pocketvec.cli import choices, ranged
from pocketvec.cli.output import console, safe
from pocketvec.runtime.gallery.views import MAX_VIEWS, GalleryViews

SPLITS = ("test", "dev")  # pocketvec.bench.dataset.SPLITS (tests/bench keeps them equal)

app = typer.Typer(invoke_without_command=True)


@app.callback()
def bench(
    ctx: typer.Context,
    quick: bool = typer.Option(False, "--quick", help="Smoke test: 6 pages, 6 flags, 10 look-alikes, 10 label "
                               "editions, 2 photos each."),
    split: str = choices.option("test", "--split", what="split", choices=SPLITS,
                                help="test: the reported benchmark. dev: its own items and photo seed, smaller "
                                "(100 pages, 100 flags, 40 look-alike groups, 30 label designs), for choosing settings;"
                                " built in <work>/dev/, fetches both sets in full."),
    out: Path = typer.Option(None, "--out", help="Markdown report to write (default: docs/BENCHMARKS.md; "
                             "--split dev: <work>/dev/BENCHMARKS.md)."),
    images: Path = typer.Option(None, "--images", help="Folder for the plots (default: <out folder>/images)."),
    work: Path = typer.Option(None, "--work", help="Working folder: gallery, photos, exports, results "
                              "(default: <cache>/bench)."),
    pages: int = typer.Option(None, "--pages", min=0, help="Document pages in the gallery (default 150; dev 100)."),
    flags: int = typer.Option(None, "--flags", min=0, help="Flags in the gallery (default 150; dev 100)."),
    lookalike_groups: int = typer.Option(None, "--lookalike-groups", min=0, help="Groups of 5 look-alikes in the "
                                         "stress tier, half pages and half flags (default 51: 255 items; dev 40)."),
    labels: int = typer.Option(None, "--labels", min=0, help="Label designs in the label-editions tier, 5 editions "
                               "each (default 40: 200 items; dev 30; 0 leaves the tier out)."),
    photos: int = typer.Option(None, "--photos", min=1, help="Simulated query photos per item (default 5)."),
    seed: int = ranged.option(0, "--seed", key="seed",
                              help="Seed of the photo simulator (the dev split draws with seed + 1)."),
    coreml_items: int = typer.Option(15, "--coreml-items", min=1, help="Items (with all their photos) that the "
                                     "slow Core ML interpreter embeds."),
    models: str = typer.Option("teacher,lite0,student,small,enrolled,enrolled-small", "--models",
                               help="Comma-separated models: teacher, lite0, student, small (the distilled small "
                               "student), enrolled, enrolled-small (enroll-small from the small student)."),
    forms: str = typer.Option("torch-fp32,onnx-fp32,onnx-int8,coreml-int8", "--forms", help="Comma-separated forms."),
    student: Path = typer.Option(None, "--student", help="Run folder of the base student (zero-shot)."),
    note: list[str] = typer.Option([], "--note", help="A line to add to the report's protocol notes."),
    enroll_arg: list[str] = typer.Option([], "--enroll-arg", help="Extra argument for `pocketvec train --preset "
                                         "enroll` (repeat), e.g. --enroll-arg=--epochs --enroll-arg=3."),
    cache: Path = typer.Option(None, "--cache", help="Data cache (default: $POCKETVEC_CACHE or ~/.cache/pocketvec)."),
    gallery_views: int = typer.Option(GalleryViews.count, "--gallery-views", min=0, max=MAX_VIEWS,
                                      help="Simulated photos per item blended into its gallery row, as `pocketvec "
                                      "gallery build --views` (0: the clean image alone)."),
    text: bool = typer.Option(True, "--text/--no-text", help="Also measure text verification (where the "
                              "pocketvec\\[text] extra is installed): the items' and photos' text read once "
                              "and kept beside each tier."),
    item_zoom: bool = typer.Option(True, "--item-zoom/--no-item-zoom", help="Exported forms answer each photo zoomed "
                                   "to its item, as the runtime does by default (--no-item-zoom: the first pass)."),
) -> None:
    """Benchmark the teacher, Lite0 and the student (zero-shot and enrolled) on the public benchmark's four tiers
    (pages, flags, look-alike stress, label editions), each its own gallery. Tables lead with the decision: recall
    at held-out precision >= 0.99 of the accept rule calibrated on `data photos` of the gallery; then Recall@1.

    Choose settings on the dev split, report the test split. `pocketvec bench scale --help`: gallery size, build,
    match latency and memory at 10k-1M items. Examples: pocketvec bench --quick --out /tmp/BENCH.md;
    pocketvec bench --split dev --models student,enrolled
    """
    if ctx.invoked_subcommand is not None:
        return
    from dataclasses import replace

    from pocketvec.bench.dataset import DEV, TEST, split_folder
    from pocketvec.bench.report import write_markdown, write_plots, write_query_sheet
    from pocketvec.bench.run import QUICK, BenchOptions, run_benchmark
    from pocketvec.data.sources import cache_root
    from pocketvec.output_paths import check_output_file, check_output_folder
    from pocketvec.runtime.text_reader import DEFAULT_MODELS

    for option, folder in (("--images", images), ("--work", work)):
        if folder is not None:
            check_output_folder(folder, option)
    work = work or (cache or cache_root()) / ("bench-quick" if quick else "bench")
    out = out or (Path("docs/BENCHMARKS.md") if split == "test" else split_folder(work, split) / "BENCHMARKS.md")
    check_output_file(out, "--out")
    config = replace(QUICK, split=split) if quick else (DEV if split == "dev" else TEST)
    overrides = {k: v for k, v in (("pages", pages), ("flags", flags), ("label_designs", labels),
                                   ("queries_per_item", photos)) if v is not None}
    if lookalike_groups is not None:
        pages_groups = lookalike_groups // 2
        overrides.update(lookalike_page_groups=pages_groups, lookalike_flag_groups=lookalike_groups - pages_groups)
    config = replace(config, seed=seed, **overrides)
    options = BenchOptions(work=work, config=config, models=tuple(m for m in models.split(",") if m),
                           forms=tuple(f for f in forms.split(",") if f), student_run=student, cache=cache,
                           enroll_args=tuple(enroll_arg), slow_form_items=coreml_items,
                           gallery_views=GalleryViews(count=gallery_views),
                           text_models=DEFAULT_MODELS if text else None, item_zoom=item_zoom)
    document = run_benchmark(options)
    images = images or out.parent / "images"
    plots = write_plots(document["results"], images)
    for tier, bench_set in document["bench_sets"].items():
        plots.append(write_query_sheet(bench_set.gallery_paths, bench_set.query_paths, bench_set.query_labels,
                                       bench_set.gallery_labels, images / f"bench_queries_{tier}.png"))
    command = "pocketvec " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "pocketvec bench"
    write_markdown(document, out, plots, command, list(note))
    ok = sum(r["status"] == "ok" for r in document["results"])
    console.print(f"[bold]bench[/]: {ok}/{len(document['results'])} model forms measured; wrote {safe(out)} and "
                  f"{', '.join(safe(p) for p in plots)} (results: {safe(split_folder(work, split) / 'results.json')})")


@app.command("scale")
def scale(
    model: Path = typer.Argument(..., help="Exported model (.onnx) whose galleries to size (its dim, its local maps)."),
    items: Path = typer.Option(..., "--items", help="Folder of real item images (file or sub-folder name = label) "
                               "for the build throughput, e.g. a dev tier's gallery/."),
    sizes: str = typer.Option("10k,100k,1M", "--sizes", help="Gallery sizes in items, comma-separated (k, M: "
                              "thousands, millions)."),
    queries: int = typer.Option(200, "--queries", min=1, help="Queries matched at each size (median and p99)."),
    build_items: int = typer.Option(50, "--build-items", min=1, help="Items of --items the build is timed on."),
    views: int = typer.Option(GalleryViews.count, "--views", min=0, max=MAX_VIEWS,
                              help="Simulated photos per item in the build, as `gallery build --views`."),
    dtype: str = choices.option("float32", "--dtype", what="gallery dtype", choices=choices.GALLERY_DTYPES),
    local_maps: str | None = choices.option(None, "--local-maps", what="local maps", choices=choices.LOCAL_MAPS,
                                            help="full | compact (default: compact for --dtype int8 when the model "
                                                 "carries a local codebook, else full; as `gallery build`)."),
    threads: int = typer.Option(1, "--threads", min=1, help="Inference threads of the build (matching always runs "
                                "on one)."),
    out: Path = typer.Option(None, "--out", help="Markdown report to write (default: print the table only)."),
    work: Path = typer.Option(None, "--work", help="Folder for the synthetic gallery files (default: "
                              "<cache>/bench-scale); each is deleted once measured unless --keep."),
    keep: bool = typer.Option(False, "--keep", help="Keep the synthetic gallery files."),
    seed: int = ranged.option(0, "--seed", key="seed", help="Seed of the synthetic rows and queries."),
) -> None:
    """Gallery file bytes per item, build throughput, match latency with the local re-rank (one thread, median
    and p99) and resident memory, at each size. Rows are synthetic (random unit vectors and local maps of the
    model's shape) for speed and memory; the build is real, on --build-items items, extrapolated per item. A size
    whose file or memory need does not fit this machine is skipped with the reason.

    Example: pocketvec bench scale model.onnx --items bench/dev/lookalikes/gallery --sizes 10k,100k --out scale.md
    """
    from rich.table import Table

    from pocketvec.bench.scale import TABLE_HEADER, ScaleOptions, default_work, markdown, parse_sizes, run_scale
    from pocketvec.bench.scale import goal_rows as scale_goals
    from pocketvec.bench.scale import table_rows as scale_rows
    from pocketvec.errors import ConfigError
    from pocketvec.output_paths import check_output_file, check_output_folder

    from .output import settings

    parsed = parse_sizes(sizes)
    if not items.is_dir():
        raise ConfigError(f"--items {items}: not a folder of item images")
    if out is not None:
        check_output_file(out, "--out")
    if work is not None:
        check_output_folder(work, "--work")
    options = ScaleOptions(model=model, items=items, work=work or default_work(), sizes=parsed, queries=queries,
                           build_items=build_items, views=views, dtype=dtype, local_maps=local_maps, threads=threads,
                           seed=seed, keep=keep)
    report = run_scale(options, progress=settings.progress, report=lambda line: console.print(safe(line)))
    table = Table(*TABLE_HEADER, title="gallery scale")
    for row in scale_rows(report):
        table.add_row(*(safe(cell) for cell in row))
    console.print(table)
    for goal, measured, verdict in scale_goals(report):
        console.print(f"{safe(goal)}: {safe(measured)} ({verdict})")
    if out is not None:
        command = "pocketvec " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        out.write_text(markdown(report, command), encoding="utf-8")
        console.print(f"wrote {safe(out)}")
