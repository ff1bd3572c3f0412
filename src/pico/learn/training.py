"""The training loop of every pretraining (Section 3.4's pixel MoCo-v2, ``pico.learn.pretrain``;
the image-level MoCo-v2 stand-in, ``pico.learn.encoder``): a ``Recipe`` says what is trained
on what, ``fit`` trains it.

Stateless data order: the items of iteration i and every random choice of their views derive
from (seed, i, slot), so a run resumed from a checkpoint sees exactly the batches the
uninterrupted run would have, and ends with the same weights. SGD with MoCo-v2's defaults
(momentum 0.9, weight decay 1e-4) and a cosine learning-rate schedule over ``iterations``.
A checkpoint is written every ``checkpoint_every`` iterations and when SLURM's pre-emption
signals (SIGTERM, SIGUSR1) arrive; the run then exits and a rerun resumes. Under torchrun
(``pico.learn.launch``) every process takes its share of each batch (DDP).
"""

from __future__ import annotations

import csv
import logging
import math
import os
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.tensorboard import SummaryWriter

from pico import logs, seeding
from pico.learn.resume import Resumable, ignoring_preemption
from pico.store import checkpoint
from pico.store.files import atomic_path

log = logging.getLogger(__name__)


class IterationSampler(Sampler):
    """Batches of ``videos_per_batch`` items for iterations start, start+1, ...: epochs over
    the videos, each a seeded permutation, so every video is visited once per epoch and its
    visit number is the epoch (slot s of iteration i is position p = i * B + s: epoch p // n,
    video permutation_epoch[p mod n]). Stateless: any iteration's batch follows from (seed, i),
    so a resumed run sees the batches the uninterrupted run would have. This process's share
    (rank::world) of each, so DDP ranks split a global batch."""

    def __init__(
        self, n_videos: int, videos_per_batch: int, start: int, stop: int, seed: int, rank: int = 0, world: int = 1
    ):
        self.n, self.per_batch, self.start, self.stop, self.seed = n_videos, videos_per_batch, start, stop, seed
        self.rank, self.world = rank, world
        self._epoch, self._order = None, None

    def __len__(self) -> int:
        return self.stop - self.start

    def _permutation(self, epoch: int) -> np.ndarray:
        if self._epoch != epoch:
            self._epoch, self._order = epoch, seeding.rng(self.seed, "epoch", epoch).permutation(self.n)
        return self._order

    def __iter__(self):
        for i in range(self.start, self.stop):
            batch = []
            for slot in range(self.per_batch):
                epoch, position = divmod(i * self.per_batch + slot, self.n)
                batch.append((i, slot, int(self._permutation(epoch)[position]), epoch))
            yield batch[self.rank :: self.world]


def iteration_loader(data: Dataset, sampler: Sampler, *, collate_fn, workers: int, device: torch.device) -> DataLoader:
    """Batches of ``data`` in ``sampler``'s order (an ``IterationSampler``: one per iteration),
    built by ``workers`` forked processes (0: this one), pinned for a GPU. OpenCV, which only
    decodes items in pretraining, gets one thread here, as torch gives one to each worker:
    the workers inherit it when forked, where each would otherwise run the job's share of the
    cores (``pico.logs.setup``). Set inside a forked worker it can deadlock on the pool the
    parent's threads left behind. The workers ignore SLURM's pre-emption signals
    (``pico.learn.resume.ignoring_preemption``): the main process checkpoints and stops them."""
    cv2.setNumThreads(1)
    return DataLoader(
        data,
        batch_sampler=sampler,
        collate_fn=collate_fn,
        num_workers=workers,
        worker_init_fn=ignoring_preemption(),
        persistent_workers=False,
        pin_memory=device.type == "cuda",
    )


def learning_rate(settings: dict, iteration: int) -> float:
    """Cosine schedule from ``settings['lr']`` to 0 over ``settings['iterations']`` (MoCo-v2)."""
    return settings["lr"] * 0.5 * (1 + math.cos(math.pi * iteration / settings["iterations"]))


