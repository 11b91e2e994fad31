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


@pytest.fixture(scope="module")
def lite0_files(lite0_run, few_items, tmp_path_factory):
    out = tmp_path_factory.mktemp("lite0_files")
    return {
        "onnx_fp32": export_onnx(lite0_run, out / "fp32.onnx"),
        "onnx_int8": export_onnx(lite0_run, out / "int8.onnx", "int8", calibration_dir=few_items),
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
    assert rows["int8.mlpackage"]["kind"] == "int8" and rows["int8.onnx"]["kind"] == "int8"
    coreml_int8 = rows["int8.mlpackage"]  # the real student's int8 weights meet the cosine and decision bars
    for metric in ("mean_cosine", "min_cosine", "decision_agreement"):
        assert coreml_int8[metric] >= BARS["int8"][metric][0], json.dumps(coreml_int8)
    assert result.returncode == (0 if report["passed"] else 1), result.stderr
    assert "parity vs PyTorch fp32" in result.stdout


@pytest.mark.xfail(strict=True, reason="int8 parity is below the bars on ImageNet Lite0 + random head: ONNX "
                   "static QDQ mean cos ~0.90 (Core ML int8 passes cosine and decision bars, top-1 agreement 5/6: "
                   "a near-tie flips, in the CLI test); see docs/bench/export.md")
@pytest.mark.parametrize("name", ["onnx_int8"])
def test_int8_meets_every_bar(name, lite0_run, lite0_files, few_items):
    report = verify_models(lite0_run, [lite0_files[name]], few_items)
    assert report.passed, report.to_json()


def test_refuses_files_from_other_weights(small_run, lite0_files, few_items):
    with pytest.raises(ModelFileError, match="other weights"):
        verify_models(small_run, [lite0_files["onnx_fp32"]], few_items)


@pytest.mark.parametrize("args, message", [
    (["export", "onnx", "{missing}", "--out", "{tmp}/m.onnx"], "no such run folder"),
    (["export", "coreml", "{small}", "--out", "{tmp}/m.mlpackage", "--deployment-target", "iOS12"], "Got 'iOS12'"),
    (["verify", "{small}", "{tmp}/absent.onnx", "--images", "{tmp}"], "no such model file"),
])
def test_cli_errors_are_one_line(args, message, small_run, tmp_path):
    values = {"missing": tmp_path / "missing", "tmp": tmp_path, "small": small_run}
    result = subprocess.run([sys.executable, "-m", "pocketvec", *[a.format(**values) for a in args]],
                            capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
