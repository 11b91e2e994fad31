"""`pocketvec demo`: the whole loop on the embedded demo items, from training to "unknown".

enroll-train -> export ONNX int8 + Core ML int8 -> verify parity -> build the int8 gallery ->
calibrate the accept rule on synthetic phone photos -> match other synthetic phone photos (and
photos with no item) -> compare every decision with the PyTorch model's. Photos are answered as the
runtime answers them, each zoomed to its item (runtime.zoomed_photos), the PyTorch model's too.
Each step uses the real library function of its package; a step whose package is missing from
this build raises NotBuiltYet naming it (nothing is faked).
"""

from __future__ import annotations

import importlib
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError, NotBuiltYet
from pocketvec.extras import missing_extra
from pocketvec.runtime.calibration import Calibration, calibrate
from pocketvec.runtime.engines import EmbedResult, Engine, open_engine
from pocketvec.runtime.enroll import build_gallery, labelled_images
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.item_zoom import ItemZoom
from pocketvec.runtime.matcher import UNKNOWN, Match, Matcher, scores
from pocketvec.runtime.model_files import write_accept_rule
from pocketvec.runtime.zoomed_photos import zoom_to_items

QUICK_TRAINING = {"epochs": 2}  # the enroll preset runs 6 epochs
NOT_AN_ITEM = "not_an_item"


@dataclass(frozen=True)
class DemoOptions:
    out: Path = Path("pocketvec-demo")
    epochs: int | None = None  # None: the enroll preset's own
    quick: bool = False  # a short training run (minutes on a laptop CPU)
    train_overrides: dict[str, Any] = field(default_factory=dict)  # dotted TrainConfig keys
    calibration_photos: int = 4  # synthetic phone photos per item for calibration
    test_photos: int = 8  # other photos per item for the final matching (8 x 24 + 5 scenes = 197)
    target_precision: float = 0.99
    coreml: bool = True
    seed: int = 0
    overwrite: bool = False


@dataclass
class DemoReport:
    out: Path
    run_dir: Path
    onnx_model: Path
    coreml_model: Path | None
    gallery: Path
    photos: Path
    parity: Any  # pocketvec.export.verify.ParityReport
    calibration: Calibration
    names: list[str]
    truth: list[str]
    matches: list[Match]
    torch_matches: list[Match]  # the PyTorch fp32 model's answers to the same photos, same rule

    @property
    def torch_agreement(self) -> float:
        """Fraction of photos with the same top-1 label and accept/reject as the PyTorch model (both answers
        zoomed to the item, as the runtime gives them)."""
        same = [(a.top[0][0], a.accepted) == (b.top[0][0], b.accepted)
                for a, b in zip(self.matches, self.torch_matches, strict=True)]
        return float(np.mean(same))

    def top1_correct(self, matches: list[Match]) -> int:
        return sum(m.top[0][0] == t for m, t in zip(matches, self.truth, strict=True))

    def counts(self) -> dict[str, int]:
        items = [t != NOT_AN_ITEM for t in self.truth]
        pairs = list(zip(self.matches, self.truth, strict=True))
        right = [m.answer == (t if t != NOT_AN_ITEM else UNKNOWN) for m, t in pairs]
        wrong_accepts = [m.accepted and m.answer != t for m, t in pairs]
        return {"photos": len(self.truth), "item_photos": sum(items), "correct": sum(right),
                "accepted": sum(m.accepted for m in self.matches), "wrong_accepts": sum(wrong_accepts)}


