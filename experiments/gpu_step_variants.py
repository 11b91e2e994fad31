"""GPU step throughput of the base-gpu model + PartialFC (8,841 classes) on random pixels, under
memory-format / torch.compile / batch variants (train_benchmark.step). Run on the GPU
machine with PYTHONPATH=src. Numbers: docs/TRAINING.md."""

from __future__ import annotations

from train_benchmark import step

if __name__ == "__main__":
    for batch, channels_last, compiled in [(256, False, False), (256, True, False), (512, True, False),
                                           (256, True, True), (512, True, True)]:
        row = step("base-gpu", 8841, 40, warmup=8, batch=batch, channels_last=channels_last, compiled=compiled)
        print(f"batch {batch} channels_last {channels_last} compile {compiled}: {row['images_per_s']:.0f} img/s",
              flush=True)
