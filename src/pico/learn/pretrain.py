"""Section 3.4: pretraining the decoder and head with pixel MoCo-v2 on the point pairs.

Stateless data order: the videos of iteration i and every random choice of their views
derive from (seed, i, slot), so a run resumed from a checkpoint sees exactly the batches the
uninterrupted run would have, and ends with the same weights. SGD with MoCo-v2's defaults
(momentum 0.9, weight decay 1e-4) and a cosine learning-rate schedule over ``iterations``.
A checkpoint is written every ``checkpoint_every`` iterations and when SLURM's pre-emption
signals (SIGTERM, SIGUSR1) arrive; the run then exits and a rerun resumes.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.tensorboard import SummaryWriter

from pico import seeding
from pico.config import PRETRAIN_RUNTIME_KEYS
from pico.data import pairs
from pico.learn import augment, model
from pico.learn.resume import Resumable, ignoring_preemption
from pico.store import checkpoint, zipstore
from pico.store.files import atomic_path, read_json

log = logging.getLogger(__name__)


class PairData(Dataset):
    """The videos of the pairs shards, indexed from the files' footers (``pico.data.pairs.index``):
    each video's shard, row group and number of draws. A video's draws and frames are read when
    it is fetched (``pico.data.pairs.read_video``), so memory holds neither pairs nor JPEG bytes, and
    no file is held open, so data-loader workers fork freely.

    Item (iteration, slot, video index, visit) -> two cropped and flipped uint8 views, their
    colour draws (applied to the batch on the training device, ``pico.learn.augment.colour``) and
    the points in both: the video's draw ``visit mod draws`` (its draws in turn, one per visit),
    one of that draw's frame pairs, which of the two frames is the query view (p = 1/2: the
    earlier frame is not always the query), crops, flips and colours, all drawn from
    (seed, iteration, slot).

    ``keep_footers``: parse every pair file's two footers once, here, instead of at every fetch
    (``pretrain.keep_footers``: about 10 MB of memory a file of 1,000 videos, shared by the
    forked workers, against 6.7 ms of CPU an item there; docs/measurements.md). ``videos``:
    which videos to take, by name (the training split leaves the held-out ones out)."""

    def __init__(
        self,
        pair_files: list[str],
        crop_size: int,
        seed: int,
        *,
        keep_footers: bool = False,
        videos=lambda video: True,
    ):
        self.crop_size, self.seed, self.files = crop_size, seed, [str(p) for p in pair_files]
        self.footers = [pairs.footers(path) for path in self.files] if keep_footers else None
        entries = sorted(
            (video, shard, group, draws)
            for shard, path in enumerate(self.files)
            for group, (video, draws) in enumerate(pairs.index(path, metadata=self.footers and self.footers[shard][0]))
            if videos(video)
        )
        if not entries:
            raise ValueError(f"no point pairs in {len(pair_files)} pair files: nothing to pretrain on")
        self.videos = [e[0] for e in entries]  # sorted by name: the order does not depend on the sharding
        self.where = np.array([e[1:] for e in entries], np.int64)  # (shard, row group, draws)

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, key: tuple[int, int, int, int]):
        iteration, slot, index, visit = key
        g = torch.Generator().manual_seed(int(seeding.rng(self.seed, "views", iteration, slot).integers(2**62)))
        (shard, group, draws), video = self.where[index], self.videos[index]
        parsed = self.footers[shard] if self.footers else None
        p, jpegs = pairs.read_video(self.files[shard], int(group), video, parsed=parsed)
        draw = p["draw"] == visit % draws
        frame_pairs = sorted(set(zip(p["frame_a"][draw].tolist(), p["frame_b"][draw].tolist())))
        a, b = frame_pairs[int(torch.randint(len(frame_pairs), (1,), generator=g))]
        on = draw & (p["frame_a"] == a) & (p["frame_b"] == b)
        ends = [(a, p["xa"][on], p["ya"][on]), (b, p["xb"][on], p["yb"][on])]
        if torch.rand(1, generator=g) < 0.5:
            ends.reverse()  # the later frame is the query as often as the earlier one
        views, colours, points = [], [], []
        for frame, x, y in ends:
            if frame not in jpegs:
                raise ValueError(
                    f"{pairs.frames_path(self.files[shard])}: no frame {frame} of video {video}, which its pairs use"
                )
            image = torch.from_numpy(zipstore.decode_jpeg(jpegs[frame])).permute(2, 0, 1)
            crop = augment.random_crop(image.shape[1], image.shape[2], self.crop_size, g)
            views.append(augment.view(image, crop))
            colours.append(augment.draw_colour(g))
            points.append(crop.map_points(torch.from_numpy(x), torch.from_numpy(y)))
        keep = points[0][2] & points[1][2]
        inside = (points[0][0][keep], points[0][1][keep], points[1][0][keep], points[1][1][keep])
        return (*views, *inside, *colours)


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


class Loaded(NamedTuple):
    """What the loader yields: the point batch with its views still uint8 and uncoloured, and
    the colour draws of each side's views (``finish`` applies them on the training device)."""

    points: model.PointBatch
    colour_a: augment.Colour
    colour_b: augment.Colour

    def finish(self, device: torch.device) -> model.PointBatch:
        """On ``device``: the views coloured and normalised (``pico.learn.augment.colour``),
        channels-last as the pretraining model's weights."""
        sides = ((self.points.view_a, self.colour_a), (self.points.view_b, self.colour_b))
        views = (augment.colour(v.to(device, non_blocking=True), c.to(device)) for v, c in sides)
        return model.PointBatch(*views, *self.points[2:]).to(device)