def step(module: str, name: str, what: str) -> Callable:
    """The library function of another package, or NotBuiltYet saying which demo step is missing."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as e:
        missing = missing_extra(e, "demo")
        if missing is not None:
            raise missing from e
        raise NotBuiltYet(f"demo step '{what}' is unavailable: {module}.{name} is not in this build ({e})") from e
    except AttributeError as e:
        raise NotBuiltYet(f"demo step '{what}' is unavailable: {module}.{name} is not in this build ({e})") from e


def prepare_out(options: DemoOptions) -> Path:
    out = options.out
    if out.exists() and any(out.iterdir()):
        if not options.overwrite:
            raise ConfigError(f"{out} is not empty; choose another --out or pass --overwrite")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out


def train_overrides(options: DemoOptions) -> dict[str, Any]:
    overrides = dict(QUICK_TRAINING) if options.quick else {}
    if options.epochs is not None:
        overrides["epochs"] = options.epochs
    overrides["seed"] = options.seed
    return {**overrides, **options.train_overrides}


def run_demo(options: DemoOptions, say: Callable[[str], None] = print) -> DemoReport:
    from pocketvec.asset_dirs import backgrounds_dir, demo_items_dir
    from pocketvec.demo_photos import write_phone_photos

    # Resolve every step first: a missing piece is reported before any long work starts.
    train_preset = step("pocketvec.train.run", "train_preset", "enroll-train")
    export_onnx = step("pocketvec.export.onnx_export", "export_onnx", "export ONNX int8")
    export_coreml = (step("pocketvec.export.coreml_export", "export_coreml", "export Core ML int8")
                     if options.coreml else None)
    verify_models = step("pocketvec.export.verify", "verify_models", "verify")
    out, items = prepare_out(options), demo_items_dir()

    say(f"1/6 enroll-training on {items} ...")
    run_dir = Path(train_preset("enroll", items, out / "run", train_overrides(options)))
    say("2/6 exporting ONNX int8" + (" and Core ML int8" if export_coreml else "") + " ...")
    # int8 in both formats: per-channel int8 weights, float activations (no calibration images needed)
    onnx_model = Path(export_onnx(run_dir, out / "model_int8.onnx", quantize="int8"))
    coreml_model = None
    if export_coreml:
        coreml_model = Path(export_coreml(run_dir, out / "model_int8.mlpackage", quantize="int8"))
    say("3/6 verifying the exported models against PyTorch ...")
    parity = verify_models(run_dir, [p for p in (onnx_model, coreml_model) if p], items)

    say("4/6 building the int8 gallery ...")
    engine = open_engine(onnx_model)
    gallery, _ = build_gallery(engine, items, "int8", progress=False)
    say("5/6 calibrating the accept rule on synthetic phone photos ...")
    photos = out / "photos"
    backgrounds = sorted(p for p in backgrounds_dir().iterdir() if p.suffix.lower() in (".jpg", ".png"))
    half = len(backgrounds) // 2
    write_phone_photos(items, photos / "calibration", options.calibration_photos, options.seed + 1,
                       backgrounds[:half], NOT_AN_ITEM)
    write_phone_photos(items, photos / "test", options.test_photos, options.seed + 2, backgrounds[half:], NOT_AN_ITEM)
    calibration_set, calibration_labels, _ = answer_folder(engine, gallery, photos / "calibration")
    similarity = scores(gallery, calibration_set.embeddings, calibration_set.locals, engine.metadata.local_rerank)
    result = calibrate(similarity, calibration_labels, gallery.labels, options.target_precision)
    gallery.accept_rule = result.rule
    gallery_path = gallery.save(out / "items.pvg")
    write_accept_rule(onnx_model, result.rule)

    say("6/6 matching other phone photos ...")
    test, truth, names = answer_folder(engine, gallery, photos / "test")
    matches = Matcher.for_model(engine.metadata, gallery).match_embedded(test, 3)
    reference = torch_matches(run_dir, engine, gallery, photos / "test")
    return DemoReport(out, run_dir, onnx_model, coreml_model, gallery_path, photos, parity, result, names, truth,
                      matches, reference)


def answer_folder(engine: Engine, gallery: Gallery, folder: Path) -> tuple[EmbedResult, list[str], list[str]]:
    """The photos of `folder` (a folder per label) as the engine's matcher answers them: embedded, each zoomed to
    its item against `gallery` (runtime.zoomed_photos); with their labels and names."""
    entries = labelled_images(folder, "folders")
    paths = [p for p, _ in entries]
    found = zoom_to_items(engine, gallery, engine.embed_all(paths, query=True), paths, ItemZoom()).found
    return found, [label for _, label in entries], [f"{p.parent.name}/{p.name}" for p in paths]


def torch_matches(run_dir: Path, engine: Engine, gallery: Gallery, photos: Path) -> list[Match]:
    """The PyTorch fp32 model's answers through the runtime's code (export.torch_engine: its fp32 gallery built
    as `gallery build` builds one, the photos zoomed to their item), with `engine`'s preprocessing, re-rank and
    `gallery`'s rule."""
    from pocketvec.asset_dirs import demo_items_dir
    from pocketvec.export.torch_engine import TorchEngine
    from pocketvec.train.checkpoint import load_run

    reference_engine = TorchEngine(load_run(run_dir), engine.metadata)
    reference, _ = build_gallery(reference_engine, demo_items_dir(), "float32")
    reference.accept_rule = gallery.accept_rule
    found = answer_folder(reference_engine, reference, photos)[0]
    return Matcher.for_model(engine.metadata, reference).match_embedded(found, 3)
