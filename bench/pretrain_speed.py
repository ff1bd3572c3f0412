"""Pretraining speed (``pico.pretrain``): data loading per batch against the training step,
iteration time and point pairs per second, on this machine (CUDA if present, else CPU).

Inputs are generated: ``--videos`` videos with two 455x256 JPEG frames each (the paper's frame
size) and 256 identity point pairs per video (Section 3.4's 65,536 / 256), written in the
pairs stage's format. Settings: the demo's (ResNet-18, 96-pixel crops, 4 videos per batch)
and the paper's (ResNet-50, 224-pixel crops) with a batch that fits a CPU run
(``--paper-videos``, default 8; the paper uses 256 on GPUs). Loader time is one process
(``workers=0``) building a batch; the goal is loader >= 2x faster than the step (with
``pretrain.workers`` processes the loader's throughput scales by about that many).

    .venv/bin/python bench/pretrain_speed.py [-i 5] [--videos 16] [--paper-videos 8]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from pico import pairs, pretrain, zipstore


def make_pairs(folder: Path, videos: int) -> list[str]:
    """Pair files of ``videos`` videos, two smooth random 455x256 frames and 256 pairs each."""
    rng = np.random.default_rng(0)
    rows, frames = [], []
    for v in range(videos):
        for frame in (0, 9):
            image = cv2.resize(rng.integers(0, 255, (8, 14, 3), dtype=np.uint8), (455, 256), interpolation=cv2.INTER_CUBIC)
            frames.append({"video": f"v{v}", "frame": frame, "jpeg": zipstore.encode_jpeg(image, 95)})
        x, y = rng.uniform(0, 454, 256), rng.uniform(0, 255, 256)
        rows += [{"video": f"v{v}", "frame_a": 0, "frame_b": 9, "track": k, "xa": x[k], "ya": y[k], "xb": x[k], "yb": y[k]} for k in range(256)]
    pq.write_table(pa.Table.from_pylist(rows, schema=pairs.SCHEMA), folder / "00000.parquet")
    pq.write_table(pa.Table.from_pylist(frames, schema=pairs.FRAMES_SCHEMA), folder / "00000.frames.parquet")
    return [str(folder / "00000.parquet")]


def settings(arch: str, crop: int, videos: int) -> dict:
    return {
        "model": {"arch": arch, "encoder_checkpoint": None, "freeze_encoder": True, "dim": 128, "hidden": 2048},
        "pretrain": {"queue_size": 65536, "key_momentum": 0.999, "temperature": 0.2, "lr": 0.03, "weight_decay": 1e-4,
                     "crop_size": crop, "videos_per_batch": videos, "seed": 0, "iterations": 1000},
    }


def measure(files: list[str], cfg: dict, iterations: int, device: torch.device) -> dict:
    """Mean loader and step seconds over ``iterations`` (one warm-up excluded)."""
    p = cfg["pretrain"]
    data = pretrain.PairData(files, p["crop_size"], p["seed"])
    sampler = iter(pretrain.IterationSampler(len(data), p["videos_per_batch"], 0, iterations + 1, p["seed"]))
    moco = pretrain.build(cfg).to(device).train()
    optimizer = torch.optim.SGD([q for q in moco.parameters() if q.requires_grad], lr=p["lr"], momentum=0.9)
    loads, steps, n_pairs = [], [], []
    for i in range(iterations + 1):
        start = time.perf_counter()
        batch = pretrain.collate([data[key] for key in next(sampler)])
        loaded = time.perf_counter()
        loss = moco(*(t.to(device) for t in batch))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first iteration warms up
            loads.append(loaded - start)
            steps.append(time.perf_counter() - loaded)
            n_pairs.append(len(batch[3]))
    return {"load": np.mean(loads), "step": np.mean(steps), "pairs": np.mean(n_pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-i", "--iterations", type=int, default=5)
    parser.add_argument("--videos", type=int, default=16, help="videos in the generated pair file")
    parser.add_argument("--paper-videos", type=int, default=8, help="videos per batch for the ResNet-50 row")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    runs = [("demo", "resnet18", 96, 4), ("paper model", "resnet50", 224, args.paper_videos)]
    print(f"Pretraining speed, {os.cpu_count()} cores, torch {torch.__version__}, {device}, fp32; "
          f"mean of {args.iterations} iterations after one warm-up")
    print()
    print("| setting | encoder | crop | videos/batch | pairs/batch | loader s/batch | step s | loader / step | images/s | pairs/s |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    with tempfile.TemporaryDirectory(prefix="pico-pretrain-") as tmp:
        files = make_pairs(Path(tmp), args.videos)
        for name, arch, crop, videos in runs:
            r = measure(files, settings(arch, crop, videos), args.iterations, device)
            total = r["load"] + r["step"]
            print(f"| {name} | {arch} | {crop} | {videos} | {r['pairs']:.0f} | {r['load']:.3f} | {r['step']:.3f} "
                  f"| {r['load'] / r['step']:.2f} | {2 * videos / total:.1f} | {r['pairs'] / total:,.0f} |")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print()
    print(f"Peak RSS of the benchmark process: {peak:,.0f} MB")


if __name__ == "__main__":
    main()
