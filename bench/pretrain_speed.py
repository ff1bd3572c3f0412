"""Pretraining speed (``pico.learn.pretrain``): data loading per batch against the training step,
iteration time and point pairs per second, on this machine (CUDA if present, else CPU).

Inputs are generated: ``--videos`` videos with eight 455x256 JPEG frames each (the paper's frame
size) and 32 draws of 256 identity point pairs per video (Section 3.4's 65,536 / 256 per
iteration, the budget applied after the crops), written in the pairs stage's format.
Settings: the demo's (ResNet-18, 96-pixel crops, 4 videos per batch)
and the paper's (ResNet-50, 224-pixel crops) with a batch that fits a CPU run
(``--paper-videos``, default 8; the paper uses 256 on GPUs). The loader's time is the CPU time
of one thread whose torch and OpenCV pools are one thread, as in a DataLoader worker
(``as_worker``): read, decode, crop, flip and draw the colours, the goal <= 5 ms an item (issue
13); the colour itself runs batched on the training device. The
last column is how many loader cores keep up with the step (step items/s x loader CPU per item).

Then the memory of the data set (``pico.learn.pretrain.PairData``) on ``--index-videos`` videos in
shards of ``--shard-videos`` (default 1,000: config/paper.yaml's), two ~50 kB JPEG frames each (the
paper's q95 frames), with ``pretrain.keep_footers`` off and on: the memory it holds (its index
and names, and the kept footers measured in a fresh process), extrapolated to 240,000 videos,
and the CPU time on one thread to fetch one video's draws and frames from its
shard (one row group of each file) and to make one whole item.

    .venv/bin/python bench/pretrain_speed.py [-i 5] [--videos 16] [--paper-videos 8] [--index-videos 2000]
        [--shard-videos 1000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import torch

from pico.data import pairs
from pico.learn import pretrain, training
from pico.store import zipstore


def make_pairs(
    folder: Path, videos: int, per_shard: int = 500, detail: tuple[int, int] = (8, 14), draws: int = 32
) -> list[str]:
    """Pair files (shards of ``per_shard``) of ``videos`` videos: ``draws`` draws (the schema's
    draws_per_video) of 256 point pairs each between two of 8 distinct 455x256 frames (random
    ``detail`` pixels upsampled: (8, 14) gives ~23 kB JPEGs, (32, 57) ~50 kB), written as the
    pairs stage writes them (``pico.data.pairs.write``: a row group per video)."""
    rng = np.random.default_rng(0)
    bases = [
        cv2.resize(rng.integers(0, 255, (*detail, 3), dtype=np.uint8), (455, 256), interpolation=cv2.INTER_CUBIC)
        for _ in range(16)
    ]
    files = []
    for first in range(0, videos, per_shard):
        shard = []
        for v in range(first, min(videos, first + per_shard)):
            jpegs = {9 * k: zipstore.encode_jpeg(np.roll(bases[(2 * v + k) % 16], v, axis=1), 95) for k in range(8)}
            a = rng.integers(0, 7, draws).repeat(256)
            x, y = (
                rng.uniform(0, 454, 256 * draws).astype(np.float32),
                rng.uniform(0, 255, 256 * draws).astype(np.float32),
            )
            cols = {
                "frame_a": 9 * a,
                "frame_b": 9 * (a + 1),
                "track": np.tile(np.arange(256), draws),
                "xa": x,
                "ya": y,
                "xb": x,
                "yb": y,
                "draw": np.arange(draws).repeat(256),
            }
            shard.append((f"v{v:06d}", cols, jpegs))
        path = folder / f"{first // per_shard:05d}.parquet"
        pairs.write(shard, path, pairs.frames_path(path))
        files.append(str(path))
    return files


def footers_mb(path: str, copies: int = 20) -> float:
    """Memory of one shard's two parsed footers (``pico.data.pairs.footers``), MB: the RSS growth
    of ``copies`` of them in a fresh process (in this one, freed memory would be reused)."""
    code = (
        "import os, sys\nfrom pico.data import pairs\n"
        "rss = lambda: int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20\n"
        f"pairs.footers(sys.argv[1])\nbefore = rss()\nkept = [pairs.footers(sys.argv[1]) for _ in range({copies})]\n"
        f"print((rss() - before) / {copies})"
    )
    return float(subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, check=True).stdout)


@contextmanager
def as_worker():
    """This thread computes as a data-loader worker does (one thread for torch and OpenCV,
    ``pico.learn.training.iteration_loader``), so that its CPU time (``time.thread_time``) is the worker's
    whole cost; the pools are restored after. Process CPU time would also count the training
    step's idle pool threads, which spin for a while after each parallel region."""
    threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads[0])
        cv2.setNumThreads(threads[1])


