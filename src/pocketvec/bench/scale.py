"""`pocketvec bench scale`: what a gallery of N items costs, for N = 10k, 100k, 1M.

Per size: the bytes per item of the gallery file, match latency (one thread, median and p99, the local re-rank
on when the model has one) and resident memory, both measured in a fresh process that opens the file the public
way and matches through the real matcher (pocketvec.bench.scale_probe). The rows are synthetic (random unit
vectors and unit local maps of the model's real shape, written a chunk at a time): latency and memory do not
depend on what the rows show. Compact local maps (an int8 gallery of a model with a local codebook, or
`local_maps`) are content boxes of items 0.75 or 1.33 as wide as tall, alternately, and random codes. Build
throughput is real: `gallery build` (with views) on a few real items, timed
per item; the build time of N items is that rate extrapolated. A size whose file does not fit the disk, or whose
measured memory need does not fit the memory available, is skipped with the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pocketvec.errors import ConfigError, PocketvecError
from pocketvec.runtime.content_box import BOX_BYTES, checker_count, content_box
from pocketvec.runtime.gallery import Gallery, quantize
from pocketvec.runtime.gallery import file as gallery_file
from pocketvec.runtime.metadata import ModelMetadata
from pocketvec.runtime.unit_norm import unit_rows

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
MATCH_GOALS_MS = {100_000: 5.0, 1_000_000: 30.0}  # the issue's: one core, local re-rank on
RSS_PER_FILE_GOAL = 1.5  # resident memory <= 1.5x the gallery file
BUILD_GOAL = 50.0  # items / s
CHUNK_ROWS = 1024  # rows of local maps made and written at a time
FIRST_MEMORY_FACTOR = 4.0  # peak memory / file assumed before any size has been measured
DISK_MARGIN = 0.9  # of the free disk a file may take
MEMORY_MARGIN = 0.8  # of the available memory a probe may need
ONE_THREAD = {name: "1" for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
SUFFIXES = {"k": 1_000, "m": 1_000_000}


def parse_sizes(text: str) -> tuple[int, ...]:
    """'10k,100k,1M' (or plain integers) -> (10000, 100000, 1000000)."""
    sizes = []
    for word in (w.strip() for w in text.split(",") if w.strip()):
        found = re.fullmatch(r"(\d+)([kKmM]?)", word)
        if not found or int(found[1]) == 0:
            raise ConfigError(f"--sizes takes positive item counts such as 10k,100k,1M. Got {word!r}.")
        sizes.append(int(found[1]) * SUFFIXES.get(found[2].lower(), 1))
    if not sizes:
        raise ConfigError("--sizes is empty: give item counts such as 10k,100k,1M")
    return tuple(sorted(set(sizes)))


@dataclass(frozen=True)
class ScaleOptions:
    model: Path
    items: Path
    work: Path
    sizes: tuple[int, ...] = DEFAULT_SIZES
    queries: int = 200
    top_k: int = 3
    build_items: int = 50
    views: int = 8
    dtype: str = "float32"
    local_maps: str | None = None  # full | compact; None: the default for dtype (runtime.gallery.store)
    threads: int = 1  # inference threads of the build
    seed: int = 0
    keep: bool = False  # keep the synthetic gallery files


@dataclass
class SizeResult:
    rows: int
    file_bytes: int  # the file's size (estimated when skipped)
    skipped: str | None = None
    latencies_ms: list[float] = field(default_factory=list)
    open_s: float | None = None
    rss_before: int | None = None  # the probe process before it opened the gallery
    rss: int | None = None  # after open + matching
    peak: int | None = None

    @property
    def bytes_per_item(self) -> float:
        return self.file_bytes / self.rows

    @property
    def median_ms(self) -> float:
        return float(np.median(self.latencies_ms))

    @property
    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_ms, 99))

    @property
    def rss_per_file(self) -> float:
        return self.rss / self.file_bytes

    @property
    def gallery_memory(self) -> int:
        """The resident bytes the gallery and the matcher added to the process."""
        return self.rss - self.rss_before


@dataclass(frozen=True)
class BuildResult:
    items: int
    views: int
    seconds: float
    file_bytes: int

    @property
    def items_per_s(self) -> float:
        return self.items / self.seconds


@dataclass
class ScaleReport:
    options: ScaleOptions
    metadata: ModelMetadata
    build: BuildResult
    sizes: list[SizeResult]
    machine: dict[str, str]


def _label(row: int) -> str:
    return f"item-{row:07d}"


def synthetic_boxes(rows: int, metadata: ModelMetadata) -> np.ndarray:
    """Content boxes of items 0.75 and 1.33 as wide as tall, alternately (the dev look-alikes' shapes)."""
    spec, locations = metadata.preprocess, metadata.local_rerank.locations
    shapes = np.array([content_box(4, 3, spec, locations), content_box(3, 4, spec, locations)], np.uint8)
    return shapes[np.arange(rows) % 2]


def file_bytes_estimate(rows: int, metadata: ModelMetadata, dtype: str, compact: bool = False) -> int:
    """The synthetic gallery file's size, within a few hundred bytes: per row its embedding, its local map (full,
    or box and codes) and its label and source in the JSON header ("label", and "sha256 hex",)."""
    embedding = metadata.embedding_dim * gallery_file.DTYPES[dtype].itemsize
    shape = metadata.local_rerank.shape if metadata.local_rerank else (0, 0)
    header = len(_label(rows - 1)) + 3 + 64 + 3
    maps = rows * shape[0] * shape[1] * gallery_file.LOCAL_DTYPE.itemsize
    if compact:
        maps = rows * BOX_BYTES + int(checker_count(synthetic_boxes(rows, metadata)).sum()) * \
            metadata.local_rerank.codebook.subvectors
    return rows * (embedding + header) + maps


def synthetic_gallery(path: Path, rows: int, metadata: ModelMetadata, dtype: str, seed: int,
                      advance: Callable[[int], None] = lambda n: None, compact: bool = False) -> Path:
    """A valid gallery file of `rows` random items for the model: unit rows, unit local maps (float16) of the
    model's shape (`compact`: `synthetic_boxes` and random codes), labels item-0000001..., sources the sha256 of
    the row number. Written a chunk at a time."""
    rng = np.random.default_rng(seed)
    vectors = np.concatenate([quantize(unit_rows(rng.standard_normal((min(CHUNK_ROWS * 64, rows - s),
                                                                   metadata.embedding_dim), np.float32)), dtype)
                              for s in range(0, rows, CHUNK_ROWS * 64)])
    labels = [_label(i) for i in range(rows)]
    sources = [hashlib.sha256(i.to_bytes(8, "little")).hexdigest() for i in range(rows)]
    # the header of these rows; the maps are streamed, not held (this object's own `locals` stays empty)
    gallery = Gallery(metadata.embedding_space_id, metadata.embedding_dim, dtype, labels, sources, vectors,
                      local_shape=metadata.local_rerank.shape if metadata.local_rerank else None,
                      model_digest=metadata.weights_digest)
    if compact:
        return _synthetic_compact(path, gallery, metadata, rng, advance)

    def maps() -> Iterator[np.ndarray]:
        for start in range(0, rows, CHUNK_ROWS):
            n = min(CHUNK_ROWS, rows - start)
            chunk = rng.random((n, *gallery.local_shape), np.float32)
            chunk -= 0.5
            yield unit_rows(chunk).astype(gallery_file.LOCAL_DTYPE)
            advance(n)

    return gallery_file.write_streamed(path, gallery.header(), vectors, maps() if gallery.local_shape else None)


def _synthetic_compact(path: Path, gallery: Gallery, metadata: ModelMetadata, rng: np.random.Generator,
                       advance: Callable[[int], None]) -> Path:
    codebook = metadata.local_rerank.codebook
    boxes = synthetic_boxes(gallery.count, metadata)
    coded = int(checker_count(boxes).sum())
    header = gallery.header() | {"local_codes": {"digest": codebook.digest, "subvectors": codebook.subvectors},
                                 "coded_locations": coded}

    def chunks() -> Iterator[np.ndarray]:
        yield boxes
        step = CHUNK_ROWS * 49
        for start in range(0, coded, step):
            n = min(step, coded - start)
            yield rng.integers(0, 256, (n, codebook.subvectors), np.uint8)
            advance(min(gallery.count, (start + n) * gallery.count // coded) - start * gallery.count // coded)

    return gallery_file.write_streamed(path, header, gallery.vectors, chunks())


def measure_build(options: ScaleOptions, work: Path, progress: bool) -> BuildResult:
    """`gallery build` (the library call the command makes, with views; printed text not read) on the first
    `build_items` entries of the items folder, timed after a one-item warm-up, up to the gallery's bytes."""
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import build_gallery
    from pocketvec.runtime.gallery.views import GalleryViews
    from pocketvec.runtime.images import IMAGE_SUFFIXES

    entries = sorted(p for p in options.items.iterdir() if not p.name.startswith(".")
                     and (p.is_dir() or p.suffix.lower() in IMAGE_SUFFIXES))[: options.build_items]
    if not entries:
        raise ConfigError(f"--items {options.items}: no item images (or label folders) in it")
    folder = _copied(entries, work / "build-items")
    engine = open_engine(options.model, "auto", options.threads)
    build_gallery(engine, _copied(entries[:1], work / "warm-up-item"), options.dtype,
                  views=GalleryViews(count=options.views), local_maps=options.local_maps)  # warm-up: not timed
    start = time.perf_counter()
    gallery, _ = build_gallery(engine, folder, options.dtype, progress=progress,
                               views=GalleryViews(count=options.views), local_maps=options.local_maps)
    data = gallery.to_bytes()
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    shutil.rmtree(work / "warm-up-item")
    return BuildResult(gallery.count, options.views, seconds, len(data))


def _copied(entries: list[Path], folder: Path) -> Path:
    """A fresh folder holding copies of these item images (or label folders)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for entry in entries:
        (shutil.copytree if entry.is_dir() else shutil.copy)(entry, folder / entry.name)
    return folder


def _memory_available() -> int | None:
    meminfo = Path("/proc/meminfo")
    if not meminfo.is_file():
        return None
    fields = dict(line.split(":", 1) for line in meminfo.read_text().splitlines() if ":" in line)
    return int(fields["MemAvailable"].split()[0]) * 1024


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def skip_reason(file_bytes: int, work: Path, memory_factor: float, factor_from: str) -> str | None:
    """Why a size cannot run here (the file does not fit the disk, or the probe's memory need the memory
    available), or None."""
    free = shutil.disk_usage(work).free
    if file_bytes > DISK_MARGIN * free:
        return f"the {_gb(file_bytes)} file does not fit the {_gb(free)} free on the disk"
    available = _memory_available()
    need = memory_factor * file_bytes
    if available is not None and need > MEMORY_MARGIN * available:
        return (f"opening and matching would need about {_gb(need)} of memory ({memory_factor:.1f}x the "
                f"{_gb(file_bytes)} file, {factor_from}); {_gb(available)} is available")
    return None


def run_probe(path: Path, metadata: ModelMetadata, options: ScaleOptions) -> dict:
    """The fresh process's measurements (pocketvec.bench.scale_probe), on one thread."""
    command = [sys.executable, "-m", "pocketvec.bench.scale_probe", str(path), "--queries", str(options.queries),
               "--top-k", str(options.top_k), "--seed", str(options.seed)]
    if metadata.local_rerank is not None:  # in a file: the codebook's base64 is ~120 KB, near one argument's limit
        settings = options.work / "rerank.json"
        settings.write_text(json.dumps(metadata.local_rerank.to_dict()))
        command += ["--rerank-file", str(settings)]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **ONE_THREAD})
    if done.returncode != 0:
        raise PocketvecError(f"{path}: the match probe failed (exit {done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure_size(rows: int, metadata: ModelMetadata, options: ScaleOptions, memory_factor: float,
                 factor_from: str, progress: bool) -> SizeResult:
    from pocketvec.runtime.progress import progress_bar

    path = options.work / f"scale-{rows}.pvg"
    compact = is_compact(metadata, options)
    estimate = file_bytes_estimate(rows, metadata, options.dtype, compact)
    reason = skip_reason(estimate, options.work, memory_factor, factor_from)
    if reason:
        return SizeResult(rows, estimate, skipped=reason)
    with progress_bar(f"writing a gallery of {rows:,} synthetic items", rows, progress) as advance:
        synthetic_gallery(path, rows, metadata, options.dtype, options.seed, advance, compact)
    try:
        found = run_probe(path, metadata, options)
        result = SizeResult(rows, path.stat().st_size, latencies_ms=found["latencies_ms"], open_s=found["open_s"],
                            rss_before=found["rss_before"], rss=found["rss"], peak=found["peak"])
    finally:
        if not options.keep:
            path.unlink(missing_ok=True)
    return result


def is_compact(metadata: ModelMetadata, options: ScaleOptions) -> bool:
    """Whether the galleries keep compact local maps (as `gallery build` would with these options)."""
    from pocketvec.runtime.gallery.store import resolve_local_maps

    return metadata.local_rerank is not None and \
        resolve_local_maps(options.local_maps, options.dtype, metadata) == "compact"


def run_scale(options: ScaleOptions, progress: bool = True,
              report: Callable[[str], None] = lambda line: None) -> ScaleReport:
    """Every size, smallest first; each measured size's peak memory per file byte decides whether the next fits."""
    from pocketvec.runtime.engines import open_engine

    options.work.mkdir(parents=True, exist_ok=True)
    metadata = open_engine(options.model, "auto", 1).metadata
    report(f"build: `gallery build` with {options.views} views on up to {options.build_items} items of {options.items}")
    build = measure_build(options, options.work, progress)
    results: list[SizeResult] = []
    factor, factor_from = FIRST_MEMORY_FACTOR, "a first guess: no size measured yet"
    for rows in options.sizes:
        report(f"{rows:,} items")
        result = measure_size(rows, metadata, options, factor, factor_from, progress)
        results.append(result)
        if result.skipped is None:
            factor = max(1.0, (result.peak - result.rss_before) / result.file_bytes)
            factor_from = f"as measured at {rows:,} items"
    return ScaleReport(options, metadata, build, results, machine_description())


def machine_description() -> dict[str, str]:
    import platform

    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    memory = _memory_available()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": str(os.cpu_count()), "memory available": _gb(memory) if memory else "unknown",
            "load average (1 min)": f"{load[0]:.2f}" if load else "unknown"}


