"""The frame stage's storage and access cost: frame stores (pico.store.framestore) of two inputs.

Inputs, 640x360, 30 fps, H.264 CRF 18 (the settings of ``pico.data.synthetic.write``):

- ``synthetic``: the demo world, ``pico.data.synthetic.make_video(0, "bench", cut=False)``;
- ``mandelbrot``: ffmpeg's lavfi ``mandelbrot`` (a slow zoom: smooth gradients, fine detail
  at the set's border) with temporal grain from the ``noise`` filter, standing in for camera
  footage, which ``testsrc2`` (flat colours, sharp edges) does not.

For each input and JPEG quality, the real extraction path (``pico.data.video.decode`` at 30 fps,
short side resized, into ``pico.store.framestore.write``) is timed, then reading the store back:
every frame in order and in a random permutation through ``FrameStore[i]`` (read + JPEG
decode), and in the permutation through ``FrameStore.jpeg(i)`` (read only). Times are wall
clock, best of ``--repeat``, with the store in the page cache; a reference row gives the
frames' size as uncompressed uint8. Prints a Markdown table; progress goes to stderr.

    .venv/bin/python bench/frames_io.py [-s 256] [-q 95 90] [-t 10] [-r 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from pico.data import synthetic, video
from pico.store import framestore
from timing import best_time

WIDTH, HEIGHT, FPS = 640, 360, 30
MANDELBROT = f"mandelbrot=size={WIDTH}x{HEIGHT}:rate={FPS},noise=alls=12:allf=t"


def make_inputs(folder: Path, seconds: float) -> dict[str, Path]:
    """Write the two input videos into ``folder``; their paths by name."""
    paths = {"synthetic": folder / "synthetic.mp4", "mandelbrot": folder / "mandelbrot.mp4"}
    demo = synthetic.make_video(0, "bench", seconds=seconds, fps=FPS, width=WIDTH, height=HEIGHT, cut=False)
    synthetic.write(demo, paths["synthetic"])
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", MANDELBROT]
    cmd += ["-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p"]
    subprocess.run(cmd + [str(paths["mandelbrot"])], check=True, stdin=subprocess.DEVNULL)
    return paths


def extract(src: Path, dst: Path, short_side: int, quality: int) -> dict:
    """The frame stage on one whole video: decode at 30 fps, resize, write the frame store."""
    probe = video.probe(src)
    size = video.output_size(probe.width, probe.height, short_side)
    frames = video.decode(src, size, fps=FPS)
    return framestore.write(dst, frames, {"video": src.stem, "fps": FPS, "start_s": 0.0}, quality=quality)


def member_bytes(path: Path) -> float:
    """Mean size of the frame store's JPEG members."""
    with zipfile.ZipFile(path) as zf:
        return float(np.mean([i.file_size for i in zf.infolist() if i.filename.startswith("frames/")]))


def read_rate(path: Path, order: np.ndarray, get: Callable, repeat: int) -> float:
    """Frames per second of ``get(store, i)`` over ``order``, the store already open."""
    with framestore.FrameStore(path) as store:
        return len(order) / best_time(repeat, lambda: [get(store, int(i)) for i in order])


def store_row(name: str, src: Path, dst: Path, quality: int, args: argparse.Namespace) -> dict:
    """Extract ``src`` into ``dst`` at ``quality``; its sizes and speeds."""
    seconds = best_time(args.repeat, lambda: extract(src, dst, args.short_side, quality))
    with framestore.FrameStore(dst) as store:
        meta = store.meta
    n = meta["n_frames"]
    shuffled = np.random.default_rng(args.seed).permutation(n)
    return {
        "input": name,
        "storage": f"JPEG q{quality}",
        "frames": n,
        "width": meta["width"],
        "height": meta["height"],
        "jpeg": member_bytes(dst),
        "file": dst.stat().st_size / n,
        "extract": n / seconds,
        "sequential": read_rate(dst, np.arange(n), lambda s, i: s[i], args.repeat),
        "random": read_rate(dst, shuffled, lambda s, i: s[i], args.repeat),
        "raw_jpeg": read_rate(dst, shuffled, lambda s, i: s.jpeg(i), args.repeat),
    }


def measure(name: str, src: Path, dst: Path, args: argparse.Namespace) -> list[dict]:
    """For input ``name``: the uncompressed reference row, then one row per JPEG quality."""
    rows = []
    for quality in args.quality:
        rows.append(store_row(name, src, dst, quality, args))
        print(f"  {name} q{quality}: {rows[-1]['extract']:.0f} frames/s extraction", file=sys.stderr)
    first = rows[0]
    raw = first["width"] * first["height"] * 3
    reference = {k: first[k] for k in ("input", "frames", "width", "height")}
    return [{**reference, "storage": "uint8, uncompressed", "jpeg": raw, "file": raw}] + rows


def table(rows: list[dict], args: argparse.Namespace) -> str:
    """The rows as a Markdown table, with a header naming the setup."""
    ffmpeg = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split()[2]
    lines = [
        f"Frame stores, {os.cpu_count()} cores, ffmpeg {ffmpeg}, {args.seconds:g} s of {WIDTH}x{HEIGHT} "
        f"video at {FPS} fps, short side {args.short_side}; wall clock, best of {args.repeat}, page cache warm; "
        "reads are frames/s of one process",
        "",
        "| input | storage | frames | frame size | JPEG B/frame | file B/frame | extract frames/s "
        "| sequential read+decode frames/s | random read+decode frames/s | random raw JPEG frames/s |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        speeds = [f"{r[k]:,.0f}" if k in r else "–" for k in ("extract", "sequential", "random", "raw_jpeg")]
        sizes = [f"{r['width']}x{r['height']}", f"{r['jpeg']:,.0f}", f"{r['file']:,.0f}"]
        cells = [r["input"], r["storage"], str(r["frames"]), *sizes, *speeds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-s", "--short-side", type=int, default=256, help="short side (default 256, the paper's)")
    parser.add_argument("-q", "--quality", type=int, nargs="+", default=[95, 90], help="JPEG qualities (default 95 90)")
    parser.add_argument("-t", "--seconds", type=float, default=10, help="input length (default 10)")
    parser.add_argument("-r", "--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random read order (default 0)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pico-frames-") as tmp:
        folder = Path(tmp)
        rows = []
        for name, src in make_inputs(folder, args.seconds).items():
            rows += measure(name, src, folder / (name + framestore.SUFFIX), args)
    print(table(rows, args))


if __name__ == "__main__":
    main()
