"""Scale-out on real gloo process groups (CPU): two processes train what one process trains.

PartialFC (full and sampled, ArcFace and AdaCos) gives the loss, gradients and AdaCos scale of one
process on the same global batch; the Trainer under two processes counts an epoch as one pass over
the pool (each process runs half the steps; together they read every pseudo-class once)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pocketvec.train.losses.margins import MarginConfig
from pocketvec.train.losses.partial_fc import PartialFC

DIM, CLASSES, BATCH = 16, 40, 8
SAMPLING_SEED = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(BATCH, DIM, generator=g), torch.randint(0, CLASSES, (BATCH,), generator=g),
            torch.randn(CLASSES, DIM, generator=g))


def _step(kind: str, rate: float, rank: int, world: int) -> tuple:
    """One training step of PartialFC on this rank's half of the batch: (loss, embedding grad, centre
    grad, AdaCos scale, kept columns). Every rank seeds the sampling alike, as the loop does."""
    emb, labels, centres = _inputs()
    local = BATCH // world
    pfc = PartialFC(DIM, CLASSES, MarginConfig(kind=kind, scale=16.0, label_smoothing=0.1), sample_rate=rate,
                    rank=rank, world_size=world).train()
    with torch.no_grad():
        pfc.weight.copy_(centres[pfc.class_start : pfc.class_start + pfc.num_local])
    mine = emb[rank * local : (rank + 1) * local].clone().requires_grad_(True)
    torch.manual_seed(SAMPLING_SEED)
    loss = pfc(mine, labels[rank * local : (rank + 1) * local])
    loss.backward()
    columns = int((pfc.weight.grad.abs().sum(1) > 0).sum())
    return loss.item(), mine.grad.clone(), pfc.weight.grad.clone(), float(pfc.margin.adaptive_scale), columns


CASES = (("arcface", 1.0), ("arcface", 0.3), ("adacos", 0.3))


def _pfc_worker(rank: int, world: int, port: int, results: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        torch.set_num_threads(1)
        for case in CASES:
            results[(rank, *case)] = _step(*case, rank, world)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_match_one_process() -> None:
    results = mp.Manager().dict()
    mp.spawn(_pfc_worker, args=(2, _free_port(), results), nprocs=2, join=True)  # one group for every case
    for kind, rate in CASES:
        loss, emb_grad, centre_grad, scale, columns = _step(kind, rate, 0, 1)
        if rate < 1:  # sampled: fewer centres than classes got a gradient, the batch's positives among them
            assert len(set(_inputs()[1].tolist())) <= columns < CLASSES
        ranks = [results[(rank, kind, rate)] for rank in (0, 1)]
        for got in ranks:
            assert got[0] == pytest.approx(loss, abs=1e-6), (kind, rate)
            assert got[3] == pytest.approx(scale, rel=1e-6), (kind, rate)  # AdaCos: the same adapted scale
        torch.testing.assert_close(torch.cat([ranks[0][1], ranks[1][1]]), emb_grad)
        torch.testing.assert_close(torch.cat([ranks[0][2], ranks[1][2]]), centre_grad)
        assert ranks[0][4] + ranks[1][4] == columns, (kind, rate)  # the same centres were sampled


def _trainer_worker(rank: int, world: int, port: int, items: str, out: str, results: dict) -> None:
    from pocketvec.train.loop import Trainer
    from pocketvec.train.parts import StepBatches
    from pocketvec.train.presets import preset_config

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    config = preset_config("smoke").with_overrides({"policy": "upright", "batch_classes": 2, "eval_views": 0})
    trainer = Trainer(config, items, out)
    try:
        one_epoch = StepBatches(trainer.maker, 0, trainer.steps_per_epoch, trainer.rank, trainer.world)
        labels = [label for i in range(len(one_epoch)) for label in one_epoch[i].labels.tolist()]
        trainer.run()
        results[rank] = (trainer.world, trainer.steps_per_epoch, trainer.total_steps, trainer.step,
                         trainer.maker.steps_per_epoch(), trainer.maker.num_classes, labels)
    finally:
        dist.destroy_process_group()


def test_an_epoch_under_two_processes_is_one_pass_over_the_pool(few_items: Path, tmp_path: Path) -> None:
    from pocketvec.train.checkpoint import read_run_config

    with mp.Manager() as manager:  # shut down here, not by a finalizer in the test's teardown
        results = manager.dict()
        mp.spawn(_trainer_worker, args=(2, _free_port(), str(few_items), str(tmp_path / "run"), results), nprocs=2,
                 join=True)
        results = dict(results)
    world, steps_per_epoch, total, done, pool_batches, classes, _ = results[0]
    assert world == 2 and pool_batches >= 4
    assert steps_per_epoch == pool_batches // 2 and total == steps_per_epoch  # 1 epoch: half the steps each
    assert results[1][3] == done == total
    assert read_run_config(tmp_path / "run")["steps"] == total
    seen = results[0][6] + results[1][6]  # 2 views of every class read in the epoch, by one rank or the other
    per_class = {label: seen.count(label) for label in set(seen)}
    assert set(per_class.values()) == {2}, per_class  # no class read twice in an epoch
    assert classes - 2 * 2 < len(per_class) <= classes  # every class but the < world x batch_classes remainder
