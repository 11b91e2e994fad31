"""The training loop: AdamW, warmup + cosine, clipping, AMP on GPU, resumable checkpoints, per-epoch
held-out evaluation that keeps the best shipped weights (the start included) with early stopping,
a rich progress bar, optional torchrun sharding."""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import replace
from itertools import chain
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from pocketvec.data.augment_torch import TorchPhotoSim
from pocketvec.data.items import load_items
from pocketvec.errors import ConfigError
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.preprocess import crops_from_name
from pocketvec.train.batches import BatchMaker
from pocketvec.train.budget import (
    FINISH_EVALUATIONS,
    PROBE_STEPS,
    budget_evaluations,
    evaluation_interval,
    fit_steps,
)
from pocketvec.train.checkpoint import save_run
from pocketvec.train.config import TrainConfig
from pocketvec.train.distributed import init_from_environment, rank_and_world
from pocketvec.train.evaluate import (
    QUERY_CROPS,
    choose_query_crop,
    evaluate,
    local_settings,
    make_held_out,
    query_crop_mode,
)
from pocketvec.train.keep_best import blend, describe, keeps, merged_copy, on_grid, verdict
from pocketvec.train.local_scores import StepsWithClassViews
from pocketvec.train.parts import (
    MEMORY_FORMAT,
    StepBatches,
    build_losses,
    class_embeddings,
    imprint_centres,
    select_trainable,
    single_threaded_opencv,
    warmup_cosine,
)
from pocketvec.train.photo_cache import CachedSteps, PhotoCache
from pocketvec.train.rounding import save_on_grid
from pocketvec.train.state import RESUME_DIR, RUN_SCHEMA, has_state, read_state_info, restore_state, save_state
from pocketvec.train.student import build_student
from pocketvec.train.teacher_cache import TeacherCache
from pocketvec.train.teachers import load_teacher

# settings that may change between a run and its resumption without changing what is computed; instead of
# `threads`, the CPU threads that really computed the steps are compared (they change float sums)
RESUME_FREE_KEYS = ("time_limit_s", "workers", "checkpoint_every", "threads")
UNBOUNDED_STEPS = 10**9  # a budget run's data loader: its steps are fitted after it starts


def _computed_on(threads: int | None) -> str:
    return "on a GPU" if threads is None else f"with {threads} CPU threads"


