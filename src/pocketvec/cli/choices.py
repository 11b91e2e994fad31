"""The CLI's fixed choices, checked while the command line is parsed: before any heavy import.

Case-insensitive; a wrong value is refused with the valid ones and the closest ("did you mean").
The lists are copies of the libraries' own (tests/test_cli_choices.py keeps them equal), because
importing those libraries would load torch just to read a name.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import typer

ENGINES = ("auto", "onnxruntime", "coreml", "interpreter")  # pocketvec.runtime.engines.ENGINES
QUANTIZE = ("none", "fp16", "int8", "w8a8")  # pocketvec.export.source.QUANTIZE_CHOICES
# pocketvec.train.presets.PRESETS
PRESETS = ("enroll", "enroll-small", "base", "base-gpu", "base-imagenet", "small", "small-gpu", "smoke")
GPU_PRESETS = ("base-gpu", "base-imagenet", "small-gpu")  # sized for a GPU machine (they run, slowly, on a CPU)
POLICIES = ("documents", "upright", "single", "symmetric")  # pocketvec.data.pseudoclasses.PRESETS
GALLERY_DTYPES = ("float32", "float16", "int8")  # pocketvec.runtime.gallery.file.DTYPES
LOCAL_MAPS = ("full", "compact")  # pocketvec.runtime.gallery.store.LOCAL_MAPS_CHOICES


def normalize(what: str, value: str, choices: Sequence[str]) -> str:
    """`value` as spelled in `choices` (any case), else a typer.BadParameter naming the valid ones."""
    by_lower = {c.lower(): c for c in choices}
    if value.lower() in by_lower:
        return by_lower[value.lower()]
    close = difflib.get_close_matches(value.lower(), list(by_lower), n=1, cutoff=0.5)
    hint = f" Did you mean {by_lower[close[0]]!r}?" if close else ""
    raise typer.BadParameter(f"{what} {value!r} is not one of {', '.join(choices)}.{hint}")


def checked(what: str, choices: Sequence[str]) -> Callable[[str | None], str | None]:
    """A typer option callback that checks and canonicalises the value (None/"" pass through)."""
    return lambda value: normalize(what, value, choices) if value else value


def completer(choices: Sequence[str]) -> Callable[[str], list[str]]:
    """Shell completion for an option with these choices."""
    return lambda incomplete: [c for c in choices if c.startswith(incomplete.lower())]


def option(default: str | None, *names: str, what: str, choices: Sequence[str], help: str | None = None):
    """A typer option whose value must be one of `choices`."""
    return typer.Option(default, *names, help=help or " | ".join(choices), callback=checked(what, choices),
                        autocompletion=completer(choices))

