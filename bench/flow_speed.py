"""The flow stage's speed and memory (pico.data.flow) on this machine, at the paper's frame size.

Input: the demo world, ``pico.data.synthetic.make_video(0, "bench", cut=False)`` at 30 fps, rendered
at 456x256 (synthetic sizes are even) and cropped to 455x256, the paper's frames of 16:9 video
at short side 256, with the true forward flow of every frame; deterministic. A "pair" is one
flow field in one direction: a call on T frames computes 2 (T - 1) of them.

Timed, wall clock, best of ``--repeat`` after one untimed warm-up call:

- ``flow.DIS`` with every preset of ``flow.DIS_PRESETS`` on ``--dis-frames`` frames, with the
  mean end-point error of its forward fields against the true flow;
- ``flow.RAFT`` (``raft`` and ``raft_small``, 12 updates) with random weights saved as a local
  ``.pth``: RAFT's work does not depend on its weights (a fixed number of updates on fixed
  shapes), so the speed is that of the trained model, its flow is meaningless. On the CPU
  (torch's default thread count) ``--cpu-frames`` frames; on CUDA, when available, also
  ``--gpu-frames`` frames for fp32/fp16/bf16 x ``--gpu-batch``, with torch's peak CUDA memory.

Then one shard through ``flow.run_shard`` (frame stores in, flow stores out with the default
codec: frame_range, bound 20, q90), ``--snippets`` snippets of ``--shard-frames`` frames each,
in a fresh (spawned) process per run: seconds per snippet including decoding, model set-up and
storage, best of ``--repeat``, and that process's peak RSS (the most of any run), its RSS
before ``run_shard`` in brackets. DIS ``--dis-preset`` on the CPU; on CUDA also RAFT fp32,
batch 16 (the config's defaults). Prints a Markdown table; progress goes to stderr.

    .venv/bin/python bench/flow_speed.py [--dis-frames 31] [--cpu-frames 5] [--cpu-batch 8]
        [--gpu-frames 33] [--gpu-batch 4 8 16 32] [--snippets 4] [--shard-frames 60]
        [--dis-preset fine] [-r 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pico.data import flow, synthetic
from pico.store import framestore
from timing import best_time, cpu_seconds, others_share

# torch is imported where it is used: the spawned run_shard processes import this module, and
# torch alone adds ~650 MB of RSS, which the DIS stage's own processes never carry.
WIDTH, HEIGHT, FPS = 455, 256, 30
RENDER_WIDTH = WIDTH + 1  # synthetic videos have even sizes; the last column is cropped
ITERS = 12
CODEC = {"scheme": "frame_range", "bound": 20, "quality": 90}


def render(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n`` frames, (n, H, W, 3) uint8, and their true forward flow, (n, 2, H, W)."""
    vid = synthetic.make_video(0, "bench", seconds=n / FPS, fps=FPS, width=RENDER_WIDTH, height=HEIGHT, cut=False)
    frames, truth = [], []
    for i in range(n):
        scene, t = vid.at(i / FPS)
        out = scene.render(t, dt=1 / FPS)
        frames.append(out["rgb"][:, :WIDTH])
        truth.append(out["flow"][:, :, :WIDTH])
    return np.stack(frames), np.stack(truth)


def save_weights(folder: Path, seed: int) -> dict[str, Path]:
    """Randomly initialised state dicts of both RAFT variants as ``.pth`` files; paths by variant."""
    import torch
    from torchvision.models import optical_flow

    paths = {}
    for variant, build in (("raft", optical_flow.raft_large), ("raft_small", optical_flow.raft_small)):
        torch.manual_seed(seed)
        paths[variant] = folder / f"{variant}-random.pth"
        torch.save(build(weights=None).state_dict(), paths[variant])
    return paths


def throughput(estimate: Callable, frames: np.ndarray, repeat: int) -> tuple[float, np.ndarray]:
    """Seconds per call of ``estimate(frames)``, after a warm-up call whose forward flow is returned."""
    fwd, _ = estimate(frames)
    return best_time(repeat, lambda: estimate(frames)), fwd


def end_point_error(fwd: np.ndarray, truth: np.ndarray) -> float:
    """Mean end-point error (px) of forward fields (T-1, 2, H, W) against the true flow."""
    return float(np.mean(np.linalg.norm(fwd - truth[: len(fwd)], axis=1)))


def dis_rows(frames: np.ndarray, truth: np.ndarray, repeat: int) -> list[dict]:
    """One row per DIS preset."""
    rows = []
    for preset in flow.DIS_PRESETS:
        seconds, fwd = throughput(flow.DIS(preset), frames, repeat)
        rows.append(
            {
                "backend": f"dis {preset}",
                "device": "cpu",
                "frames": len(frames),
                "seconds": seconds,
                "pairs": 2 * (len(frames) - 1),
                "epe": end_point_error(fwd, truth),
            }
        )
        print(f"  dis {preset}: {rows[-1]['pairs'] / seconds:.1f} pairs/s", file=sys.stderr)
    return rows