def collate(samples) -> Loaded:
    """Stack views and colour draws; concatenate points with the index of their image in the batch."""
    view_a, view_b = (torch.stack(s) for s in list(zip(*samples))[:2])
    image = torch.cat([torch.full((len(s[2]),), i, dtype=torch.long) for i, s in enumerate(samples)])
    points = model.PointBatch(view_a, view_b, image, *(torch.cat([s[k] for s in samples]) for k in range(2, 6)))
    return Loaded(points, *(augment.Colour.cat([s[k] for s in samples]) for k in (6, 7)))


def within_budget(counts: list[int], rank: int, max_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """Section 3.4's limit, per iteration over the global batch: no more than ``max_pairs``
    point pairs in all, after the crops. ``counts``: each process's pairs (rank order); the
    indices of this process's pairs to keep, a uniform draw of ``max_pairs`` of the global
    batch's (all of them when within the budget), the same draw on every process."""
    total, offset = sum(counts), sum(counts[:rank])
    if total <= max_pairs:
        return np.arange(counts[rank])
    chosen = np.sort(rng.choice(total, max_pairs, replace=False))
    return chosen[(chosen >= offset) & (chosen < offset + counts[rank])] - offset


def point_counts(n: int, world: int, device: torch.device) -> list[int]:
    """Every process's number of point pairs (rank order); ``[n]`` without DDP."""
    if world == 1:
        return [n]
    counts = [torch.zeros(1, dtype=torch.long, device=device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([n], device=device))
    return [int(c.item()) for c in counts]


def heldout_videos(videos: list[str], count: int) -> set[str]:
    """The held-out split: the ``count`` videos whose names have the smallest SHA-256, a split
    fixed by the names alone (the same for every seed, method, shard layout and run)."""
    return set(sorted(videos, key=lambda v: hashlib.sha256(v.encode()).hexdigest())[:count])


class HeldOut:
    """Section 3.4's pretext measured on videos pretraining never sees (``model.pretext``: which
    point of the key view a query is, among that view's other points):
    every draw of each held-out video, one frame pair and one pair of views each, drawn from a
    seed of their own (the same views for every model, seed and method), at most ``POINTS``
    point pairs in all, uniformly chosen. ``pair_files``: PiCO's pairs of the model's sampling
    and cut, so every method is scored on true correspondences."""

    POINTS = 4096
    SEED = 0

    def __init__(self, pair_files: list[str], videos: set[str], cfg: dict):
        p = cfg["pretrain"]
        self.data = PairData(pair_files, p["crop_size"], self.SEED, videos=videos.__contains__)
        self.per_batch, self.temperature = p["videos_per_batch"], p["temperature"]
        self.items = [
            (visit, index, index, visit)
            for index, draws in enumerate(self.data.where[:, 2])
            for visit in range(int(draws))
        ]

    @torch.no_grad()
    def measure(self, moco: model.PixelMoCo, device: torch.device) -> model.Pretext:
        """The held-out pretext of ``moco`` as it is now (query network for the queries, key
        network for the keys, as Eq. 1 trains them)."""
        qs, ks, images, key_xy, offset = [], [], [], [], 0
        for start in range(0, len(self.items), self.per_batch):
            loaded = collate([self.data[key] for key in self.items[start : start + self.per_batch]])
            batch = loaded.finish(device)
            qs.append(moco.queries(batch))
            ks.append(moco.keys(batch))
            images.append(batch.image + offset)
            key_xy.append(torch.stack([batch.xb, batch.yb], 1))
            offset += len(batch.view_a)
        q, k, image, xy = torch.cat(qs), torch.cat(ks), torch.cat(images), torch.cat(key_xy)
        if len(q) > self.POINTS:
            keep = torch.from_numpy(
                np.sort(seeding.rng(self.SEED, "heldout").choice(len(q), self.POINTS, replace=False))
            )
            q, k, image, xy = q[keep], k[keep], image[keep], xy[keep]
        return model.pretext(q, k, image, xy, self.temperature)


def build(cfg: dict) -> model.PixelMoCo:
    """The model of config ``model`` / ``pretrain``, initialised from ``cfg['seed']``."""
    torch.manual_seed(cfg["pretrain"]["seed"])
    m, p = cfg["model"], cfg["pretrain"]
    net = model.DenseNet(m["arch"], m["encoder_checkpoint"], m["freeze_encoder"], m["dim"])
    return model.PixelMoCo(net, m["dim"], m["hidden"], p["queue_size"], p["key_momentum"], p["temperature"])


def learning_rate(cfg: dict, iteration: int) -> float:
    """Cosine schedule from ``lr`` to 0 over ``iterations`` (MoCo-v2)."""
    return cfg["lr"] * 0.5 * (1 + math.cos(math.pi * iteration / cfg["iterations"]))


def files_fingerprint(paths: list[str]) -> list[tuple[str, int, int]]:
    """(path, size, modification time) of each input file, sorted: new inputs start a run over."""
    return [(str(p), os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in sorted(map(str, paths))]


def learning_settings(cfg: dict) -> dict:
    """The settings that change what pretraining learns: ``model`` and ``pretrain`` less its
    runtime keys (``PRETRAIN_RUNTIME_KEYS``: workers, device, ...). The resume fingerprint and
    model.pt hold these alone, so model.pt has the same bytes however the run was run."""
    return {
        "model": cfg["model"],
        "pretrain": {k: v for k, v in cfg["pretrain"].items() if k not in PRETRAIN_RUNTIME_KEYS},
    }


def _fingerprint(cfg: dict, pair_files: list[str]) -> str:
    """What a checkpoint must agree on to be resumed: the settings that shape learning, the
    encoder file's content and the pair files (path, size, modification time): new pairs or a
    changed config start over instead of resuming, or returning, a stale model."""
    encoder = cfg["model"]["encoder_checkpoint"]
    keep = {
        **learning_settings(cfg),
        "encoder_sha256": encoder and checkpoint.sha256(encoder),
        "pairs": files_fingerprint(pair_files),
    }
    return json.dumps(keep, sort_keys=True)


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


class PixelRecipe(Recipe):
    """Section 3.4: pixel MoCo-v2 of decoder and head on the point pairs of ``pair_files``,
    at most ``max_pairs`` pairs an iteration over the global batch, after the crops, on every
    video but the ``pretrain.heldout_videos`` of the held-out split, where the pretext is
    measured (``HeldOut``, on PiCO's pairs ``heldout_files``)."""

    monitors = ("queue_similarity", "heldout_infonce", "heldout_chance", "heldout_cos_gap")

    def __init__(self, pair_files: list[str], heldout_files: list[str], cfg: dict, device: torch.device):
        net = build(cfg).to(device, memory_format=torch.channels_last)  # NHWC convolutions: faster, measured
        super().__init__(net, cfg["pretrain"], _fingerprint(cfg, pair_files + heldout_files))
        self.cfg, self.pair_files = cfg, pair_files
        count = cfg["pretrain"]["heldout_videos"]
        names = [video for path in heldout_files for video, _ in pairs.index(path)]
        if count and count >= len(names):
            raise ValueError(
                f"pretrain.heldout_videos is {count}, but the pairs hold {len(names)} videos: "
                "none would be left to train on"
            )
        self.heldout_names = heldout_videos(names, count)
        self.heldout = HeldOut(heldout_files, self.heldout_names, cfg) if count else None
        self.last_check: model.Pretext | None = None
        self.device = device

    def batches(self, start, rank, world, device, *, stop=None):
        p = self.settings
        data = PairData(
            self.pair_files,
            p["crop_size"],
            p["seed"],
            keep_footers=p["keep_footers"],
            videos=lambda video: video not in self.heldout_names,
        )
        stop = p["iterations"] if stop is None else stop
        sampler = IterationSampler(len(data), p["videos_per_batch"], start, stop, p["seed"], rank, world)
        return iteration_loader(data, sampler, collate_fn=collate, workers=p["workers"], device=device)

    def budgeted(self, loaded: Loaded, iteration: int, rank: int, world: int, device: torch.device) -> model.PointBatch:
        """The batch of iteration ``iteration`` on ``device``, its point pairs cut to Section
        3.4's budget (``within_budget``)."""
        p = self.settings
        counts = point_counts(len(loaded.points.xa), world, device)
        keep = within_budget(counts, rank, p["max_pairs"], seeding.rng(p["seed"], "budget", iteration))
        return loaded._replace(points=loaded.points.points(torch.from_numpy(keep))).finish(device)

    def loss(self, step, batch, iteration, rank, world, device):
        batch = self.budgeted(batch, iteration, rank, world, device)
        return step(batch), len(batch.xa)

    @torch.no_grad()
    def warm_up(self, rank, world, device):
        """Fill the queue with keys of real points before the first step, so Eq. 1 never takes
        MoCo's random initial vectors for negatives: the key network's keys of the batches of
        iterations -W .. -1 (their own epoch, views and budget draws: no training batch), in
        order, until ``queue_size`` keys are in. At the paper's scale (65,536 pairs an
        iteration, a queue of 65,536) one batch fills it, as MoCo's first step would."""
        size, filled, batches = self.model.queue.shape[1], 0, 0
        warm = -math.ceil(size / self.settings["videos_per_batch"])  # enough batches at one key a video
        for i, loaded in zip(range(warm, 0), self.batches(warm, rank, world, device, stop=0)):
            keys = model.gather(self.model.keys(self.budgeted(loaded, i, rank, world, device)))
            self.model.enqueue(keys)
            filled, batches = filled + len(keys), batches + 1
            if filled >= size:
                break
        log.info("queue warm-up: %d real keys from %d batches for a queue of %d", min(filled, size), batches, size)
        if filled < size:
            log.warning("queue warm-up: the pairs gave %d keys, %d of the queue stay random", filled, size - filled)

    def monitor(self, iteration, *, checked, rank, device):
        measured = super().monitor(iteration, checked=checked, rank=rank, device=device)
        if checked and self.heldout and rank == 0:
            self.last_check = self.heldout.measure(self.model, device)
            measured |= {
                "heldout_infonce": self.last_check.infonce,
                "heldout_chance": self.last_check.chance,
                "heldout_cos_gap": self.last_check.cos_gap,
            }
        return measured

    def learned(self):
        return model.learned(self.model.state_dict(), self.model.query["net"].freeze_encoder)

    def result(self):
        encoder = self.cfg["model"]["encoder_checkpoint"]
        # a run resumed from its last checkpoint (killed while it wrote model.pt) trains no
        # step: its last check is measured now, on the same weights
        check = self.last_check or (self.heldout and self.heldout.measure(self.model, self.device))
        return {
            "decoder": model.trainable_state(self.model),
            "config": learning_settings(self.cfg),
            "iteration": self.settings["iterations"],
            "pretext": check
            and {
                "heldout_videos": sorted(self.heldout_names),
                "points": check.points,
                "infonce": check.infonce,
                "chance": check.chance,
                "cos_gap": check.cos_gap,
                "queue_similarity": self.model.queue_similarity(),
            },
            "encoder": {
                "arch": self.cfg["model"]["arch"],
                "checkpoint": encoder,
                "sha256": encoder and checkpoint.sha256(encoder),
            },
        }


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
    (rank 0; other ranks ``metrics.rank{r}.csv``), TensorBoard (rank 0) and the job's log.

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
        self.file = self.csv = self.board = None

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
        log.info(
            "pretrain: %d/%d loss %.4f lr %.4g %d %s (%.2f s)",
            iteration,
            self.total,
            loss,
            lr,
            count,
            self.count,
            seconds,
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
    p, net = recipe.settings, recipe.model
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    params = [q for q in net.parameters() if q.requires_grad]
    step = DistributedDataParallel(net, broadcast_buffers=False) if world > 1 else net
    optimizer = torch.optim.SGD(params, lr=p["lr"], momentum=0.9, weight_decay=p["weight_decay"])
    resumable = Resumable(
        work_dir / "checkpoint.pt", recipe.fingerprint, p["checkpoint_every"], rank=rank, world=world, device=device
    )
    metrics = IterationLog(work_dir, rank=rank, total=p["iterations"], count=recipe.count, monitors=recipe.monitors)
    steps = resumable.iterations(p["iterations"], model=LearnedState(recipe), optimizer=optimizer, metrics=metrics)
    start = steps.start
    net.train()  # before the warm-up too: a frozen encoder's BatchNorm statistics stay the checkpoint's
    if start == 0:
        recipe.warm_up(rank, world, device)
    loader = recipe.batches(start, rank, world, device)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(p["precision"])
    scaler = torch.amp.GradScaler(
        device.type, enabled=dtype is torch.float16 and device.type == "cuda"
    )  # fp16 underflow
    with metrics:
        tick = time.perf_counter()
        for i, batch in zip(steps, loader):
            lr = learning_rate(p, i)
            for group in optimizer.param_groups:
                group["lr"] = lr
            autocast = dtype is not None and device.type == "cuda"
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
            checked = (i + 1) % p["checkpoint_every"] == 0 or i + 1 == p["iterations"]
            monitored = recipe.monitor(i + 1, checked=checked, rank=rank, device=device)
            tick = time.perf_counter()
            metrics.write(i + 1, loss=mean_loss, lr=lr, count=count, seconds=seconds, monitored=monitored)
            if on_iteration:
                on_iteration(i + 1)
    if rank == 0:
        metrics.save(metrics_out)
        checkpoint.save(recipe.result(), out)
    return Path(out)


def train(
    pair_files: list[str],
    cfg: dict,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    on_iteration=None,
    *,
    heldout_files: list[str] | None = None,
) -> Path:
    """Pretrain decoder and head on ``pair_files`` (``PixelRecipe``, ``fit``), the pretext
    measured on PiCO's pairs ``heldout_files`` (default: ``pair_files``)."""
    rank, world, device = join_process_group(torch.cuda.is_available() and cfg["pretrain"]["device"] != "cpu")
    return fit(
        PixelRecipe(pair_files, heldout_files or pair_files, cfg, device),
        out,
        metrics_out,
        work_dir,
        rank=rank,
        world=world,
        device=device,
        on_iteration=on_iteration,
    )


def torchrun_command(processes: int, nodes: int, head_node: str | None, args: list[str]) -> list[str]:
    """The command that starts ``processes`` training processes per node on ``nodes`` nodes:
    torchrun on this node, or, across nodes of a SLURM allocation, one torchrun per node under
    ``srun`` meeting at ``head_node`` (c10d rendezvous)."""
    run = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    if nodes <= 1:
        return [*run, "--standalone", "-m", "pico.learn.pretrain", *args]
    return [
        "srun",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        *run,
        f"--nnodes={nodes}",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint={head_node}:29500",
        "-m",
        "pico.learn.pretrain",
        *args,
    ]


def head_node() -> str:
    """First host of this SLURM job. Inside a job started by Snakemake's SLURM plugin
    ``SLURM_JOB_NODELIST`` is gone (its jobstep plugin clears it); the job id stays, and
    ``squeue`` gives the node list from it."""
    nodelist = (
        os.environ.get("SLURM_JOB_NODELIST")
        or subprocess.run(
            ["squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%N"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout.split()
    return hosts[0]


def launch(
    pair_files: list[str],
    cfg: dict,
    *,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    processes: int,
    nodes: int = 1,
    heldout_files: list[str] | None = None,
) -> None:
    """Train in this process, or with several processes (GPUs) or nodes through torchrun."""
    heldout_files = heldout_files or pair_files
    if processes <= 1 and nodes <= 1:
        train(pair_files, cfg, out, metrics_out, work_dir, heldout_files=heldout_files)
        return
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "pairs.txt").write_text("\n".join(map(str, pair_files)))
    (work_dir / "heldout.txt").write_text("\n".join(map(str, heldout_files)))
    (work_dir / "config.json").write_text(json.dumps(cfg))
    args = [str(work_dir / name) for name in ("pairs.txt", "config.json")]
    args += [str(out), str(metrics_out), str(work_dir), str(work_dir / "heldout.txt")]
    cmd = torchrun_command(max(1, processes), nodes, head_node() if nodes > 1 else None, args)
    log.info("starting %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def main() -> None:
    """Entry point of each torchrun process: PAIRS.txt CONFIG.json OUT METRICS WORK HELDOUT.txt."""
    from pico import logs

    pairs_list, config_file, out, metrics_out, work, heldout_list = sys.argv[1:7]
    logs.setup(None)
    pair_files, heldout_files = (Path(p).read_text().split() for p in (pairs_list, heldout_list))
    train(pair_files, read_json(config_file), out, metrics_out, work, heldout_files=heldout_files)


if __name__ == "__main__":
    main()
