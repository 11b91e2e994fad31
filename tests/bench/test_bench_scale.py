"""`pocketvec bench scale` end to end on tiny sizes: a real model with a local re-rank, real item images, the
real command in its own process; the table's fields are sane and bytes per item is the file's size / rows."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pocketvec.bench.scale import file_bytes_estimate, parse_sizes, synthetic_gallery
from pocketvec.errors import ConfigError
from pocketvec.export.onnx_export import export_onnx_fp32, model_metadata
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery import file as gallery_file

from ..runtime.conftest import DEMO_ITEMS, build_test_encoder

SIZES = (1000, 3000)
HUGE = 10**9  # a file of tens of TB: skipped with its reason, not attempted


@pytest.fixture(scope="module")
def rerank_model(artifacts_dir: Path) -> Path:
    folder = artifacts_dir / "bench-scale"
    folder.mkdir(exist_ok=True)
    model = build_test_encoder(0)
    return export_onnx_fp32(model, folder / "model_rerank.onnx", model_metadata(model, local_rerank=True))


def table(markdown: str) -> list[dict[str, str]]:
    """The rows of the report's first table (the one headed `| items |`)."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| items |"))
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines[start:]]
    end = next((i for i, line in enumerate(lines[start:]) if not line.startswith("|")), len(cells))
    return [dict(zip(cells[0], row, strict=True)) for row in cells[2:end]]


def number(cell: str) -> float:
    return float(re.match(r"[\d,.]+", cell)[0].replace(",", ""))


def test_bench_scale_end_to_end(rerank_model: Path, tmp_path: Path) -> None:
    work, out = tmp_path / "work", tmp_path / "scale.md"
    command = [sys.executable, "-m", "pocketvec", "bench", "scale", str(rerank_model), "--items", str(DEMO_ITEMS),
               "--sizes", ",".join(map(str, (*SIZES, HUGE))), "--queries", "12", "--build-items", "3", "--views",
               "1", "--work", str(work), "--out", str(out), "--keep"]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "COLUMNS": "250"})
    assert done.returncode == 0, done.stderr + done.stdout
    assert "gallery scale" in done.stdout
    rows = {int(r["items"].replace(",", "")): r for r in table(out.read_text())}
    assert sorted(rows) == [*SIZES, HUGE]
    for size in SIZES:
        row, path = rows[size], work / f"scale-{size}.pvg"
        assert Gallery.load(path).count == size  # a valid gallery, kept by --keep
        assert number(row["bytes / item"]) == round(path.stat().st_size / size)
        median, p99 = number(row["match median"]), number(row["match p99"])
        assert 0 < median <= p99
        assert number(row["resident memory"]) > 0 and number(row["resident / file"]) > 0
        assert number(row["build (extrapolated)"]) > 0
    assert "skipped" in rows[HUGE]["match median"] and "does not fit" in rows[HUGE]["notes"]
    assert not (work / f"scale-{HUGE}.pvg").exists()
    text = out.read_text()
    build = re.search(r"on (\d+) items of .*?: ([\d.]+) s, ([\d.]+) items/s", text)
    assert build and int(build[1]) == 3 and float(build[2]) > 0 and float(build[3]) > 0
    assert "| match <= 5 ms at" not in text  # the goal rows name only the sizes measured against a goal
    assert re.search(r"resident memory <= 1.5x the file at 1,000 items \| [\d.]+x \| (met|not met)", text)


def test_the_synthetic_file_is_the_gallery_format_written_a_chunk_at_a_time(rerank_model: Path, tmp_path) -> None:
    metadata = open_engine(rerank_model).metadata
    path = synthetic_gallery(tmp_path / "g.pvg", 1500, metadata, "int8", seed=3)
    gallery = Gallery.load_for(path, metadata)  # every row and map location a unit vector, checksum right
    assert gallery.count == 1500 and gallery.locals.shape == (1500, *metadata.local_rerank.shape)
    assert path.read_bytes() == gallery.to_bytes()  # the streamed writer writes what `encode` makes
    assert abs(file_bytes_estimate(1500, metadata, "int8") - path.stat().st_size) < 1000  # a skipped size's figure
    assert np.unique(gallery.vectors, axis=0).shape[0] == 1500
    with pytest.raises(Exception, match="local maps for 2 rows, the header counts 3"):
        header = {**gallery.header(), "count": 3, "labels": gallery.labels[:3], "sources": gallery.sources[:3]}
        gallery_file.write_streamed(tmp_path / "bad.pvg", header, gallery.vectors[:3], [gallery.locals[:2]])
    assert not (tmp_path / "bad.pvg").exists()


def test_a_synthetic_compact_gallery_reads_and_matches_in_the_probe(rerank_model: Path, tmp_path: Path) -> None:
    """An int8 gallery of a model with a local codebook: compact rows (boxes and random codes), read back whole,
    its size as estimated, matched by the probe's re-rank over each row's decoded locations."""
    import dataclasses

    from pocketvec.bench.scale_probe import probe
    from pocketvec.export.local_codebook import fit_codebook

    metadata = open_engine(rerank_model).metadata
    channels = metadata.local_rerank.channels
    vectors = np.random.default_rng(0).standard_normal((2000, channels)).astype(np.float32)
    codebook = fit_codebook(vectors / np.linalg.norm(vectors, axis=1, keepdims=True), subvectors=4, rounds=1,
                            steps=1, final_steps=2)
    metadata = dataclasses.replace(metadata, local_rerank=dataclasses.replace(metadata.local_rerank,
                                                                              codebook=codebook))
    path = synthetic_gallery(tmp_path / "c.pvg", 1500, metadata, "int8", seed=3, compact=True)
    gallery = Gallery.load_for(path, metadata)
    assert gallery.compact and gallery.count == 1500 and path.read_bytes() == gallery.to_bytes()
    assert abs(file_bytes_estimate(1500, metadata, "int8", compact=True) - path.stat().st_size) < 1000
    found = probe(path, metadata.local_rerank, queries=5, top_k=3, seed=0)
    assert found["rows"] == 1500 and len(found["latencies_ms"]) == 5


def test_sizes_parse() -> None:
    assert parse_sizes("10k,100k,1M") == (10_000, 100_000, 1_000_000)
    assert parse_sizes("3000, 1000") == (1000, 3000)
    for bad in ("", "ten", "0", "1G", "-5"):
        with pytest.raises(ConfigError, match="--sizes"):
            parse_sizes(bad)