def files_fingerprint(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, modification time) of each input file, sorted: new inputs start a run over."""
    return [(str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in sorted(map(str, paths))]


class Recipe:
    """What ``fit`` trains and on what. ``model``: the module stepped (its parameters that
    require gradients are trained); ``settings``: lr, iterations, weight_decay, precision,
    checkpoint_every, seed; ``fingerprint``: what a checkpoint must agree on to be resumed;
    ``count``: what a step counts, the metrics' column (pairs, images)."""

    count = "pairs"
    #: What ``monitor`` measures, the metrics' last columns.
    monitors = ("queue_similarity",)

    def __init__(self, model: torch.nn.Module, settings: dict, fingerprint: str):
        self.model, self.settings, self.fingerprint = model, settings, fingerprint

    def batches(self, start: int, rank: int, world: int, device: torch.device, *, stop: int | None = None):
        """The batches of iterations start, start + 1, ..., stop - 1 (default: to the last
        iteration; this process's share)."""
        raise NotImplementedError

    def warm_up(self, rank: int, world: int, device: torch.device) -> None:
        """What happens before the first step of a fresh run (none here: the image-level
        encoder's queue starts as MoCo's, random unit vectors)."""

    def monitor(self, iteration: int, *, checked: bool, rank: int, device: torch.device) -> dict[str, float]:
        """The ``monitors`` after iteration ``iteration``, those that cost a pass over data only
        where ``checked`` (every ``checkpoint_every`` iterations and at the end)."""
        return {"queue_similarity": self.model.queue_similarity()}

    def loss(
        self, step: torch.nn.Module, batch, iteration: int, rank: int, world: int, device: torch.device
    ) -> tuple[torch.Tensor, int]:
        """The iteration's loss through ``step`` (the model, DDP-wrapped under torchrun) and
        this process's count of what it trained on."""
        raise NotImplementedError

    def learned(self) -> dict[str, torch.Tensor]:
        """The state a checkpoint holds (everything not rebuilt from the config)."""
        return self.model.state_dict()

    def result(self) -> dict:
        """The final model file's content."""
        raise NotImplementedError


class LearnedState:
    """A recipe's model as its checkpoints hold it, for ``pico.learn.resume``: what it learns
    (``recipe.learned()``), never the frozen parts rebuilt from the config."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.recipe.learned()

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        model = self.recipe.model
        missing, unexpected = model.load_state_dict(state, strict=False)
        if unexpected or set(missing) - (set(model.state_dict()) - set(self.recipe.learned())):
            raise ValueError(f"{len(missing)} missing, {len(unexpected)} unexpected keys")


def join_process_group(use_cuda: bool) -> tuple[int, int, torch.device]:
    """(rank, world size, device); joins the process group when started by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device(f"cuda:{local}" if use_cuda else "cpu")
    if world > 1 and not dist.is_initialized():
        if use_cuda:
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return (dist.get_rank() if world > 1 else 0), world, device


def global_batch(loss: torch.Tensor, count: int, world: int) -> tuple[float, int]:
    """The step's loss, the mean over the global batch (the processes' losses average to it,
    ``model.PixelMoCo.forward``), and the global batch's count (point pairs, images)."""
    if world == 1:
        return loss.item(), count
    both = torch.stack([loss.detach().float(), torch.tensor(float(count), device=loss.device)])
    dist.all_reduce(both)
    return both[0].item() / world, round(both[1].item())


class IterationLog:
    """Each iteration's loss, learning rate and throughput, in ``work_dir``: ``metrics.csv``
    (rank 0; other ranks ``metrics.rank{r}.csv``), TensorBoard (rank 0) and the job's log
    (throttled progress lines, ``pico.logs.Progress``: every iteration is in the other two).

    The rows are part of every checkpoint (``state_dict``; ``pico.learn.resume``): a resumed
    run rewrites its ``metrics.csv`` from the checkpoint's rows, whatever the file holds (a
    kill -9 leaves rows past the checkpoint, or none: the file is only flushed, the checkpoint
    is fsynced), so the final metrics equal an uninterrupted run's, less the wall-clock
    columns. Under DDP every rank restores rank 0's rows (loss and counts are the global
    batch's on every rank)."""

    def __init__(self, work_dir: Path, *, rank: int, total: int, count: str, monitors: tuple[str, ...]):
        self.path = work_dir / ("metrics.csv" if rank == 0 else f"metrics.rank{rank}.csv")
        self.work_dir, self.rank, self.total, self.count, self.monitors = work_dir, rank, total, count, monitors
        self.header = ["iteration", "loss", "lr", count, "seconds", f"{count}_per_s", *monitors]
        self.rows: list[list[str]] = []  # one per iteration done, as written
        self.file = self.csv = self.board = self.lines = None

    def state_dict(self) -> dict[str, list[list[str]]]:
        return {"rows": self.rows}

    def load_state_dict(self, state: dict[str, list[list[str]]]) -> None:
        self.rows = [list(row) for row in state["rows"]]

    def save(self, path: str | Path) -> None:
        """Header and rows to ``path``, atomically."""
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            csv.writer(f).writerows([self.header, *self.rows])

    def write(self, iteration: int, *, loss: float, lr: float, count: int, seconds: float, monitored: dict) -> None:
        """Iteration ``iteration`` (1-based) done; flushed, so a checkpoint taken now has its rows.
        ``monitored``: the recipe's monitors measured now (a blank cell for each one not)."""
        monitors = [f"{monitored[k]:.5f}" if k in monitored else "" for k in self.monitors]
        row = [str(iteration), f"{loss:.5f}", f"{lr:.6g}", str(count), f"{seconds:.4f}", f"{count / seconds:.1f}"]
        self.rows.append(row + monitors)
        self.csv.writerow(self.rows[-1])
        self.file.flush()
        self.lines.update(
            iteration, detail=lambda: f"loss {loss:.4f} lr {lr:.4g} {count} {self.count} ({seconds:.2f} s)"
        )
        if self.board:
            scalars = {"loss": loss, "lr": lr, f"{self.count}_per_s": count / seconds, **monitored}
            for key, value in scalars.items():
                self.board.add_scalar(f"pretrain/{key}", value, iteration)

    def __enter__(self) -> IterationLog:
        """The file rewritten with the rows restored (none for a fresh run), then appended to."""
        self.save(self.path)
        self.file = open(self.path, "a", newline="")
        self.csv = csv.writer(self.file)
        self.lines = logs.Progress(log, "pretrain", self.total, start=len(self.rows))
        if self.rank == 0:
            self.board = SummaryWriter(str(self.work_dir / "tensorboard"), purge_step=len(self.rows) + 1)
        return self

    def __exit__(self, *exc) -> None:
        self.file.close()
        if self.board:
            self.board.close()


