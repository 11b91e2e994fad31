"""The workflow a user with a folder of items meets, through the real entry point (in-process), on a
real ONNX model: `data photos` -> `gallery build` -> `eval` (uncalibrated) -> `calibrate` -> `eval`
(the gallery's rule) -> `match`; JSON everywhere, and the note about an uncalibrated gallery."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from pocketvec.data.query_photos import NOT_AN_ITEM
from pocketvec.runtime.evaluation import count_decisions
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.metadata import AcceptRule

from .test_runtime_cli import run  # noqa: F401  (the in-process CLI fixture)


def test_photos_calibrate_eval_match(run, onnx_model: Path, items_dir: Path, photo_paths: list[Path],  # noqa: F811
                                     tmp_path: Path) -> None:
    others = tmp_path / "others"
    others.mkdir()
    for photo in photo_paths[:2]:
        (others / photo.name).write_bytes(photo.read_bytes())
    photos = tmp_path / "photos"
    code, stdout, _ = run("data", "photos", items_dir, "--out", photos, "--per-item", "2", "--distractors", others)
    assert code == 0 and "20 photos of 10 items" in stdout and "4 of 2 distractors" in stdout
    folders = sorted(p.name for p in photos.iterdir())
    assert folders == sorted([p.stem for p in items_dir.iterdir()] + [NOT_AN_ITEM])
    assert {f: len(list((photos / f).glob("*.jpg"))) for f in folders} == {f: 4 if f == NOT_AN_ITEM else 2
                                                                           for f in folders}
    code, _, err = run("data", "photos", items_dir, "--out", photos, "--per-item", "1")
    assert code == 2 and "not empty" in err  # never mixed with old photos by accident
    again = tmp_path / "again"  # the same seed gives the same photos; one photo per item still reads as labels
    assert run("data", "photos", items_dir, "--out", again, "--per-item", "1")[0] == 0
    first = sorted((photos / folders[0]).glob("*.jpg"))[0]
    assert (again / folders[0] / first.name).read_bytes() == first.read_bytes()
    sizes = {Image.open(path).size for path in photos.rglob("*.jpg")}  # phone-framed: 3:4 or 9:16, 640 px long
    assert sizes and all(max(size) == 640 and round(max(size) / min(size), 2) in (1.33, 1.78) for size in sizes)
    framed = tmp_path / "framed"
    assert run("data", "photos", items_dir, "--out", framed, "--per-item", "1", "--framing", "item")[0] == 0
    assert {Image.open(path).size for path in framed.rglob("*.jpg")} <= {(480, 360), (360, 480)}

    gallery = tmp_path / "items.pvg"
    assert run("gallery", "build", "--no-text", onnx_model, "--images", items_dir, "--out", gallery)[0] == 0
    code, stdout, _ = run("eval", onnx_model, "--gallery", gallery, "--queries", photos, "--json")
    before = json.loads(stdout)
    d = before["decisions"]
    assert code == 0 and d["rule_source"] == "default"
    assert (d["item_photos"], d["distractor_photos"], before["query_photos"]) == (20, 4, 24)
    assert 0 <= d["correct"] <= d["accepted"] <= 24 and d["distractors_rejected"] <= 4
    code, stdout, _ = run("eval", onnx_model, "--gallery", gallery, "--queries", photos)
    assert "no calibrated accept rule" in stdout and "Recall@1" in stdout and "unknown right" in stdout
    table = [line for line in stdout.splitlines() if line and line[0] in "┏┃┡│└"]
    assert table and max(len(line) for line in table) <= 80  # the table fits 80 columns whole

    code, stdout, _ = run("calibrate", onnx_model, gallery, "--queries", photos, "--dry-run")
    tables = [line for line in stdout.splitlines() if line and line[0] in "┏┃┡│└"]
    assert code == 0 and max(len(line) for line in tables) <= 80 and "…" not in stdout  # whole cells at 80
    code, stdout, _ = run("calibrate", onnx_model, gallery, "--queries", photos, "--target-precision", "0.9",
                          "--json")
    calibration = json.loads(stdout)
    assert code == 0 and calibration["written"] == [str(gallery)]
    code, stdout, _ = run("eval", onnx_model, "--gallery", gallery, "--queries", photos, "--json")
    after = json.loads(stdout)
    d = after["decisions"]
    assert d["rule_source"] == "gallery" and d["rule"] == calibration["rule"]
    # the same photos under the same rule: eval counts exactly what calibrate chose
    assert (d["accepted"], d["correct"]) == (calibration["chosen"]["accepted"], calibration["chosen"]["correct"])
    assert after["recall_at_1"] == before["recall_at_1"]  # the rule does not change retrieval
    code, stdout, _ = run("--quiet", "eval", onnx_model, "--gallery", gallery, "--queries", photos)
    assert code == 0 and stdout == ""  # quiet: nothing but errors
    code, stdout, _ = run("-q", "eval", "--no-text", onnx_model, "--gallery", items_dir, "--queries", photos, "--json")
    assert json.loads(stdout)["recall_at_1"] == before["recall_at_1"]  # a folder gallery: the same rows


def test_match_notes_an_uncalibrated_gallery_once(run, onnx_model: Path, items_dir: Path,  # noqa: F811
                                                  tmp_path: Path) -> None:
    gallery = tmp_path / "items.pvg"
    assert run("gallery", "build", "--no-text", onnx_model, "--images", items_dir, "--out", gallery)[0] == 0
    images = sorted(items_dir.iterdir())[:3]
    code, stdout, err = run("match", onnx_model, gallery, *images, "--json")
    assert code == 0 and len(json.loads(stdout)["results"]) == 3  # stdout stays valid JSON
    assert err.count("no calibrated accept rule") == 1 and "pocketvec calibrate" in err
    code, _, err = run("match", onnx_model, gallery, images[0], "--threshold", "0.9")
    assert code == 0 and "no calibrated" not in err  # the user chose the rule
    stored = Gallery.load(gallery)
    stored.accept_rule = AcceptRule(threshold=0.3, margin=0.01)
    stored.save(gallery)
    code, _, err = run("match", onnx_model, gallery, images[0])
    assert code == 0 and "no calibrated" not in err


def test_decision_counts_agree_with_the_matcher() -> None:
    """count_decisions (vectorised, for eval) answers every photo as the Matcher does."""
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(30, 16)).astype(np.float32)
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    labels = [f"item{i % 12}" for i in range(30)]  # several rows per label
    queries = rows[rng.integers(0, 30, 200)] + rng.normal(scale=0.4, size=(200, 16)).astype(np.float32)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    truth = [labels[i] if i % 5 else "not_enrolled" for i in rng.integers(0, 30, 200)]
    gallery = Gallery("space", 16, "float32")
    gallery.add(rows, labels, [str(i) for i in range(30)])
    for rule in (AcceptRule(0.5, 0.0), AcceptRule(0.7, 0.05), AcceptRule(-1.0, 0.2)):
        answers = [m.answer for m in Matcher(gallery, rule).match(queries)]
        d = count_decisions(queries @ gallery.embeddings().T, truth, labels, rule, "gallery")
        accepted = [a != "unknown" for a in answers]
        assert d.accepted == sum(accepted)
        assert d.correct == sum(a == t for a, t in zip(answers, truth, strict=True))
        assert d.distractors_rejected == sum(a == "unknown" and t == "not_enrolled" for a, t in
                                             zip(answers, truth, strict=True))
        assert (d.item_photos, d.distractor_photos) == (sum(t != "not_enrolled" for t in truth),
                                                        truth.count("not_enrolled"))