def raft_row(
    variant: str, weights: Path, frames: np.ndarray, device: str, precision: str, batch: int, repeat: int
) -> dict:
    """One RAFT configuration; on CUDA with torch's peak memory allocated (weights included)."""
    import torch

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    seconds, _ = throughput(flow.RAFT(variant, str(weights), ITERS, device, precision, batch), frames, repeat)
    row = {
        "backend": variant,
        "device": device,
        "precision": precision,
        "batch": batch,
        "frames": len(frames),
        "pairs": 2 * (len(frames) - 1),
        "seconds": seconds,
    }
    if device == "cuda":
        row["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(f"  {variant} {device} {precision} batch {batch}: {row['pairs'] / seconds:.1f} pairs/s", file=sys.stderr)
    return row


def raft_rows(weights: dict[str, Path], frames: np.ndarray, args: argparse.Namespace, cuda: bool) -> list[dict]:
    """RAFT on the CPU, and on CUDA when available (every precision and batch size)."""
    rows = []
    for variant, path in weights.items():
        for batch in args.cpu_batch:
            rows.append(raft_row(variant, path, frames[: args.cpu_frames], "cpu", "fp32", batch, args.repeat))
    if cuda:
        clip = frames[: args.gpu_frames]
        for variant, path in weights.items():
            for precision in ("fp32", "fp16", "bf16"):
                for batch in args.gpu_batch:
                    rows.append(raft_row(variant, path, clip, "cuda", precision, batch, args.repeat))
    return rows


def write_shard(frames: np.ndarray, folder: Path, snippets: int, length: int) -> list[dict]:
    """Frame stores of ``snippets`` consecutive snippets of ``length`` frames; their manifest rows."""
    rows = []
    for i in range(snippets):
        path = folder / f"bench{i:02d}{framestore.SUFFIX}"
        framestore.write(path, frames[i * length : (i + 1) * length], {"video": f"bench{i:02d}", "fps": FPS})
        rows.append({"video": f"bench{i:02d}", "status": "ok", "frames": str(path)})
    return rows


def memory_kib(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process, KiB, from ``/proc/self/status``.

    Not ``getrusage``'s ``ru_maxrss``: Linux carries it across ``exec``, so a spawned child
    would report at least its parent's RSS at the fork.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def shard_child(rows: list[dict], cfg: dict, out_dir: str) -> dict:
    """In a fresh process: ``run_shard`` once; its seconds and this process's RSS (KiB) before and at peak."""
    start_rss = memory_kib("VmRSS")
    start = time.perf_counter()
    flow.run_shard(rows, cfg, out_dir)
    seconds = time.perf_counter() - start
    result = {"seconds": seconds, "start_kib": start_rss, "peak_kib": memory_kib("VmHWM")}
    if cfg.get("device") == "cuda":
        import torch

        result["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return result


def shard_row(rows: list[dict], length: int, cfg: dict, out_dir: Path, repeat: int, label: str) -> dict:
    """``run_shard`` on snippets of ``length`` frames in ``repeat`` fresh spawned processes: the
    fastest run, the highest peak RSS."""
    runs = []
    for _ in range(repeat):
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
            runs.append(pool.submit(shard_child, rows, cfg, str(out_dir)).result())
    row = {
        "backend": label,
        "device": cfg.get("device", "cpu"),
        "precision": cfg.get("precision"),
        "batch": cfg.get("batch_size"),
        "frames": f"{len(rows)}x{length}",
        "pairs": len(rows) * 2 * (length - 1),
        "seconds": min(r["seconds"] for r in runs),
        "snippets": len(rows),
        "rss_mb": max(r["peak_kib"] for r in runs) / 1024,
        "start_mb": max(r["start_kib"] for r in runs) / 1024,
    }
    if "cuda_mb" in runs[0]:
        row["cuda_mb"] = max(r["cuda_mb"] for r in runs)
    print(f"  {label}: {row['seconds'] / len(rows):.2f} s/snippet, peak RSS {row['rss_mb']:.0f} MB", file=sys.stderr)
    return row


def shard_rows(
    frames: np.ndarray, weights: dict[str, Path], folder: Path, args: argparse.Namespace, cuda: bool
) -> list[dict]:
    """``run_shard`` with DIS, and with RAFT on CUDA when available."""
    rows = write_shard(frames, folder, args.snippets, args.shard_frames)
    out_dir = folder / "flow"
    dis = {"backend": "dis", "dis_preset": args.dis_preset, "dis_refine": 0, "codec": CODEC}
    found = [shard_row(rows, args.shard_frames, dis, out_dir, args.repeat, f"dis {args.dis_preset}, run_shard")]
    if cuda:
        cfg = {
            "backend": "raft",
            "weights": str(weights["raft"]),
            "iters": ITERS,
            "device": "cuda",
            "precision": "fp32",
            "batch_size": 16,
            "codec": CODEC,
        }
        found.append(shard_row(rows, args.shard_frames, cfg, out_dir, args.repeat, "raft, run_shard"))
    return found


def machine() -> str:
    """Cores, CPU model, library versions and the CUDA device, if any."""
    import torch
    import torchvision

    cpu = platform.processor() or platform.machine()
    if Path("/proc/cpuinfo").is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ]
        cpu = names[0] if names else cpu
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    return (
        f"{os.cpu_count()} cores ({cpu}), torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"torchvision {torchvision.__version__}, OpenCV {cv2.__version__}, {gpu}"
    )


def table(rows: list[dict], zero_epe: float, other_load: float, args: argparse.Namespace) -> str:
    """The rows as a Markdown table, with a header naming the machine and setup."""
    lines = [
        f"Flow speed, {machine()}; other processes used {other_load:.0%} of the cores meanwhile; synthetic "
        f"demo frames {WIDTH}x{HEIGHT}; wall clock, best of {args.repeat} after a warm-up call; pair = one field "
        f"in one direction (T frames -> 2 (T-1) pairs); RAFT with random weights ({ITERS} updates; same compute "
        f"as trained weights, so no EPE); fwd EPE against the true flow (zero flow: {zero_epe:.3f} px); run_shard "
        f"rows: fresh process per run, s/snippet includes decoding, model set-up and storage (codec "
        f"{CODEC['scheme']} q{CODEC['quality']}), peak RSS of that process "
        "(RSS before run_shard in brackets)",
        "",
        "| backend | device | precision | batch | frames | frame size | pairs/s | ms/pair | fwd EPE px "
        "| s/snippet | peak RSS MB | peak CUDA MB |",
        "|---|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        rate = r["pairs"] / r["seconds"]
        cells = [
            r["backend"],
            r["device"],
            r.get("precision") or "–",
            str(r.get("batch") or "–"),
            str(r["frames"]),
            f"{WIDTH}x{HEIGHT}",
            f"{rate:,.1f}",
            f"{1000 / rate:,.1f}",
            f"{r['epe']:.3f}" if "epe" in r else "–",
            f"{r['seconds'] / r['snippets']:.2f}" if "snippets" in r else "–",
            f"{r['rss_mb']:,.0f} ({r['start_mb']:,.0f})" if "rss_mb" in r else "–",
            f"{r['cuda_mb']:,.0f}" if "cuda_mb" in r else "–",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dis-frames", type=int, default=31, help="frames per DIS call (default 31)")
    parser.add_argument("--cpu-frames", type=int, default=5, help="frames per RAFT call on the CPU (default 5)")
    parser.add_argument("--cpu-batch", type=int, nargs="+", default=[8], help="RAFT batch sizes on the CPU (default 8)")
    parser.add_argument("--gpu-frames", type=int, default=33, help="frames per RAFT call on CUDA (default 33)")
    parser.add_argument(
        "--gpu-batch", type=int, nargs="+", default=[4, 8, 16, 32], help="RAFT batch sizes on CUDA (default 4 8 16 32)"
    )
    parser.add_argument("--snippets", type=int, default=4, help="snippets in the run_shard shard (default 4)")
    parser.add_argument("--shard-frames", type=int, default=60, help="frames per shard snippet (default 60)")
    parser.add_argument(
        "--dis-preset",
        choices=list(flow.DIS_PRESETS),
        default="fine",
        help="DIS preset of the run_shard run (default fine)",
    )
    parser.add_argument("-r", "--repeat", type=int, default=3, help="timed runs, best kept (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random RAFT weights (default 0)")
    args = parser.parse_args()
    start, before = time.perf_counter(), cpu_seconds()
    cuda = torch.cuda.is_available()
    needed = max(args.dis_frames, args.cpu_frames, args.snippets * args.shard_frames, args.gpu_frames if cuda else 0)
    frames, truth = render(needed)
    clip = frames[: args.dis_frames]
    with tempfile.TemporaryDirectory(prefix="pico-flow-") as tmp:
        folder = Path(tmp)
        weights = save_weights(folder, args.seed)
        rows = dis_rows(clip, truth, args.repeat)
        rows += raft_rows(weights, frames, args, cuda)
        rows += shard_rows(frames, weights, folder, args, cuda)
    load = others_share(before, cpu_seconds(), time.perf_counter() - start)
    print(table(rows, end_point_error(np.zeros_like(truth[: len(clip) - 1]), truth), load, args))


if __name__ == "__main__":
    main()
