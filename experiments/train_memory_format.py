"""`pocketvec train` with the trainer's memory format chosen on the command line: an experiment, to compare
channels_last (the trainer's layout) with PyTorch's default NCHW on the same run (docs/TRAINING.md:
channels_last). Everything after the format is `pocketvec train`'s own arguments.

    python experiments/train_memory_format.py nchw --preset enroll --data GALLERY --out RUN --set seed=1
"""

from __future__ import annotations

import sys

import torch

import pocketvec.train.loop as loop
from pocketvec.cli import app

FORMATS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in FORMATS:
        sys.exit(f"usage: {sys.argv[0]} {{{','.join(FORMATS)}}} TRAIN-ARGS...")
    loop.MEMORY_FORMAT = FORMATS[sys.argv[1]]
    sys.argv = ["pocketvec", "train", *sys.argv[2:]]
    app()
