"""Training benchmarks (not tests): PartialFC memory per million classes, training throughput.

    python experiments/train_benchmark.py memory --classes 1000000 --rates 0.1 0.3 1.0
    python experiments/train_benchmark.py throughput --preset enroll --data DIR --steps 8
    python experiments/train_benchmark.py compare --data DIR_OR_CSV --runs RUN_DIR ... --input-size 160
    python experiments/train_benchmark.py step --preset base-gpu --classes 8841 --steps 50
    python experiments/train_benchmark.py step-variants   # on the GPU machine: memory format, compile, batch
    python experiments/train_benchmark.py augment --data DIR_OR_CSV --size 224 --batch 64 --batches 4

Memory is the peak resident set of a fresh process over one AdamW step (weights, gradient, optimizer
state, sampled logits), minus the process's size before the class centres existed.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pocketvec.cli.train import parse_set


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _memory_child(classes: int, rate: float, dim: int, batch: int) -> dict:
    import torch

    from pocketvec.train.losses.partial_fc import PartialFC

    torch.set_num_threads(1)
    before = _peak_rss_mb()
    pfc = PartialFC(dim, classes, sample_rate=rate)
    optimizer = torch.optim.AdamW(pfc.parameters(), lr=1e-3)
    embeddings = torch.randn(batch, dim, requires_grad=True)
    labels = torch.randint(0, classes, (batch,))
    started = time.perf_counter()
    pfc(embeddings, labels).backward()
    optimizer.step()
    return {"classes": classes, "sample_rate": rate, "dim": dim, "batch": batch,
            "peak_mb": round(_peak_rss_mb() - before, 1), "step_s": round(time.perf_counter() - started, 2)}


def memory(classes: int, rates: list[float], dim: int, batch: int) -> list[dict]:
    rows = []
    for rate in rates:  # one fresh process per rate: peak RSS never goes down
        code = (f"import json; from train_benchmark import _memory_child; "
                f"print(json.dumps(_memory_child({classes}, {rate}, {dim}, {batch})))")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                             cwd=Path(__file__).resolve().parent)  # `-c` imports from its working folder
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return rows


def throughput(preset: str, data: str, steps: int, overrides: dict) -> dict:
    from pocketvec.train.loop import Trainer
    from pocketvec.train.presets import preset_config

    config = preset_config(preset).with_overrides({"max_steps": steps, "eval_views": 0, **overrides})
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, data, Path(tmp) / "run")
        trainer.run()
    return {"preset": preset, "steps": steps, "batch": config.batch_size,
            "input_size": config.encoder.preprocess.input_size, "images_per_s": round(trainer.images_per_second, 2)}


def step(preset: str, classes: int, steps: int, warmup: int = 5, batch: int = 0,
         channels_last: bool | None = None, compiled: bool = False, overrides: dict | None = None) -> dict:
    """Images/s of the model + loss step alone (forward, backward, AdamW) on random pixels: the
    throughput the data loader would have to feed. By default as the loop: the preset's batch, CUDA,
    bf16 autocast and channels_last when a GPU is present; `batch`, `channels_last` and `compiled`
    (torch.compile) try variants."""
    import torch
    import torch.nn.functional as F

    from pocketvec.train.parts import MEMORY_FORMAT, build_losses
    from pocketvec.train.presets import preset_config
    from pocketvec.train.student import build_student

    config = preset_config(preset).with_overrides(overrides or {})
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    fmt = MEMORY_FORMAT if channels_last is None else \
        (torch.channels_last if channels_last else torch.contiguous_format)
    model = build_student(config.encoder, "random").to(device, memory_format=fmt).train()
    forward = torch.compile(model) if compiled else model
    losses = build_losses(config, classes, None).to(device)
    optimizer = torch.optim.AdamW([*model.parameters(), *losses.parameters()], lr=1e-4)
    size, batch = config.encoder.preprocess.input_size, batch or config.batch_size
    pixels = torch.randn(batch, 3, size, size, device=device).contiguous(memory_format=fmt)
    labels = torch.randint(0, classes, (batch,), device=device)

    def one_step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            embedding = F.normalize(forward(pixels).float(), dim=-1)
        optimizer.zero_grad(set_to_none=True)
        losses["partial_fc"](embedding, labels).backward()
        optimizer.step()

    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for _ in range(warmup):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    started = time.perf_counter()
    for _ in range(steps):
        one_step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    return {"preset": preset, "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
            "batch": batch, "input_size": size, "classes": classes, "steps": steps,
            "channels_last": fmt == torch.channels_last, "compiled": compiled, "sample_rate": config.sample_rate,
            "images_per_s": round(batch * steps / seconds, 1),
            "peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1) if device.type == "cuda" else None}


def augment(data: str, size: int, batch: int, batches: int, threads: int = 1) -> list[dict]:
    """Photos/s of both augmentation paths on the same items, one after the other in this process:
    the CPU path (finished photos, as one data-loader process makes them) and the device path split
    into its CPU half (scene preparation, per data-loader process) and its device half (the torch
    simulation of whole batches on CUDA when present, else here on the CPU)."""
    import torch

    from pocketvec.data.augment_torch import TorchPhotoSim
    from pocketvec.data.items import load_items
    from pocketvec.train.batches import BatchMaker

    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    items = load_items(data)
    rows = []
    for device_path in (False, True):
        maker = BatchMaker(items, "upright", size, max(1, batch // 2), 2, 0, device_augment=device_path)
        sim = TorchPhotoSim(size) if device_path else None
        maker(0).finish_pixels(device, sim)  # warm-up: decoders, kernels, allocator
        started = time.perf_counter()
        made = [maker(step) for step in range(1, batches + 1)]
        prepared = time.perf_counter() - started
        photos = sum(len(b.labels) for b in made)
        row = {"path": "device" if device_path else "cpu", "device": str(device), "size": size, "photos": photos,
               "cpu_photos_per_s": round(photos / prepared, 1)}
        if device_path:
            if device.type == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            for b in made:
                b.finish_pixels(device, sim)
            if device.type == "cuda":
                torch.cuda.synchronize()
            simulated = time.perf_counter() - started
            row.update(device_photos_per_s=round(photos / simulated, 1),
                       one_process_photos_per_s=round(photos / (prepared + simulated), 1))
        rows.append(row)
    return rows


def compare(data: str, runs: list[str], size: int, views: int, seed: int) -> list[dict]:
    """Decision recall / Recall@1 of run folders and the frozen baselines on validation-simulator photos of
    `data`'s items (pocketvec.train.evaluate; gallery = the clean items)."""
    import torch

    from pocketvec.data.items import load_items
    from pocketvec.runtime.gallery.views import NO_VIEWS
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.checkpoint import load_run
    from pocketvec.train.evaluate import evaluate, make_held_out
    from pocketvec.train.pretrained import build_lite0_baseline
    from pocketvec.train.teachers import load_teacher

    torch.set_num_threads(1)
    items = load_items(data)
    held_out = make_held_out([e.path for e in items], [e.label for e in items], PreprocessSpec(input_size=size),
                             views, NO_VIEWS, seed=seed)
    models = {"frozen Lite0 (ImageNet)": build_lite0_baseline(), "frozen Lite2 teacher": load_teacher()}
    models.update({run: load_run(run) for run in runs})
    rows = []
    for name, model in models.items():
        metrics = evaluate(model, held_out)
        rows.append({"model": name, "input_size": size, "items": len(items), "queries": len(held_out.photo_labels),
                     **{k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}})
    return rows