def data_memory(files: list[str], crop: int, *, keep_footers: bool, fetches: int = 200) -> dict:
    """Seconds to build PairData on ``files`` and the bytes its index and names hold; mean CPU
    seconds on one thread (as a loader worker) to read one video's draws and frames and to
    build one item, over ``fetches`` random videos."""
    start = time.perf_counter()
    data = pretrain.PairData(files, crop, seed=0, keep_footers=keep_footers)
    built = time.perf_counter() - start
    held = data.where.nbytes + sum(map(sys.getsizeof, [data.videos, *data.videos]))
    picks = np.random.default_rng(1).integers(0, len(data), fetches)
    with as_worker():
        start = time.thread_time()
        for v in picks:
            shard, group, _ = data.where[v]
            parsed = data.footers[shard] if data.footers else None
            pairs.read_video(data.files[shard], int(group), data.videos[v], parsed=parsed)
        read = (time.thread_time() - start) / fetches
        start = time.thread_time()
        for i, v in enumerate(picks):
            data[(i, 0, int(v), i)]
        item = (time.thread_time() - start) / fetches
    return {"videos": len(data), "build": built, "held": held / 2**20, "read": read, "item": item}


def settings(arch: str, crop: int, videos: int) -> dict:
    return {
        "model": {"arch": arch, "encoder_checkpoint": None, "freeze_encoder": True, "dim": 128, "hidden": 2048},
        "pretrain": {
            "queue_size": 65536,
            "key_momentum": 0.999,
            "temperature": 0.2,
            "lr": 0.03,
            "weight_decay": 1e-4,
            "crop_size": crop,
            "videos_per_batch": videos,
            "seed": 0,
            "iterations": 1000,
        },
    }


