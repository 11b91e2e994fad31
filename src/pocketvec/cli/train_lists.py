"""`pocketvec train --list WHAT`: what training can be given (like timm.list_models)."""

from __future__ import annotations

import fnmatch

LISTS = ("presets", "backbones", "teachers", "losses", "margins", "policies")


def entries(what: str, pattern: str = "*") -> list[str]:
    """Lines describing every supported choice of `what` (one of LISTS) whose name matches `pattern`."""
    if what == "presets":
        from pocketvec.train.presets import PRESETS

        rows = {name: " ".join((make.__doc__ or "").strip().split("\n\n")[0].split())
                for name, make in sorted(PRESETS.items())}
    elif what == "backbones":
        import timm

        from pocketvec.train.pretrained import LITE_BACKBONES

        rows = {name: "ImageNet weights shipped (init=imagenet)" if name in LITE_BACKBONES else ""
                for name in timm.list_models()}
    elif what == "teachers":
        from pocketvec.train.teachers import BUILTIN_TEACHERS, DEFAULT_TEACHER

        rows = {name: "default" if name == DEFAULT_TEACHER else "" for name in BUILTIN_TEACHERS}
        rows["PATH"] = "a local SigLIP2/CLIP checkpoint folder (open_clip, transformers or timm format)"
    elif what == "losses":
        from pocketvec.train.config import LOSSES

        rows = dict.fromkeys(LOSSES, "")
    elif what == "margins":
        from pocketvec.train.losses.margins import DEFAULT_MARGINS

        rows = {name: f"default margin {m}" for name, m in DEFAULT_MARGINS.items()}
    else:
        from pocketvec.data.pseudoclasses import PRESETS as POLICIES

        rows = dict.fromkeys(POLICIES, "")
    return [f"{name}: {note}" if note else name for name, note in rows.items() if fnmatch.fnmatch(name, pattern)]
