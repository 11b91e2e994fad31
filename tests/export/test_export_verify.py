"""`pocketvec verify` on the default Lite0 student (ImageNet backbone): report, JSON, exit code, bars."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pocketvec.errors import ModelFileError
from pocketvec.export.coreml_export import export_coreml
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.parity import BARS
from pocketvec.export.verify import verify_models
from pocketvec.train.checkpoint import read_run_config


@pytest.fixture(scope="module")
def lite0_files(lite0_run, few_items, tmp_path_factory):
    out = tmp_path_factory.mktemp("lite0_files")
    return {
        "onnx_fp32": export_onnx(lite0_run, out / "fp32.onnx"),
        "onnx_int8": export_onnx(lite0_run, out / "int8.onnx", "int8"),
        "coreml_int8": export_coreml(lite0_run, out / "int8.mlpackage", "int8"),
    }


def test_cli_report_json_and_exit_code(lite0_run, lite0_files, few_items, tmp_path):
    report_path = tmp_path / "report.json"
    files = [str(p) for p in lite0_files.values()]
    result = subprocess.run([sys.executable, "-m", "pocketvec", "verify", str(lite0_run), *files,
                             "--images", str(few_items), "--json", str(report_path)],
                            capture_output=True, text=True, env={**os.environ, "COLUMNS": "200"})
    report = json.loads(report_path.read_text())
    rows = {row["model"]: row for row in report["models"]}
    assert rows["fp32.onnx"]["passed"] and rows["fp32.onnx"]["max_abs_diff"] <= 1e-4
    assert rows["fp32.onnx"]["local_max_abs_diff"] <= 1e-4  # the local re-rank's output, checked as well
    assert rows["int8.mlpackage"]["kind"] == "int8" and rows["int8.onnx"]["kind"] == "int8"
    for name in ("int8.onnx", "int8.mlpackage"):  # the real backbone's int8 weights meet the cosine and
        row = rows[name]                          # decision bars even with a random head (top-1: see below)
        for metric in ("mean_cosine", "min_cosine", "decision_agreement", "local_mean_cosine"):
            assert row[metric] >= BARS["int8"][metric][0], json.dumps(row)
    assert result.returncode == (0 if report["passed"] else 1), result.stderr
    assert "parity vs PyTorch fp32" in result.stdout
    for noise in ("_MLModelProxy", "has not been tested with coremltools", "RuntimeWarning", "it/s]"):
        assert noise not in result.stderr, f"third-party noise in a normal run: {noise!r}\n{result.stderr}"


@pytest.fixture(scope="module")
def base_run():
    """The shipped trained student: near-ties between a random head's neighbours flip top-1 under any
    quantization (Lite0 + random head: 22/24 agree, both formats), so the full bars are checked on it."""
    from pocketvec.train.student import base_run_dir

    if not (base_run_dir() / "model.safetensors").is_file():
        pytest.skip("the trained base model (src/pocketvec/assets/base) is not in this build")
    return base_run_dir()


@pytest.fixture(scope="module")
def base_int8_plain(base_run, tmp_path_factory):
    """The trained base's int8 ONNX file without the local re-rank (plain cosine matching)."""
    return export_onnx(base_run, tmp_path_factory.mktemp("base") / "int8.onnx", "int8", local_rerank=False)


def test_int8_meets_every_bar_on_the_trained_base(base_run, base_int8_plain, demo_items, tmp_path):
    """Plain cosine matching (`--no-local-rerank`): every bar, both formats."""
    files = [base_int8_plain, export_coreml(base_run, tmp_path / "int8.mlpackage", "int8", local_rerank=False)]
    report = verify_models(base_run, files, demo_items)
    assert [row.kind for row in report.rows] == ["int8", "int8"] and report.images == 24
    assert report.passed, report.to_json()