def process_steps_per_epoch(global_batches: int, world: int) -> int:
    """Steps of each process per epoch: every step reads `world` batches (one per process), so an epoch,
    one pass over the pool's `global_batches`, takes global_batches / world steps (at least one)."""
    return max(1, global_batches // world)


class Trainer:
    def __init__(self, config: TrainConfig, data: str | Path, out: str | Path) -> None:
        self.started = time.monotonic()  # a budget counts from here
        self.config, self.out = config, Path(out)
        init_from_environment()
        self.rank, self.world = rank_and_world()
        if self.device_is_cpu():  # on a small shared CPU, threads beyond the free cores only spin
            torch.set_num_threads(config.threads or max(1, (os.cpu_count() or 1) - config.workers))
        self.device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else \
            torch.device("cpu")
        items = load_items(data)
        self.labels = [entry.label for entry in items]
        # cached teacher photos: the teacher and the photo simulator do not run while training
        self.photos = PhotoCache(config.teacher_photos) if config.teacher_photos else None
        if self.photos is not None:
            self.photos.check_pool(config, items)
            if config.lookalike_group > 1:
                raise ConfigError("lookalike_group needs photos made while training, not a teacher-photo cache "
                                  "(teacher_photos): the cached steps' classes are fixed")
        elif config.local_distill_weight > 0:
            raise ConfigError("local_distill_weight needs a teacher-photo cache with local scores "
                              "(`pocketvec train cache --local-scores`, then --teacher-photos)")
        live_teacher = config.teacher and config.distill_weight > 0 and self.photos is None
        teacher = load_teacher(config.teacher) if live_teacher else None
        size = config.encoder.preprocess.input_size
        self.local_maps = config.local_weight > 0 or config.local_distill_weight > 0
        needs_maker = self.photos is None or config.imprint_centres or self.local_maps
        self.maker = BatchMaker(items, config.policy, size, config.batch_classes, config.views_per_class,
                                config.seed, config.augment, config.backgrounds, teacher.input_size if teacher else 0,
                                config.merge_identical_classes, config.encoder.preprocess,
                                config.clean_view_fraction, config.device_augment(torch.cuda.is_available()),
                                class_views=config.local_weight > 0,
                                source_side=self.photos.source_side() if self.photos is not None else 0) \
            if needs_maker else None
        if self.photos is not None and self.maker is not None:
            self.photos.check_classes(self.maker.num_classes)
        self.num_classes = self.photos.spec.num_classes if self.photos is not None else self.maker.num_classes
        self.sim = TorchPhotoSim(size) if self.maker is not None and self.maker.device_augment else None
        torch.manual_seed(config.seed)  # random init of the student, heads and class centres
        self.memory_format = MEMORY_FORMAT
        self.model = build_student(config.encoder, config.init).to(self.device, memory_format=self.memory_format)
        select_trainable(self.model, config)
        cached_dim = self.photos.spec.embedding_dim if self.photos is not None else 0
        local = local_settings(self.model) if self.local_maps else None
        self.losses = build_losses(config, self.num_classes, teacher, cached_dim, local).to(self.device)
        pfc = self.losses["partial_fc"] if config.imprint_centres and "partial_fc" in self.losses else None
        if pfc is not None or config.lookalike_group > 1:
            # the start model's embeddings of the clean class renderings, made once for both uses: grouping
            # needs every class, imprinting this process's share of the centres
            classes = range(self.num_classes) if config.lookalike_group > 1 else \
                range(pfc.class_start, pfc.class_start + pfc.num_local)
            rows = class_embeddings(self.maker, self.model, config.encoder.preprocess, classes)
            if pfc is not None:
                imprint_centres(pfc, rows[pfc.class_start - classes.start:][: pfc.num_local])
            if config.lookalike_group > 1:
                self.maker.group_lookalikes(rows, config.lookalike_group)
        self.cache = TeacherCache(teacher.to(self.device)) if teacher else None
        params = [p for p in chain(self.model.parameters(), self.losses.parameters()) if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        pool_batches = config.steps_per_epoch or (
            self.photos.spec.steps if self.photos is not None else self.maker.steps_per_epoch())
        self.steps_per_epoch = process_steps_per_epoch(pool_batches, self.world)
        self.total_steps = config.epochs * self.steps_per_epoch
        if config.max_steps:
            self.total_steps = min(self.total_steps, config.max_steps)
        if config.budget_s:  # until the steps are fitted to the budget (after the probe's)
            self.total_steps = max(self.total_steps, PROBE_STEPS + 1)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(self.total_steps, config.warmup_fraction))
        self.evaluations = budget_evaluations(config.budget_s) if config.budget_s else config.evaluations
        self.eval_every = self._eval_interval()
        self.next_eval = self.eval_every  # the step of the next held-out evaluation
        self.step_s = 0.0  # a training step's mean wall time (a budget fits the steps with it)
        self.held_out = make_held_out([entry.path for entry in items], self.labels, config.encoder.preprocess,
                                      config.eval_views, GalleryViews(config.eval_gallery_views),
                                      QUERY_CROPS if config.choose_query_crop else ()) if config.eval_views else None
        self.evaluation_s = 0.0  # the last held-out evaluation's wall time (a budget fits the steps with it)
        self.query_crop: dict[str, Any] | None = None  # the photos' crop chosen on the start, and each crop's scores
        self.step, self.history, self.best = 0, [], {"decision_recall": -1.0, "recall_at_1": -1.0, "epoch": 0}
        self.images_per_second = 0.0  # of the last run() call
        # the safety net: the merged float weights of the best shipped model seen so far (scored as shipped,
        # i.e. rounded onto the int8 grid when the run ends there), the start's until an epoch beats them
        self.kept = merged_copy(self.model) if self.held_out is not None else None
        # what WiSE-FT blends with, and what feature preservation holds the photos' embeddings to
        self.start = merged_copy(self.model) if config.wise_alpha < 1.0 or config.preserve_weight > 0 else None
        if has_state(self.out):
            self._resume()
        elif self.kept is not None:
            if len(self.held_out.crops) > 1:  # the photos' crop, chosen on the start: every evaluation uses it
                started = time.monotonic()
                self.query_crop = choose_query_crop(on_grid(self.kept, config.int8_grid), self.held_out)
                chosen = crops_from_name(self.query_crop["chosen"])  # its crops' share of the start's embedding
                self.evaluation_s = (time.monotonic() - started) * len(chosen) / len(self.held_out.photos)
            start = self.query_crop["held_out"][self.held_out.crops[0]] if self.query_crop else \
                self._evaluate_shipped(self.kept)
            self._record({"epoch": 0, "step": 0, **start}, self.kept)

    def _eval_interval(self) -> int:
        """Steps between held-out evaluations: `evaluations` evenly spaced, else one per epoch."""
        return evaluation_interval(self.total_steps, self.evaluations) if self.evaluations else self.steps_per_epoch

    def _fit_to_budget(self) -> None:
        """Fit the total steps, the schedule and the next evaluation to what is left of the budget, with the
        step and evaluation times measured so far: after the probe steps, and again after each evaluation."""
        remaining = max(1, self.evaluations - (len(self.history) - 1))  # the history starts with the start
        self.total_steps = self.step + fit_steps(self.config.budget_s, time.monotonic() - self.started,
                                                 self.step_s, self.evaluation_s, remaining)
        self.scheduler.lr_lambdas = [warmup_cosine(self.total_steps, self.config.warmup_fraction)]
        self.next_eval = self.step + evaluation_interval(self.total_steps - self.step, remaining)

    def _plan_next_eval(self) -> None:
        if self.config.budget_s and self.step < self.total_steps:
            self._fit_to_budget()
        else:
            self.next_eval = (self.step // self.eval_every + 1) * self.eval_every

    def _over_budget(self) -> bool:
        """Whether the budget, less the evaluations still due at the end, has run out."""
        left = self.config.budget_s - (time.monotonic() - self.started)
        return bool(self.config.budget_s) and left < (FINISH_EVALUATIONS + 1) * self.evaluation_s

    @staticmethod
    def device_is_cpu() -> bool:
        return not torch.cuda.is_available()

    def _comparable(self, config: dict[str, Any]) -> dict[str, Any]:
        return json.loads(json.dumps({k: v for k, v in config.items() if k not in RESUME_FREE_KEYS}))

    @staticmethod
    def _threads() -> int | None:
        """The CPU threads that compute the steps (float sums depend on them); None on a GPU."""
        return torch.get_num_threads() if Trainer.device_is_cpu() else None

    def _resume(self) -> None:
        saved = read_state_info(self.out, RUN_SCHEMA)
        if self._comparable(saved["config"]) != self._comparable(self.config.to_dict()):
            raise ConfigError(f"{self.out}: holds an unfinished run with another config; resume it with the "
                              f"same settings or choose another --out")
        if saved["threads"] != self._threads():
            hint = "" if saved["threads"] is None else f" (--set threads={saved['threads']})"
            raise ConfigError(f"{self.out}: holds an unfinished run computed {_computed_on(saved['threads'])}, this "
                              f"one would run {_computed_on(self._threads())}: its weights would differ from an "
                              f"uninterrupted run. Resume it as it ran{hint} or choose another --out")
        info = restore_state(self.out, self._modules(), self.optimizer, self.scheduler)
        self.step, self.history, self.best = info["step"], info["history"], info["best"]
        self.query_crop = info.get("query_crop")
        if self.query_crop:  # evaluate with the crop chosen before the pause
            self.held_out.use_crop(self.query_crop["chosen"])
        if self.config.budget_s:  # the steps fitted to the budget before the pause
            self.total_steps, self.next_eval = info["total_steps"], info["next_eval"]
            self.scheduler.lr_lambdas = [warmup_cosine(self.total_steps, self.config.warmup_fraction)]
        else:
            self._plan_next_eval()

    def _modules(self) -> dict[str, nn.Module]:
        modules = {"model": self.model, "losses": self.losses}
        return modules if self.kept is None else {**modules, "kept": self.kept}

    def _merged(self) -> nn.Module:
        """The trained weights with their adapters merged, blended with the start if the run asks for it."""
        merged = merged_copy(self.model)
        return merged if self.start is None else blend(merged, self.start, self.config.wise_alpha)

    def _evaluate_shipped(self, merged: nn.Module) -> dict[str, Any]:
        """Held-out metrics of the merged float weights as they would ship (on the int8 grid if asked)."""
        started = time.monotonic()
        metrics = evaluate(on_grid(merged, self.config.int8_grid), self.held_out)
        self.evaluation_s = time.monotonic() - started
        return metrics

    def _record(self, metrics: dict[str, Any], merged: nn.Module) -> None:
        """Add one held-out evaluation to the history; keep `merged` when it is the best so far (of equals within
        the held-out noise, the latest: pocketvec.train.keep_best.keeps)."""
        self.history.append(metrics)
        if keeps(self.history):
            self.best = {**metrics}
            if merged is not self.kept:
                self.kept.load_state_dict(merged.state_dict())  # type: ignore[union-attr]

    def _set_train_mode(self) -> None:
        """Train mode, except BatchNorm layers whose parameters are frozen: their statistics stay fixed."""
        self.model.train()
        self.losses.train()
        for module in self.model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                    p.requires_grad for p in module.parameters()):
                module.eval()

    def _loss(self, batch) -> torch.Tensor:
        cfg = self.config
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            pixels = batch.finish_pixels(self.device, self.sim).to(memory_format=self.memory_format)
            if self.local_maps:
                embedding, photo_maps = self.model.forward_with_locals(pixels)
                with torch.no_grad():  # the gallery side: its maps are targets, not trained through
                    class_maps = self.model.local_maps(batch.class_views.to(self.device).to(
                        memory_format=self.memory_format))
            else:
                embedding = self.model.head(self.model.features(pixels))
            embedding = F.normalize(embedding.float(), dim=-1)
            if cfg.preserve_weight > 0:
                with torch.no_grad():
                    start_embedding = F.normalize(self.start.head(self.start.features(pixels)).float(), dim=-1)
        labels = batch.labels.to(self.device)
        loss = embedding.new_zeros(())
        if "local_match" in self.losses:
            loss = loss + cfg.local_weight * self.losses["local_match"](photo_maps, class_maps,
                                                                        batch.class_slot.to(self.device))
        if "local_distill" in self.losses:
            loss = loss + cfg.local_distill_weight * self.losses["local_distill"](
                photo_maps, class_maps, batch.candidate_slot.to(self.device), batch.teacher_local.to(self.device))
        if "partial_fc" in self.losses:
            loss = loss + self.losses["partial_fc"](embedding, labels)
        if cfg.preserve_weight > 0:
            loss = loss + cfg.preserve_weight * (1.0 - (embedding * start_embedding).sum(dim=-1)).mean()
        if "center" in self.losses:
            loss = loss + cfg.center_weight * self.losses["center"](embedding, labels)
        if "triplet" in self.losses:
            loss = loss + self.losses["triplet"](embedding, labels)
        target = None
        if batch.teacher_embedding is not None and "distill" in self.losses:
            target = {"embedding": batch.teacher_embedding.to(self.device)}
        elif self.cache is not None:
            target = self.cache.outputs(batch.clean.to(self.device), batch.teacher_keys)
        if target is not None:
            # local-batch term: averaged over ranks (the PartialFC term is already global)
            loss = loss + cfg.distill_weight / self.world * self.losses["distill"](
                embedding, target["embedding"], target.get("logits"))
        return loss

    def _sync_gradients(self) -> None:
        """Sum replicated parameters' gradients over ranks (PartialFC centres are sharded: left alone)."""
        if self.world == 1:
            return
        import torch.distributed as dist

        sharded = {id(p) for name, p in self.losses.named_parameters() if name.startswith("partial_fc.")}
        for p in chain(self.model.parameters(), self.losses.parameters()):
            if p.grad is not None and id(p) not in sharded:
                dist.all_reduce(p.grad)

    def _checkpoint(self) -> None:
        if self.rank == 0:
            save_state(self.out, self._modules(), self.optimizer, self.scheduler,
                       {"step": self.step, "history": self.history, "best": self.best,
                        "total_steps": self.total_steps, "next_eval": self.next_eval, "query_crop": self.query_crop,
                        "config": self.config.to_dict(), "threads": self._threads()})

    def _end_of_epoch(self) -> bool:
        """Evaluate; returns True when early stopping says stop. A partial epoch (a time limit or max_steps
        ended it) counts as a fraction: 6.5 is halfway through epoch 7."""
        whole, rest = divmod(self.step, self.steps_per_epoch)
        epoch = round(self.step / self.steps_per_epoch, 2) if rest else whole
        if self.held_out is None:
            return False
        merged = self._merged()
        self._record({"epoch": epoch, "step": self.step, **self._evaluate_shipped(merged)}, merged)
        patience = self.config.early_stopping_patience
        return bool(patience) and epoch - self.best["epoch"] >= patience

    def _steps(self, stop: int) -> torch.utils.data.Dataset:
        """The batches of this process's steps from the current one to `stop`."""
        if self.photos is None:
            return StepBatches(self.maker, self.step, stop, self.rank, self.world)
        cfg = self.config
        steps = CachedSteps(self.photos, cfg.encoder.preprocess.input_size, self.step, stop, self.rank, self.world)
        if self.local_maps:  # the cached steps' classes, rendered clean here
            return StepsWithClassViews(steps, self.maker, cfg.local_distill_weight > 0)
        return steps

    def _stop(self, stop_after: int | None) -> int:
        return self.total_steps if stop_after is None else min(stop_after, self.total_steps)

    def run(self, stop_after: int | None = None) -> Path:
        """Train to the end (or `stop_after` steps in total, leaving a resumable state); returns the run folder."""
        cfg = self.config
        # a budget run's steps are fitted (and refitted) as it goes: its loader has no end of its own
        loader = torch.utils.data.DataLoader(
            self._steps(UNBOUNDED_STEPS if cfg.budget_s else self._stop(stop_after)), batch_size=None,
            num_workers=cfg.workers)
        first, timed_steps, step_time = self.step, 0, 0.0
        started, images, stopped_early, timed_out = time.monotonic(), 0, False, False
        columns = [TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                   TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn()]
        with single_threaded_opencv(cfg.workers > 0), \
                Progress(*columns, disable=self.rank != 0, transient=False) as progress:
            task = progress.add_task("train", total=self.total_steps, completed=self.step, info="")
            if self.step == 0 and self.history:
                progress.console.print(describe(self.history[0], self.best["epoch"]))
            for batch in loader:
                step_started = time.monotonic()
                torch.manual_seed(cfg.seed * 1_000_003 + self.step)  # dropout, PartialFC sampling
                self._set_train_mode()
                loss = self._loss(batch)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self._sync_gradients()
                torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]],
                                               cfg.grad_clip)
                self.optimizer.step()
                self.scheduler.step()
                self.step += 1
                if self.step > first + 1:  # the first step of a run also starts the data workers: not timed
                    timed_steps, step_time = timed_steps + 1, step_time + time.monotonic() - step_started
                    self.step_s = step_time / timed_steps
                if cfg.budget_s and timed_steps == PROBE_STEPS:
                    self._fit_to_budget()
                    progress.update(task, total=self.total_steps)
                images += len(batch.labels) * self.world
                rate = images / max(1e-9, time.monotonic() - started)
                progress.update(task, completed=self.step, info=f"loss {loss.item():.3f} "
                                f"lr {self.scheduler.get_last_lr()[0]:.2e} {rate:.1f} img/s")
                if self.step >= self.next_eval or self.step == self.total_steps:
                    stopped_early = self._end_of_epoch()
                    if self.held_out is not None:
                        progress.console.print(describe(self.history[-1], self.best["epoch"]))
                    self._plan_next_eval()
                    progress.update(task, total=self.total_steps)
                    self._checkpoint()
                elif self.step % cfg.checkpoint_every == 0:
                    self._checkpoint()
                timed_out = (bool(cfg.time_limit_s) and time.monotonic() - started > cfg.time_limit_s) or \
                    self._over_budget()
                if timed_out and self.held_out is not None and self.history[-1]["step"] != self.step:
                    self._end_of_epoch()  # the weights reached before the time ran out are judged too
                    progress.console.print(describe(self.history[-1], self.best["epoch"]))
                if stopped_early or timed_out or self.step >= self._stop(stop_after):
                    break
        self.images_per_second = images / max(1e-9, time.monotonic() - started)
        if self.step < self.total_steps and not stopped_early and not timed_out:
            self._checkpoint()  # interrupted on purpose (stop_after): resumable
            return self.out
        return self.finish()

    def finish(self) -> Path:
        """Write the plain run folder: the kept weights (best held-out epoch, the start included) when there
        is a held-out set, else the last weights merged (and rounded onto the int8 grid if asked). A run
        on the int8 grid also keeps its float weights (FLOAT_WEIGHTS_FILE) and the rounding's cost."""
        if self.rank == 0:
            merged = (self.kept if self.kept is not None else self._merged()).cpu()
            extra = {"train": self.config.to_dict(), "history": self.history, "steps": self.step,
                     "total_steps": self.total_steps, "int8_grid": self.config.int8_grid, "world_size": self.world,
                     "pseudo_classes": self.num_classes,
                     "images_per_s": round(self.images_per_second, 1)}
            if self.kept is not None:
                extra["kept"] = {"epoch": self.best["epoch"], "verdict": verdict(self.history, self.best["epoch"])}
            if self.query_crop:  # chosen again for the weights that ship: the crop that suits them best
                at_end = choose_query_crop(on_grid(merged, self.config.int8_grid), self.held_out)
                merged.config = replace(merged.config, preprocess=replace(merged.config.preprocess,
                                                                          query_crop_mode=query_crop_mode(
                                                                              at_end["chosen"])))
                extra["query_crop"] = {"chosen": at_end["chosen"], **{
                    f"held_out_at_{when}": {crop: {key: m[key] for key in ("decision_recall", "recall_at_1")}
                                            for crop, m in scores.items()}
                    for when, scores in (("start", self.query_crop["held_out"]), ("end", at_end["held_out"]))}}
            if self.config.int8_grid:
                save_on_grid(self.out, merged, extra, self.held_out, self.best)
            else:
                save_run(self.out, merged, extra)
            shutil.rmtree(self.out / RESUME_DIR, ignore_errors=True)
        if self.world > 1:  # the other ranks return once rank 0 has written the run folder
            import torch.distributed as dist

            dist.barrier()
        return self.out
