"""`pocketvec bench`: the public benchmark, every model in every form, written to BENCHMARKS.md."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import typer
from rich.console import Console

from pocketvec.runtime.gallery_views import MAX_VIEWS, GalleryViews


def bench(
    quick: bool = typer.Option(False, "--quick", help="Smoke test: 6 pages, 6 flags, 10 look-alikes, 2 photos each."),
    out: Path = typer.Option(Path("docs/BENCHMARKS.md"), "--out", help="Markdown report to write."),
    images: Path = typer.Option(None, "--images", help="Folder for the plots (default: <out folder>/images)."),
    work: Path = typer.Option(None, "--work", help="Working folder: gallery, photos, exports, results "
                              "(default: <cache>/bench)."),
    pages: int = typer.Option(None, "--pages", min=0, help="Document pages in the gallery (default 150)."),
    flags: int = typer.Option(None, "--flags", min=0, help="Flags in the gallery (default 150)."),
    lookalike_groups: int = typer.Option(None, "--lookalike-groups", min=0, help="Groups of 5 look-alikes in the "
                                         "stress tier, half pages and half flags (default 51: 255 items)."),
    photos: int = typer.Option(None, "--photos", min=1, help="Simulated query photos per item (default 5)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the photo simulator."),
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
                                      "gallery build --views` (0: the clean image alone, as before stop 25)."),
) -> None:
    """Benchmark the teacher, Lite0 and the student (zero-shot and enrolled) on the public benchmark's three tiers
    (pages, flags, look-alike stress), each its own gallery.

    Example: pocketvec bench --quick --out /tmp/BENCH.md
    """
    from dataclasses import replace

    from pocketvec.bench.dataset import BenchConfig
    from pocketvec.bench.report import write_markdown, write_plots, write_query_sheet
    from pocketvec.bench.run import QUICK, BenchOptions, run_benchmark
    from pocketvec.output_paths import check_output_file, check_output_folder

    check_output_file(out, "--out")
    for option, folder in (("--images", images), ("--work", work)):
        if folder is not None:
            check_output_folder(folder, option)
    config = QUICK if quick else BenchConfig()
    overrides = {k: v for k, v in (("pages", pages), ("flags", flags), ("queries_per_item", photos)) if v is not None}
    if lookalike_groups is not None:
        pages_groups = lookalike_groups // 2
        overrides.update(lookalike_page_groups=pages_groups, lookalike_flag_groups=lookalike_groups - pages_groups)
    config = replace(config, seed=seed, **overrides)
    from pocketvec.data.sources import cache_root

    work = work or (cache or cache_root()) / ("bench-quick" if quick else "bench")
    options = BenchOptions(work=work, config=config, models=tuple(m for m in models.split(",") if m),
                           forms=tuple(f for f in forms.split(",") if f), student_run=student, cache=cache,
                           enroll_args=tuple(enroll_arg), slow_form_items=coreml_items,
                           gallery_views=GalleryViews(count=gallery_views))
    document = run_benchmark(options)
    images = images or out.parent / "images"
    plots = write_plots(document["results"], images)
    for tier, bench_set in document["bench_sets"].items():
        plots.append(write_query_sheet(bench_set.gallery_paths, bench_set.query_paths, bench_set.query_labels,
                                       bench_set.gallery_labels, images / f"bench_queries_{tier}.png"))
    command = "pocketvec " + " ".join(shlex.quote(a) for a in sys.argv[1:]) if sys.argv[1:] else "pocketvec bench"
    write_markdown(document, out, plots, command, list(note))
    ok = sum(r["status"] == "ok" for r in document["results"])
    Console().print(f"[bold]bench[/]: {ok}/{len(document['results'])} model forms measured; wrote {out} and "
                    f"{', '.join(str(p) for p in plots)} (results: {work / 'results.json'})")