def step_variants() -> None:
    """The base-gpu model + PartialFC (8,841 classes) step under memory-format / torch.compile / batch
    variants, on the GPU machine (docs/TRAINING.md)."""
    for batch, channels_last, compiled in [(256, False, False), (256, True, False), (512, True, False),
                                           (256, True, True), (512, True, True)]:
        row = step("base-gpu", 8841, 40, warmup=8, batch=batch, channels_last=channels_last, compiled=compiled)
        print(f"batch {batch} channels_last {channels_last} compile {compiled}: {row['images_per_s']:.0f} img/s",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    mem = sub.add_parser("memory")
    mem.add_argument("--classes", type=int, default=1_000_000)
    mem.add_argument("--rates", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    mem.add_argument("--dim", type=int, default=256)
    mem.add_argument("--batch", type=int, default=128)
    thr = sub.add_parser("throughput")
    thr.add_argument("--preset", default="enroll")
    thr.add_argument("--data", required=True)
    thr.add_argument("--steps", type=int, default=8)
    thr.add_argument("--set", nargs="*", default=[], help="dotted KEY=JSON overrides")
    stp = sub.add_parser("step")
    stp.add_argument("--preset", default="base-gpu")
    stp.add_argument("--classes", type=int, default=8841)
    stp.add_argument("--steps", type=int, default=50)
    stp.add_argument("--warmup", type=int, default=5)
    stp.add_argument("--set", nargs="*", default=[], help="dotted KEY=JSON overrides, e.g. sample_rate=0.1")
    sub.add_parser("step-variants", help="the step at batch 256/512, NCHW or channels_last, torch.compile or not")
    aug = sub.add_parser("augment")
    aug.add_argument("--data", required=True)
    aug.add_argument("--size", type=int, default=224)
    aug.add_argument("--batch", type=int, default=64)
    aug.add_argument("--batches", type=int, default=4)
    aug.add_argument("--threads", type=int, default=1)
    cmp_ = sub.add_parser("compare")
    cmp_.add_argument("--data", required=True)
    cmp_.add_argument("--runs", nargs="*", default=[])
    cmp_.add_argument("--input-size", type=int, default=160)
    cmp_.add_argument("--views", type=int, default=1)
    cmp_.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.what == "memory":
        for row in memory(args.classes, args.rates, args.dim, args.batch):
            print(json.dumps(row))
    elif args.what == "step":
        print(json.dumps(step(args.preset, args.classes, args.steps, args.warmup, overrides=parse_set(args.set))))
    elif args.what == "step-variants":
        step_variants()
    elif args.what == "augment":
        for row in augment(args.data, args.size, args.batch, args.batches, args.threads):
            print(json.dumps(row))
    elif args.what == "compare":
        for row in compare(args.data, args.runs, args.input_size, args.views, args.seed):
            print(json.dumps(row))
    else:
        print(json.dumps(throughput(args.preset, args.data, args.steps, parse_set(args.set))))


if __name__ == "__main__":
    main()