def goal_rows(report: ScaleReport) -> list[tuple[str, str, str]]:
    """(goal, measured, verdict) rows."""
    rows = [(f"build >= {BUILD_GOAL:.0f} items/s", f"{report.build.items_per_s:.1f} items/s",
             "met" if report.build.items_per_s >= BUILD_GOAL else "not met")]
    for size in report.sizes:
        goal = MATCH_GOALS_MS.get(size.rows)
        if goal is not None:
            measured = "skipped" if size.skipped else f"{size.median_ms:.2f} ms median"
            verdict = "not measured" if size.skipped else ("met" if size.median_ms <= goal else "not met")
            rows.append((f"match <= {goal:g} ms at {size.rows:,} items (one core)", measured, verdict))
    for size in report.sizes:
        if size.skipped is None:
            rows.append((f"resident memory <= {RSS_PER_FILE_GOAL}x the file at {size.rows:,} items",
                         f"{size.rss_per_file:.2f}x", "met" if size.rss_per_file <= RSS_PER_FILE_GOAL else "not met"))
    return rows


def table_rows(report: ScaleReport) -> list[list[str]]:
    """One row per size: items, file, bytes/item, build time (extrapolated), match median / p99, RSS, RSS/file."""
    rows = []
    for size in report.sizes:
        build = _duration(size.rows / report.build.items_per_s)
        if size.skipped:
            rows.append([f"{size.rows:,}", f"{_gb(size.file_bytes)} (estimated)", f"{size.bytes_per_item:,.0f}", build,
                         "skipped", "skipped", "skipped", "-", size.skipped])
            continue
        rows.append([f"{size.rows:,}", _gb(size.file_bytes), f"{size.bytes_per_item:,.0f}", build,
                     f"{size.median_ms:.2f} ms", f"{size.p99_ms:.2f} ms", _gb(size.rss), f"{size.rss_per_file:.2f}x",
                     f"opened in {size.open_s:.1f} s; the gallery and matcher added {_gb(size.gallery_memory)}; "
                     f"peak {_gb(size.peak)}"])
    return rows


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 90 * 60 else f"{seconds / 3600:.1f} h"


