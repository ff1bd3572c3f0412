"""Section 3.4: pretraining the decoder and head with pixel MoCo-v2 on the point pairs.

The pixel method's side of the training loop (``pico.learn.training.fit``): the data
(``PairData``: a video's draws, one frame pair and two augmented views of it, and the points in
both), the budget of point pairs an iteration (``within_budget``), the queue's warm-up, and the
pretext measured on held-out videos (``HeldOut``). Every random choice of an iteration's views
derives from (seed, iteration, slot), so a resumed run sees the batches the uninterrupted run
would have.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Dataset

from pico import seeding
from pico.data import pairs
from pico.learn import augment, model, training
from pico.rerun import result_settings
from pico.store import checkpoint, zipstore

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
    and cut, so every method is scored on true correspondences. ``settings``: the config's
    ``pretrain`` block (crop size, videos a batch, temperature)."""

    POINTS = 4096
    SEED = 0

    def __init__(self, pair_files: list[str], videos: set[str], settings: dict):
        self.data = PairData(pair_files, settings["crop_size"], self.SEED, videos=videos.__contains__)
        self.per_batch, self.temperature = settings["videos_per_batch"], settings["temperature"]
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


def build(config: dict) -> model.PixelMoCo:
    """The model of ``config``'s blocks ``model`` / ``pretrain``, initialised from ``pretrain.seed``."""
    network, settings = config["model"], config["pretrain"]
    torch.manual_seed(settings["seed"])
    net = model.DenseNet(network["arch"], network["encoder_checkpoint"], network["freeze_encoder"], network["dim"])
    return model.PixelMoCo(
        net,
        network["dim"],
        network["hidden"],
        settings["queue_size"],
        settings["key_momentum"],
        settings["temperature"],
    )


def learning_settings(config: dict) -> dict:
    """The settings that change what pretraining learns: ``model`` and the result settings of
    ``pretrain`` (``pico.rerun``: less workers, device, ...). The resume fingerprint and model.pt
    hold these alone, so model.pt has the same bytes however the run was run."""
    return {"model": config["model"], "pretrain": result_settings("pretrain", config["pretrain"])}


def _fingerprint(config: dict, pair_files: list[str]) -> str:
    """What a checkpoint must agree on to be resumed: the settings that shape learning, the
    encoder file's content and the pair files (path, size, modification time): new pairs or a
    changed config start over instead of resuming, or returning, a stale model."""
    encoder = config["model"]["encoder_checkpoint"]
    keep = {
        **learning_settings(config),
        "encoder_sha256": encoder and checkpoint.sha256(encoder),
        "pairs": training.files_fingerprint(pair_files),
    }
    return json.dumps(keep, sort_keys=True)


class PixelRecipe(training.Recipe):
    """Section 3.4: pixel MoCo-v2 of decoder and head on the point pairs of ``pair_files``,
    at most ``max_pairs`` pairs an iteration over the global batch, after the crops, on every
    video but the ``pretrain.heldout_videos`` of the held-out split, where the pretext is
    measured (``HeldOut``, on PiCO's pairs ``heldout_files``)."""

    monitors = ("queue_similarity", "heldout_infonce", "heldout_chance", "heldout_cos_gap")

    def __init__(self, pair_files: list[str], heldout_files: list[str], config: dict, device: torch.device):
        net = build(config).to(device, memory_format=torch.channels_last)  # NHWC convolutions: faster, measured
        super().__init__(net, config["pretrain"], _fingerprint(config, pair_files + heldout_files))
        self.config, self.pair_files = config, pair_files
        count = self.settings["heldout_videos"]
        names = [video for path in heldout_files for video, _ in pairs.index(path)]
        if count and count >= len(names):
            raise ValueError(
                f"pretrain.heldout_videos is {count}, but the pairs hold {len(names)} videos: "
                "none would be left to train on"
            )
        self.heldout_names = heldout_videos(names, count)
        self.heldout = HeldOut(heldout_files, self.heldout_names, self.settings) if count else None
        self.last_check: model.Pretext | None = None
        self.device = device

    def batches(self, start, rank, world, device, *, stop=None):
        settings = self.settings
        data = PairData(
            self.pair_files,
            settings["crop_size"],
            settings["seed"],
            keep_footers=settings["keep_footers"],
            videos=lambda video: video not in self.heldout_names,
        )
        stop = settings["iterations"] if stop is None else stop
        sampler = training.IterationSampler(
            len(data), settings["videos_per_batch"], start, stop, settings["seed"], rank, world
        )
        return training.iteration_loader(data, sampler, collate_fn=collate, workers=settings["workers"], device=device)

    def budgeted(self, loaded: Loaded, iteration: int, rank: int, world: int, device: torch.device) -> model.PointBatch:
        """The batch of iteration ``iteration`` on ``device``, its point pairs cut to Section
        3.4's budget (``within_budget``)."""
        settings = self.settings
        counts = point_counts(len(loaded.points.xa), world, device)
        keep = within_budget(counts, rank, settings["max_pairs"], seeding.rng(settings["seed"], "budget", iteration))
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
        encoder = self.config["model"]["encoder_checkpoint"]
        # a run resumed from its last checkpoint (killed while it wrote model.pt) trains no
        # step: its last check is measured now, on the same weights
        check = self.last_check or (self.heldout and self.heldout.measure(self.model, self.device))
        return {
            "decoder": model.trainable_state(self.model),
            "config": learning_settings(self.config),
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
                "arch": self.config["model"]["arch"],
                "checkpoint": encoder,
                "sha256": encoder and checkpoint.sha256(encoder),
            },
        }


def train(
    pair_files: list[str],
    config: dict,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    on_iteration=None,
    *,
    heldout_files: list[str] | None = None,
) -> Path:
    """Pretrain decoder and head on ``pair_files`` with ``config``'s ``model`` and ``pretrain``
    blocks (``PixelRecipe``, ``pico.learn.training.fit``), the pretext measured on PiCO's pairs
    ``heldout_files`` (default: ``pair_files``)."""
    use_cuda = torch.cuda.is_available() and config["pretrain"]["device"] != "cpu"
    rank, world, device = training.join_process_group(use_cuda)
    return training.fit(
        PixelRecipe(pair_files, heldout_files or pair_files, config, device),
        out,
        metrics_out,
        work_dir,
        rank=rank,
        world=world,
        device=device,
        on_iteration=on_iteration,
    )