def measure(files: list[str], cfg: dict, iterations: int, device: torch.device) -> dict:
    """Per batch, mean over ``iterations`` (one warm-up excluded): the loader's CPU seconds on
    one thread (what a DataLoader worker does: read, decode, crop, flip, draw the colours; all
    batches first, as a worker on its own core makes them, not between steps that would have
    flushed its caches), the colour's seconds on ``device`` (``Loaded.finish``) and the step's
    seconds."""
    p = cfg["pretrain"]
    data = pretrain.PairData(files, p["crop_size"], p["seed"])
    sampler = training.IterationSampler(len(data), p["videos_per_batch"], 0, iterations + 1, p["seed"])
    loaded_batches, loads = [], []
    with as_worker():
        for keys in sampler:
            start = time.thread_time()
            loaded_batches.append(pretrain.collate([data[key] for key in keys]))
            loads.append(time.thread_time() - start)
    moco = pretrain.build(cfg).to(device, memory_format=torch.channels_last).train()
    optimizer = torch.optim.SGD([q for q in moco.parameters() if q.requires_grad], lr=p["lr"], momentum=0.9)
    colours, steps, n_pairs = [], [], []
    for i, loaded in enumerate(loaded_batches):
        keep = pretrain.within_budget([len(loaded.points.xa)], 0, 256 * p["videos_per_batch"], np.random.default_rng(i))
        start = time.perf_counter()
        batch = loaded._replace(points=loaded.points.points(torch.from_numpy(keep))).finish(device)
        if device.type == "cuda":
            torch.cuda.synchronize()
        coloured = time.perf_counter()
        loss = moco(batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first iteration warms up
            colours.append(coloured - start)
            steps.append(time.perf_counter() - coloured)
            n_pairs.append(len(batch.xa))
    return {"load": np.mean(loads[1:]), "colour": np.mean(colours), "step": np.mean(steps), "pairs": np.mean(n_pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--iterations", type=int, default=5)
    parser.add_argument("--videos", type=int, default=16, help="videos in the generated pair file")
    parser.add_argument("--paper-videos", type=int, default=8, help="videos per batch for the ResNet-50 row")
    parser.add_argument("--index-videos", type=int, default=2000, help="videos of the memory measurement")
    parser.add_argument("--shard-videos", type=int, default=1000, help="videos a pair file, memory measurement")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = [("demo", "resnet18", 96, 4), ("paper model", "resnet50", 224, args.paper_videos)]
    print(
        f"Pretraining speed, {os.cpu_count()} cores, torch {torch.__version__}, {device}, fp32; "
        f"mean of {args.iterations} iterations after one warm-up; an item is one video's two views"
    )
    print()
    print(
        "| setting | encoder | crop | videos/batch | pairs/batch | loader CPU ms/item | items/s per loader core "
        "| colour on device ms/item | step s | step items/s | loader cores per step |"
    )
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory(prefix="pico-pretrain-") as tmp:
        (Path(tmp) / "memory").mkdir()
        shards = make_pairs(Path(tmp) / "memory", args.index_videos, per_shard=args.shard_videos, detail=(32, 57))
        jpeg_mb = sum(os.path.getsize(pairs.frames_path(f)) for f in shards) / 2**20
        pairs_mb = sum(os.path.getsize(f) for f in shards) / 2**20
        memory = {keep: data_memory(shards, 224, keep_footers=keep) for keep in (False, True)}
        kept = footers_mb(shards[0])
        files = make_pairs(Path(tmp), args.videos)
        for name, arch, crop, videos in runs:
            r = measure(files, settings(arch, crop, videos), args.iterations, device)
            item, fed = r["load"] / videos, videos / r["step"]
            print(
                f"| {name} | {arch} | {crop} | {videos} | {r['pairs']:.0f} | {1e3 * item:.2f} | {1 / item:,.0f} "
                f"| {1e3 * r['colour'] / videos:.2f} | {r['step']:.3f} | {fed:,.1f} | {fed * item:.2f} |"
            )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"Peak RSS of the benchmark process: {peak:,.0f} MB")
    print()
    videos = memory[False]["videos"]
    print(
        f"Data set (PairData), {videos:,} videos in {len(shards)} shards of {args.shard_videos:,}, 32 draws of "
        f"256 pairs per video; pairs files {pairs_mb / videos:.3f} MB a video, frames files {jpeg_mb / videos:.3f} MB "
        "a video; CPU on one thread, mean of 200 random videos; `pretrain.keep_footers` off and on"
    )
    print()
    print(
        "| keep_footers | build s | index + names MB | footers kept MB a shard | held at 240,000 videos MB "
        "| read draws + frames ms | item (224 crop) ms |"
    )
    print("|---|--:|--:|--:|--:|--:|--:|")
    for keep, m in memory.items():
        footers = kept if keep else 0.0
        at_scale = (m["held"] / videos + footers / args.shard_videos) * 240000
        print(
            f"| {str(keep).lower()} | {m['build']:.2f} | {m['held']:,.2f} | {footers:.2f} | {at_scale:,.0f} "
            f"| {m['read'] * 1e3:.2f} | {m['item'] * 1e3:.2f} |"
        )


if __name__ == "__main__":
    main()