def test_w8a8_keeps_parity_on_the_trained_base(base_run, base_int8_plain, demo_items, tmp_path):
    """Both w8a8 files (8-bit activations) on 48 simulated photos of the demo items (another seed than the
    export's own check), matched to the items: the cosine and decision bars, and top-1 agreement at most one
    photo below the weight-only int8 file's (near-ties among the 12 look-alike flags flip under any rounding:
    int8 itself flips one of 96 photos on another seed, docs/lab/export-notebook.md). Without the static padding,
    the folded batch norms and the float rungs: mean cosine 0.88 (ONNX) and 0.50 (Core ML)."""
    from pocketvec.demo_photos import write_phone_photos

    photos = write_phone_photos(demo_items, tmp_path / "photos", 2, 7, [], "none")
    files = [base_int8_plain,
             export_onnx(base_run, tmp_path / "w8a8.onnx", "w8a8", calibration_dir=demo_items, local_rerank=False),
             export_coreml(base_run, tmp_path / "w8a8.mlpackage", "w8a8", calibration_dir=demo_items,
                           local_rerank=False)]
    int8, *w8a8 = verify_models(base_run, files, photos, demo_items).rows
    assert [row.kind for row in w8a8] == ["w8a8", "w8a8"] and int8.images == 48
    for row in w8a8:
        for metric in ("mean_cosine", "min_cosine", "decision_agreement"):
            assert getattr(row, metric) >= BARS["w8a8"][metric][0], row
        assert row.top1_agreement >= int8.top1_agreement - 1 / row.images, row


def test_a_re_ranking_file_is_verified_on_the_answers_the_runtime_gives(base_run, demo_items, tmp_path):
    """The default export (local re-rank), 24 simulated photos matched to the demo items: the `local` output meets
    its bar on the first pass; the answers compared are the runtime's, each photo zoomed to its item: the file's
    equal a Recognizer's on the same photos (labels and scores), and top-1 / decision agreement are those of these
    answers against PyTorch's, zoomed through the same runtime code."""
    import numpy as np

    from pocketvec.demo_photos import write_phone_photos
    from pocketvec.export.answers import answers
    from pocketvec.export.calibration import list_images
    from pocketvec.export.parity import decisions, top1_with_margins
    from pocketvec.export.torch_engine import TorchEngine
    from pocketvec.export.verify import open_file
    from pocketvec.recognizer import Recognizer
    from pocketvec.runtime.gallery.views import GalleryViews
    from pocketvec.runtime.metadata import AcceptRule
    from pocketvec.train.checkpoint import load_run

    path = export_onnx(base_run, tmp_path / "int8.onnx", "int8")
    photos = list_images(write_phone_photos(demo_items, tmp_path / "photos", 1, 7, [], "none"))
    report = verify_models(base_run, [path], photos[0].parent, demo_items)
    row = report.rows[0]
    for metric in ("mean_cosine", "min_cosine", "decision_agreement", "local_mean_cosine"):
        assert getattr(row, metric) >= BARS["int8"][metric][0], row

    items = list_images(demo_items)  # the gallery, each image its own label (its index)
    engine = open_file(path, read_run_config(base_run)["embedding_space_id"])
    found = engine.embed_all(items)
    first, got = answers(engine, (found.embeddings, found.locals), photos, leave_one_out=False)
    rule = (report.threshold, report.margin)
    top, accepted = decisions(got.outputs, False, *rule, engine.metadata.local_rerank)
    assert 0 < row.zoomed == np.mean([region is not None for region in got.regions])  # the zoom ran
    assert not np.allclose(first.queries, got.outputs.queries, atol=1e-3)  # and changed what is answered

    rec = Recognizer(path, views=GalleryViews(count=0), text=False)  # rows: the items as they are, no views
    rec.enroll(demo_items)
    rec.gallery.accept_rule = AcceptRule(*rule)
    answered = rec.match_many(photos)
    assert [r.top[0].label for r in answered] == [items[t].stem for t in top]
    assert [r.accepted for r in answered] == list(accepted)
    stats = top1_with_margins(got.outputs, False, engine.metadata.local_rerank)[1]  # (best score, margin)
    np.testing.assert_allclose(stats[:, 0], [r.score for r in answered], atol=1e-5)
    np.testing.assert_allclose(stats[:, 1], [r.margin for r in answered], atol=1e-3)

    model = load_run(base_run)
    torch_items = TorchEngine(model, engine.metadata).embed_all(items)
    _, reference = answers(TorchEngine(model, engine.metadata), (torch_items.embeddings, torch_items.locals), photos,
                           leave_one_out=False)
    ref_top, ref_accepted = decisions(reference.outputs, False, *rule, engine.metadata.local_rerank)
    assert row.top1_agreement == np.mean(ref_top == top)
    assert row.decision_agreement == np.mean(ref_accepted == accepted)