TABLE_HEADER = ["items", "file", "bytes / item", "build (extrapolated)", "match median", "match p99",
                "resident memory", "resident / file", "notes"]


def markdown(report: ScaleReport, command: str) -> str:
    o, b, meta = report.options, report.build, report.metadata
    rerank = (f"on ({meta.local_rerank.locations} x {meta.local_rerank.channels} maps, top {meta.local_rerank.top_k})"
              if meta.local_rerank else "off (the model has none)")
    lines = [
        "# Gallery scale: file size, build, match latency and memory by item count", "",
        f"Command: `{command}`", "",
        f"Model: `{o.model}` ({meta.embedding_dim}-d, local re-rank {rerank}); gallery rows {o.dtype}, "
        f"{'compact' if is_compact(meta, o) else 'full'} local maps.",
        "Machine: " + ", ".join(f"{k} {v}" for k, v in report.machine.items()) + ".", "",
        "| " + " | ".join(TABLE_HEADER) + " |", "|" + "---|" * len(TABLE_HEADER),
        *("| " + " | ".join(row) + " |" for row in table_rows(report)), "",
        "## Goals", "", "| goal | measured | verdict |", "|---|---|---|",
        *(f"| {g} | {m} | {v} |" for g, m, v in goal_rows(report)), "",
        "## How it was measured", "",
        f"- **Bytes per item**: the synthetic gallery file's size / its items (header with labels and sha256 "
        f"sources, rows, local maps, checksum). A real gallery built below: {b.file_bytes / b.items:,.0f} bytes per "
        "item.",
        f"- **Build**: real: `gallery build` (the library call, {b.views} views per item, printed text not read, "
        f"{o.threads} inference thread(s)) on {b.items} items of `{o.items}`, after a one-item warm-up: "
        f"{b.seconds:.3g} s, "
        f"{b.items_per_s:.2f} items/s. The build column is N / that rate: extrapolated, not measured at N.",
        f"- **Match**: {o.queries} queries, one at a time, in a fresh process on one thread (OMP, OpenBLAS, MKL "
        "= 1): `Gallery.load` then `Matcher(...).match(query, top_k, query_maps)`, what `Recognizer.match` does "
        "after embedding: the index's candidate rows scored, the best labels re-ranked by their local maps. Median "
        "and p99 of the "
        "per-query wall time. Queries are gallery rows with noise added (their maps likewise).",
        "- **Resident memory**: VmRSS of that process after opening and matching (it includes Python, numpy and "
        "onnxruntime: see the notes for what the gallery added); peak: VmHWM.",
        "- Rows are synthetic (random unit vectors; random unit float16 local maps of the model's shape, or for "
        "compact maps the content boxes of items 0.75 and 1.33 as wide as tall, alternately, and random codes): "
        "latency "
        "and memory do not depend on what the rows show. A size is skipped when its file does not fit the disk or "
        "its memory need (the peak per file byte measured at the size before) does not fit the memory available.",
    ]
    return "\n".join(lines) + "\n"


def default_work(cache: Path | None = None) -> Path:
    from pocketvec.data.sources import cache_root

    return (cache or cache_root()) / "bench-scale"
