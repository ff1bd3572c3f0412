"""Does Eq. 3 stop tracks at occlusions, per CPU flow backend? Measured on the demo world's
true occlusions (pico.data.synthetic), through the pipeline's own chain.

Input: ``--videos`` videos ``pico.data.synthetic.make_video(--seed, "occNN", cut=False)`` rendered
at ``--size`` (default 171x128, the demo's frames: frames.short_side 128 of its 320x240 world;
the world's motion scales with the short side, so rendering there is the demo's motion without
the resize), ``--frames`` frames at 30 fps each (default 60: the demo's 2 s snippets).

Per backend (``pico.data.flow.estimator``, and Farneback; ``true`` is the generator's exact forward and backward
flow, the ceiling of any estimator): flow of every snippet -> the flow codec (tiled, q90,
the demo's) -> ``pico.data.tracks.video_tracks`` (``--points`` start points per video uniform in
space and time, raw at the demo's loosest bounds 0.5, 16) -> ``pico.data.tracks.cut`` at
(``--gamma``, ``--delta``), the paper's (0, 4) by default, without and with the
motion-boundary criterion (Sundaram et al. 2010, Eq. 6).

The truth of every start point: its surface (the nearest object covering it, else the
background), followed analytically (``Thing.to_local``/``to_image``, the background's pan); it
is *occluded* at the first frame where a nearer object covers it while it is inside the frame,
*visible* if that never happens before it leaves the frame or the snippet ends. Scores:

- caught: share of occluded tracks stopped by a test (``END_OCCLUDED`` or ``END_BOUNDARY``) with
  their last row within one frame of the last visible frame (t_occ - 2 <= last <= t_occ);
- late >= 2: share of occluded tracks whose last row is 2 or more frames past the last visible
  frame (last >= t_occ + 1), however they ended;
- wrongly stopped: share of visible tracks stopped by a test.

Also the world's statistics: tracks, the share occluded, and at each occlusion the relative
motion |w + ŵ| of the true flow (the ``true`` backend's Eq. 3 term): Eq. 3 at γ = 0 can only
fire where it is at least √δ. Then seconds per frame pair (one field, one direction) of each
backend at ``--size`` (from the runs above) and at ``--timing-size`` (default 455x256, the
paper's frames; ``--timing-frames`` frames, best of ``--repeat``). Prints a Markdown table;
progress goes to stderr.

    PYTHONPATH=bench .venv/bin/python bench/occlusions.py [--videos 4] [--frames 60]
        [--points 4000] [--size 171x128] [--gamma 0] [--delta 4] [--backends true dis:fine ...]
        [--timing-size 455x256] [--timing-frames 3] [-r 1] [--seed 0]

A backend is ``NAME`` or ``NAME:PRESET[:REFINE]`` for DIS (``dis:fine:5``: preset fine, then 5
fixed-point iterations of full-resolution variational refinement).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from pico.data import flow, synthetic, tracks
from pico.store import flowstore
from timing import best_time

FPS = 30
CODEC = {"scheme": "tiled", "bound": 20, "quality": 90}  # the default codec (flow.codec)
RAW_BOUNDS = (0.5, 16)  # the demo's tracking.max_gamma, max_delta
BACKENDS = [
    "true",
    "dis:ultrafast",
    "dis:fast",
    "dis:medium",
    "dis:fine",
    "dis:fine:5",
    "dis:fine:20",
    "farneback",
    "deepflow",
    "tvl1",
    "rlof",
]


def size(text: str) -> tuple[int, int]:
    width, height = text.split("x")
    return int(width), int(height)


def estimator(name: str) -> flow.OpenCVFlow:
    """The backend of a name: ``dis:PRESET[:REFINE]``, another ``flow.backend``, or
    ``farneback`` (OpenCV's Farneback 2003 with its defaults: measured here only, not a
    ``flow.backend``: it returns zero flow on tests/test_flow.py's shifted texture)."""
    backend, *options = name.split(":")
    if backend == "farneback":
        return flow.OpenCVFlow(cv2.FarnebackOpticalFlow_create())
    if backend != "dis":
        return flow.estimator({"backend": backend})
    return flow.estimator(
        {
            "backend": "dis",
            "dis_preset": options[0] if options else "fine",
            "dis_refine": int(options[1]) if len(options) > 1 else 0,
        }
    )


def scene_of(seed: int, video: str, n_frames: int, width: int, height: int) -> synthetic.Scene:
    """The one shot of a cut-free demo video."""
    vid = synthetic.make_video(seed, video, seconds=n_frames / FPS, fps=FPS, width=width, height=height, cut=False)
    return vid.shots[0][0]


def truth(scene: synthetic.Scene, starts: dict[str, np.ndarray], n_frames: int) -> dict[str, np.ndarray]:
    """Per start point: ``occluded_at`` (first covered frame inside the frame, -1 if none) and
    ``relative`` (|w + ŵ| of the true flow at that step, NaN if none)."""
    t0 = starts["t"]
    layer = scene.surfaces(starts["x"], starts["y"], t0 / FPS)
    x, y = scene.follow(layer, starts["x"], starts["y"], t0 / FPS, np.arange(n_frames) / FPS)
    inside = (x >= 0) & (x <= scene.width - 1) & (y >= 0) & (y <= scene.height - 1)
    covered = np.stack([scene.covering(x[t], y[t], t / FPS) > layer for t in range(n_frames)])
    frames = np.arange(n_frames)[:, None]
    still_inside = np.cumprod(inside | (frames < t0), axis=0).astype(bool)  # not yet left the frame
    event = covered & still_inside & (frames > t0)
    occluded_at = np.where(event.any(0), event.argmax(0), -1)
    relative = np.full(len(t0), np.nan)
    for i in np.flatnonzero(occluded_at > 0):
        relative[i] = relative_motion(scene, x[:, i], y[:, i], int(occluded_at[i]))
    return {"occluded_at": occluded_at, "relative": relative}


def relative_motion(scene: synthetic.Scene, x: np.ndarray, y: np.ndarray, covered: int) -> float:
    """|w + ŵ| of the true flow on the step onto the occluder: w the point's own motion from
    frame ``covered`` - 1, ŵ the occluder's backward flow where the point lands."""
    step = np.array([x[covered] - x[covered - 1], y[covered] - y[covered - 1]])
    px, py, t = np.array([x[covered]]), np.array([y[covered]]), covered / FPS
    thing = scene.things[int(scene.covering(px, py, t)[0]) - 1]  # the occluder: an object, never the background
    bx, by = thing.to_image(*thing.to_local(px, py, t), t - 1 / FPS)
    return float(np.hypot(step[0] + bx[0] - px[0], step[1] + by[0] - py[0]))


def last_rows(cut) -> dict[str, np.ndarray]:
    """Each track's first row (t, x, y: its start) and last row (t, end) of one video's cut."""
    trk = cut["track"].to_numpy()
    first = np.r_[True, trk[1:] != trk[:-1]]
    last = np.r_[trk[1:] != trk[:-1], True]
    cols = {k: cut[k].to_numpy() for k in ("t", "x", "y", "end")}
    return {
        "track": trk[first],
        "t": cols["t"][first],
        "x": cols["x"][first],
        "y": cols["y"][first],
        "last": cols["t"][last],
        "end": cols["end"][last],
    }


def score(ends: dict[str, np.ndarray], occluded_at: np.ndarray) -> dict[str, np.ndarray]:
    """Per track: occluded or not, caught, late >= 2, stopped by a test."""
    stopped = np.isin(ends["end"], [tracks.END_OCCLUDED, tracks.END_BOUNDARY])
    occluded = occluded_at > 0
    caught = occluded & stopped & (ends["last"] >= occluded_at - 2) & (ends["last"] <= occluded_at)
    late = occluded & (ends["last"] >= occluded_at + 1)
    return {"occluded": occluded, "caught": caught, "late": late, "wrong": ~occluded & stopped}


def run_backend(name: str, videos: list[tuple[str, synthetic.Scene, np.ndarray]], args, folder: Path) -> dict:
    """One backend over every video: its scores with and without the motion-boundary criterion,
    the world's truth (the same for every backend) and its seconds per pair."""
    estimate = None if name == "true" else estimator(name)
    totals = {mb: [] for mb in (False, True)}
    world, seconds, pairs = [], 0.0, 0
    for video, scene, frames in videos:
        start = time.perf_counter()
        fwd, bwd = synthetic.true_flow(scene, len(frames), FPS) if estimate is None else estimate(frames)
        seconds += time.perf_counter() - start
        pairs += 2 * (len(frames) - 1)
        path = folder / f"{video}{flowstore.SUFFIX}"
        flowstore.write(path, fwd, bwd, {"video": video}, **CODEC)
        row = {"video": video, "n_frames": len(frames), "width": scene.width, "height": scene.height, "flow": str(path)}
        cfg = {
            "seed": args.seed,
            "points_per_video": args.points,
            "max_gamma": RAW_BOUNDS[0],
            "max_delta": RAW_BOUNDS[1],
        }
        raw = tracks.video_tracks(row, cfg)
        starts = last_rows(raw)
        got = truth(scene, starts, len(frames))
        world.append(got)
        for mb in (False, True):
            ends = last_rows(tracks.cut(raw, args.gamma, args.delta, motion_boundary=mb))
            assert (ends["track"] == starts["track"]).all()  # a cut keeps every track's first row
            totals[mb].append(score(ends, got["occluded_at"]))
    merged = {mb: {k: np.concatenate([s[k] for s in totals[mb]]) for k in totals[mb][0]} for mb in totals}
    print(f"  {name}: {seconds / pairs * 1000:.1f} ms/pair", file=sys.stderr)
    return {
        "scores": merged,
        "world": {k: np.concatenate([w[k] for w in world]) for k in world[0]},
        "seconds_per_pair": seconds / pairs,
    }


def timing(name: str, frames: np.ndarray, repeat: int) -> float:
    """Seconds per pair at the timing size, after a warm-up call (the true flow is not timed)."""
    if name == "true":
        return float("nan")
    estimate = estimator(name)
    estimate(frames)
    return best_time(repeat, lambda: estimate(frames)) / (2 * (len(frames) - 1))


def render_frames(scene: synthetic.Scene, n: int) -> np.ndarray:
    return np.stack([scene.render(t / FPS)["rgb"] for t in range(n)])


def share(mask: np.ndarray, of: np.ndarray) -> str:
    n = int(of.sum())
    return f"{(mask & of).sum() / n:.0%} ({(mask & of).sum()}/{n})" if n else "–"


def table(results: dict, times: dict, args) -> str:
    world = next(iter(results.values()))["world"]
    occluded = world["occluded_at"] > 0
    relative = world["relative"][occluded]
    width, height = args.size
    tw, th = args.timing_size
    lines = [
        f"Occlusions caught by Eq. 3 at (γ={args.gamma:g}, δ={args.delta:g}), {os.cpu_count()} cores, OpenCV "
        f"{cv2.__version__}; {args.videos} demo videos x {args.frames} frames at {width}x{height}, {args.points} "
        f"start points each (seed {args.seed}): {len(occluded)} tracks, {occluded.sum()} truly occluded "
        f"({occluded.mean():.1%}); true relative motion at the occlusion |w + ŵ|: median "
        f"{np.median(relative) if len(relative) else float('nan'):.2f} px, "
        f"{(relative >= np.sqrt(args.delta)).mean() if len(relative) else float('nan'):.0%} at least √δ = "
        f"{np.sqrt(args.delta):.2f} px. Flow through the codec (tiled q90); +MB: with the motion-boundary "
        f"criterion (Sundaram et al. 2010, Eq. 6).",
        "",
        f"| backend | caught | late ≥ 2 | wrongly stopped | caught +MB | late ≥ 2 +MB | wrongly stopped +MB "
        f"| s/pair {width}x{height} | s/pair {tw}x{th} |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for name, r in results.items():
        cells = [name]
        for mb in (False, True):
            s = r["scores"][mb]
            cells += [
                share(s["caught"], s["occluded"]),
                share(s["late"], s["occluded"]),
                share(s["wrong"], ~s["occluded"]),
            ]
        cells += [
            "–" if name == "true" else f"{r['seconds_per_pair']:.4f}",
            "–" if np.isnan(times[name]) else f"{times[name]:.4f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=4, help="demo videos (default 4)")
    parser.add_argument("--frames", type=int, default=60, help="frames per video (default 60)")
    parser.add_argument("--points", type=int, default=4000, help="start points per video (default 4000)")
    parser.add_argument("--size", type=size, default=(171, 128), help="frame size WxH (default 171x128)")
    parser.add_argument("--gamma", type=float, default=0.0, help="Eq. 3's gamma (default 0)")
    parser.add_argument("--delta", type=float, default=4.0, help="Eq. 3's delta (default 4)")
    parser.add_argument("--backends", nargs="+", default=BACKENDS, help=f"default: {' '.join(BACKENDS)}")
    parser.add_argument(
        "--timing-size", type=size, default=(455, 256), help="frame size of the timing (default 455x256)"
    )
    parser.add_argument("--timing-frames", type=int, default=3, help="frames per timed call (default 3)")
    parser.add_argument(
        "-r", "--repeat", type=int, default=1, help="timed runs at the timing size, best kept (default 1)"
    )
    parser.add_argument("--seed", type=int, default=0, help="world and start-point seed (default 0)")
    args = parser.parse_args()
    width, height = args.size
    videos = []
    for i in range(args.videos):
        scene = scene_of(args.seed, f"occ{i:02d}", args.frames, width, height)
        videos.append((f"occ{i:02d}", scene, render_frames(scene, args.frames)))
    timed = render_frames(scene_of(args.seed, "timing", args.timing_frames, *args.timing_size), args.timing_frames)
    results, times = {}, {}
    with tempfile.TemporaryDirectory(prefix="pico-occlusions-") as tmp:
        for name in args.backends:
            results[name] = run_backend(name, videos, args, Path(tmp))
            times[name] = timing(name, timed, args.repeat)
    print(table(results, times, args))


if __name__ == "__main__":
    main()