def test_refuses_files_from_other_weights(small_run, lite0_files, few_items):
    with pytest.raises(ModelFileError, match="other weights"):
        verify_models(small_run, [lite0_files["onnx_fp32"]], few_items)


@pytest.mark.parametrize("args, message", [
    (["export", "onnx", "{missing}", "--out", "{tmp}/m.onnx"], "no such run folder"),
    (["export", "coreml", "{small}", "--out", "{tmp}/m.mlpackage", "--deployment-target", "iOS12"], "Got 'iOS12'"),
    (["verify", "{small}", "{tmp}/absent.onnx", "--images", "{tmp}"], "no such model file"),
])
def test_cli_errors_are_one_line(args, message, small_run, tmp_path, monkeypatch, capsys):
    from pocketvec.cli import main

    values = {"missing": tmp_path / "missing", "tmp": tmp_path, "small": small_run}
    monkeypatch.setattr(sys, "argv", ["pocketvec", *[a.format(**values) for a in args]])
    with pytest.raises(SystemExit) as exit_info:  # in-process: the same main() the console script runs
        main()
    stderr = capsys.readouterr().err
    assert exit_info.value.code == 2 and message in stderr and "Traceback" not in stderr


def test_report_table_keeps_every_number_whole_in_80_columns():
    """An 80-column terminal folds the names, never a number (not `2.46e…`, `100.…`)."""
    from rich.console import Console

    from pocketvec.export.parity import SHIPPED, TRAINED_FLOAT, ParityRow
    from pocketvec.export.verify import ParityReport

    rows = [ParityRow("items.onnx", "onnx", "int8", 12, 2.4586e-07, 1.0, 0.99999988, 1.0, 1.0, [], SHIPPED),
            ParityRow("items.mlpackage", "coreml", "int8", 12, 5.1143e-03, 0.99982625, 0.99957961, 1.0, 1.0, [],
                      TRAINED_FLOAT)]
    console = Console(width=80, record=True)
    console.print(ParityReport("runs/items", 12, 0.5, 0.0, rows).table())
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    for number in ("2.46e-07", "5.11e-03", "1.000000", "0.999826", "0.999580", "100.0%"):
        assert number in text, text


def test_text_decisions_are_compared_with_the_ocr_extra(tmp_path):
    """`verify --text`: the decisions with text verification (the shipped small student, four vintages of one
    plain label and a photo of each) agree between the fp32 file and PyTorch, in their own column."""
    from PIL import Image, ImageDraw, ImageFont

    from pocketvec.runtime.printed_text import text_available
    from pocketvec.train.student import shipped_run_dir

    if not text_available():
        pytest.skip("the pocketvec[text] extra (its OCR models) is missing")
    items, photos = tmp_path / "items", tmp_path / "photos"
    items.mkdir()
    photos.mkdir()
    for vintage in ("2014", "2015", "2016", "2017"):
        label = Image.new("RGB", (360, 480), (238, 230, 205))
        draw = ImageDraw.Draw(label)
        for y, text, points in ((90, "CHATEAU MONTVERT", 30), (300, vintage, 34), (400, "75cl", 24)):
            draw.text((180, y), text, font=ImageFont.load_default(size=points), fill=(40, 30, 30), anchor="mm")
        label.save(items / f"montvert-{vintage}.png")
        photo = Image.new("RGB", (480, 640), (50, 60, 70))
        photo.paste(label.resize((300, 400)), (90, 120))
        photo.save(photos / f"montvert-{vintage}.png")
    run = shipped_run_dir("small")
    row = verify_models(run, [export_onnx(run, tmp_path / "small.onnx")], photos, items, text=True).rows[0]
    assert row.text_decision_agreement == 1.0 and row.passed, row
    report = verify_models(run, [tmp_path / "small.onnx"], photos, items)
    assert report.rows[0].text_decision_agreement is None  # off unless asked
