"""GPU step throughput of the base-gpu model + PartialFC (8,841 classes) on random pixels, under
memory-format / torch.compile / batch variants. Run on the GPU machine with PYTHONPATH=src.
Numbers: docs/bench/training.md."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from pocketvec.train.parts import build_losses
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student

CLASSES = 8841


def images_per_second(batch: int, channels_last: bool, compiled: bool, steps: int = 40) -> float:
    config, device = preset_config("base-gpu"), torch.device("cuda")
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = build_student(config.encoder, "random").to(device, memory_format=fmt).train()
    losses = build_losses(config, CLASSES, None).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *losses.parameters()], lr=1e-4)
    forward = torch.compile(model) if compiled else model
    pixels = torch.randn(batch, 3, 224, 224, device=device).contiguous(memory_format=fmt)
    labels = torch.randint(0, CLASSES, (batch,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            embedding = F.normalize(forward(pixels).float(), dim=-1)
        optimizer.zero_grad(set_to_none=True)
        losses["partial_fc"](embedding, labels).backward()
        optimizer.step()

    for _ in range(8):
        step()
    torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return batch * steps / (time.perf_counter() - started)


if __name__ == "__main__":
    for batch, channels_last, compiled in [(256, False, False), (256, True, False), (512, True, False),
                                           (256, True, True), (512, True, True)]:
        rate = images_per_second(batch, channels_last, compiled)
        print(f"batch {batch} channels_last {channels_last} compile {compiled}: {rate:.0f} img/s", flush=True)