def fit(
    recipe: Recipe,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    *,
    rank: int = 0,
    world: int = 1,
    device: torch.device = torch.device("cpu"),
    on_iteration=None,
) -> Path:
    """The training loop of every pretraining: SGD (momentum 0.9) with ``recipe``'s settings
    and a cosine schedule; checkpoints and metrics in ``work_dir``, resumed from when they
    fit (the metrics' rows are part of each checkpoint, ``IterationLog``); the final model
    (``recipe.result()``) at ``out`` and the metrics of every iteration at ``metrics_out``.
    ``on_iteration(i)`` is called after each step (progress hooks, tests). Under torchrun every
    process takes its share of each batch (DDP); rank 0 writes checkpoints, metrics and model."""
    settings, net = recipe.settings, recipe.model
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    params = [q for q in net.parameters() if q.requires_grad]
    step = DistributedDataParallel(net, broadcast_buffers=False) if world > 1 else net
    optimizer = torch.optim.SGD(params, lr=settings["lr"], momentum=0.9, weight_decay=settings["weight_decay"])
    resumable = Resumable(
        work_dir / "checkpoint.pt",
        recipe.fingerprint,
        settings["checkpoint_every"],
        rank=rank,
        world=world,
        device=device,
    )
    metrics = IterationLog(
        work_dir, rank=rank, total=settings["iterations"], count=recipe.count, monitors=recipe.monitors
    )
    steps = resumable.iterations(
        settings["iterations"], model=LearnedState(recipe), optimizer=optimizer, metrics=metrics
    )
    start = steps.start
    net.train()  # before the warm-up too: a frozen encoder's BatchNorm statistics stay the checkpoint's
    if start == 0:
        recipe.warm_up(rank, world, device)
    loader = recipe.batches(start, rank, world, device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(settings["precision"])
    autocast = dtype is not None and device.type == "cuda"  # mixed precision on a GPU only
    # fp16 gradients underflow without loss scaling; bf16 has float32's range and needs none
    scaler = torch.amp.GradScaler(device.type, enabled=autocast and dtype is torch.float16)
    with metrics:
        tick = time.perf_counter()
        for i, batch in zip(steps, loader):
            lr = learning_rate(settings, i)
            for group in optimizer.param_groups:
                group["lr"] = lr
            with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=autocast):
                loss, count = recipe.loss(step, batch, i, rank, world, device)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            mean_loss, count = global_batch(loss, count, world)
            if not math.isfinite(mean_loss):
                raise FloatingPointError(f"pretraining loss is {mean_loss} at iteration {i + 1}")
            seconds = time.perf_counter() - tick
            checked = (i + 1) % settings["checkpoint_every"] == 0 or i + 1 == settings["iterations"]
            monitored = recipe.monitor(i + 1, checked=checked, rank=rank, device=device)
            tick = time.perf_counter()
            metrics.write(i + 1, loss=mean_loss, lr=lr, count=count, seconds=seconds, monitored=monitored)
            if on_iteration:
                on_iteration(i + 1)
    if rank == 0:
        metrics.save(metrics_out)
        checkpoint.save(recipe.result(), out)
    return Path(out)
