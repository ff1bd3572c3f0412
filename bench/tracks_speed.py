"""Point tracking from stored flow (``pico.data.tracks``): what it costs beyond decoding the flow,
and what a (γ, δ) cut costs per shard.

Input: a synthetic snippet at the paper's frame size (456x256, 30 fps), its DIS (``fine``)
flow stored with the default codec (tiled, q90), and ``--points`` start points as in A.1.
Tracking decodes every field it steps through, so its cost is compared with decoding those
fields alone to float32 (goal: at most 1.15 times). It samples the stored uint8 codes and
dequantizes only the four pixels around each point (each by its own tile's map), so it can
cost less. The cut is timed on a shard-sized table made of copies of the snippet's raw tracks
under distinct video ids, read from and written to Parquet as the ``cut_tracks`` rule does.
Wall clock, best of ``--repeat``; prints a Markdown table.

    .venv/bin/python bench/tracks_speed.py [-t 60] [-p 1000] [-v 50] [-r 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from dag_scale import PAPER
from pico.data import flow, synthetic, tracks
from pico.store import flowstore
from timing import best_time

PAPER_SHARD = yaml.safe_load(PAPER.read_text())["datasets"]["k400"]["videos_per_shard"]  # videos a paper shard

WIDTH, HEIGHT = 456, 256


def make_flow(folder: Path, n_frames: int) -> Path:
    """A stored flow snippet of ``n_frames`` synthetic frames."""
    vid = synthetic.make_video(0, "tracks", n_frames / 30 + 0.1, 30, WIDTH, HEIGHT, cut=False)
    frames = np.stack([f for _, f in zip(range(n_frames), vid.frames())])
    fwd, bwd = flow.DIS("fine")(frames)
    path = folder / ("tracks" + flowstore.SUFFIX)
    flowstore.write(path, fwd, bwd, {"video": "tracks"}, scheme="tiled", bound=20, quality=90)
    return path


def decode_only(path: Path) -> None:
    """Every field of the snippet decoded to float32, as ``FlowStore.field`` gives it."""
    with flowstore.FlowStore(path) as store:
        for t in range(len(store)):
            store.field("fwd", t), store.field("bwd", t)


def decode_codes(path: Path) -> None:
    """Every field's JPEGs decoded to uint8 codes only (what tracking decodes)."""
    with flowstore.FlowStore(path) as store:
        for t in range(len(store)):
            store.quantized("fwd", t), store.quantized("bwd", t)


def shard_table(raw: pa.Table, videos: int) -> pa.Table:
    """``videos`` copies of one video's raw tracks, each under its own id."""
    copies = [raw.set_column(0, "video", pa.array([f"v{i:05d}"] * raw.num_rows)) for i in range(videos)]
    return pa.concat_tables(copies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-t", "--frames", type=int, default=60, help="frames in the snippet (default 60)")
    parser.add_argument("-p", "--points", type=int, default=1000, help="start points (default 1000, A.1)")
    parser.add_argument("-v", "--videos", type=int, default=50, help="videos in the cut's shard table (default 50)")
    parser.add_argument("-r", "--repeat", type=int, default=3)
    args = parser.parse_args()
    cfg = {"points_per_video": args.points, "seed": 0, "max_gamma": 0.5, "max_delta": 16}
    with tempfile.TemporaryDirectory(prefix="pico-tracks-") as tmp:
        path = make_flow(Path(tmp), args.frames)
        row = {"video": "tracks", "n_frames": args.frames, "width": WIDTH, "height": HEIGHT, "flow": str(path)}
        decoding = best_time(args.repeat, lambda: decode_only(path))
        codes = best_time(args.repeat, lambda: decode_codes(path))
        tracking = best_time(args.repeat, lambda: tracks.video_tracks(row, cfg))
        raw = tracks.video_tracks(row, cfg)
        shard = shard_table(raw, args.videos)
        pq.write_table(shard, Path(tmp) / "raw.parquet")
        cutting = best_time(
            args.repeat,
            lambda: tracks.write(tracks.cut(pq.read_table(Path(tmp) / "raw.parquet"), 0, 4), Path(tmp) / "cut.parquet"),
        )
    steps = raw.num_rows
    print(
        f"Tracking from stored flow, {os.cpu_count()} cores; {args.frames} frames of {WIDTH}x{HEIGHT}, "
        f"{args.points} points, DIS fine flow stored at q90; wall clock, best of {args.repeat}"
    )
    print()
    print("| measure | value |")
    print("|---|--:|")
    print(
        f"| decode the snippet's flow to float32 (fwd + bwd, {args.frames - 1} fields each) "
        f"| {decoding * 1000:.0f} ms |"
    )
    print(f"| of which JPEG decoding to uint8 codes | {codes * 1000:.0f} ms |")
    print(f"| track from stored flow (JPEG decoding included) | {tracking * 1000:.0f} ms |")
    print(f"| tracking / decoding the flow (goal <= 1.15) | {tracking / decoding:.3f} |")
    print(f"| point-steps (raw rows) | {steps:,} |")
    print(f"| point-steps per second, whole stage | {steps / tracking:,.0f} |")
    print(
        "| point-steps per second, tracking arithmetic alone (beyond JPEG decoding) "
        f"| {steps / max(tracking - codes, 1e-9):,.0f} |"
    )
    print(
        f"| cut (γ=0, δ=4) of {args.videos} videos' raw tracks ({shard.num_rows:,} rows), read + cut + write "
        f"| {cutting:.2f} s |"
    )
    print(f"| cut rate | {shard.num_rows / cutting:,.0f} rows/s |")
    per_shard = PAPER_SHARD * steps * (300 / args.frames) / (shard.num_rows / cutting)
    print(f"| cut per paper shard ({PAPER_SHARD:,} videos of 300 frames, extrapolated) | {per_shard:.0f} s |")


if __name__ == "__main__":
    main()
