"""Which tracking options to default to? pico's tracker scored as TAP-Vid scores it
(pico.evaluation.tapvid) on the ground truth of the demo's *pretraining* videos, per CPU flow
backend and cut, with what each option buys PiCO: the wrong pairs it removes, the temporal gap
it costs.

Input: the scenes of the demo's pretraining videos ``synth0000`` ... (``--videos`` of them, both
shots of each: ``pico.data.synthetic.make_video(--seed, id, cut=True)`` as the download stage
makes them), never the ``tapvid*`` evaluation scenes. Each shot's scene is rendered from t = 0
at ``--size`` (default 171x128: the demo's frames, short side 128 of its 320x240 world; the
world's motion scales with the size) for ``--frames`` frames at 30 fps, with the exact tracks of
``--points`` points (``tapvid.scene_video``).

Per backend (bench/occlusions.py's names: DIS presets, farneback, deepflow, tvl1, rlof; RAFT
needs a GPU, none here): the flow of every scene through the demo's codec (tiled q90), then per
cut (γ, δ) and motion-boundary setting (+MB) ``tapvid.evaluate_video`` in both query modes: AJ
(first, strided), <δ^x_avg and OA (first). Then anchor sampling (``pico.data.sampling.anchor_frames``,
2 frames, ``--draws`` draws per scene) over the tracks of mode ``first`` (each point followed
forward from where it was drawn: the tracks stage's tracks from those starts, a track censored
where it reaches the last frame): every track spanning both frames is a pair; it is *wrong*
where the point is occluded on either frame or its tracked position is more than ``--wrong-px``
px (frame pixels) from the truth on either. Columns: wrong pairs (share), pairs per draw, and the
median temporal gap of the pairs (frames). Prints a Markdown table; progress to stderr.

    PYTHONPATH=src:bench .venv/bin/python bench/track_quality.py [--videos 4] [--frames 60]
        [--points 512] [--size 171x128] [--backends dis:fine ...] [--draws 50] [--wrong-px 2] [--seed 0]
        [--world-from config/mini.yaml]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

from occlusions import CODEC, FPS, estimator, size
from pico import seeding
from pico.data import sampling, synthetic
from pico.evaluation import tapvid
from pico.store import flowstore

BACKENDS = ["dis:ultrafast", "dis:fast", "dis:medium", "dis:fine", "farneback", "deepflow", "tvl1", "rlof"]
#: (γ, δ) around the demo's (0, 4), each without and with the motion-boundary stop.
CUTS = [(0.0, 1.0), (0.0, 4.0), (0.0, 16.0), (0.1, 4.0)]


def world_from(path: str) -> synthetic.World:
    """The world of a config file's demo dataset (``datasets.demo.synthetic.world``)."""
    settings = yaml.safe_load(Path(path).read_text())["datasets"]["demo"]["synthetic"].get("world")
    return synthetic.World.from_settings(settings)


def scenes(args) -> list[tapvid.Video]:
    """Both shots of each pretraining video as ground-truth videos, named ``synthNNNN.S``."""
    width, height = args.size
    videos = []
    for i in range(args.videos):
        name = f"synth{i:04d}"
        made = synthetic.make_video(
            args.seed, name, args.frames / FPS * 2, FPS, width, height, cut=True, world=args.world
        )
        for shot, (scene, _) in enumerate(made.shots):
            videos.append(
                tapvid.scene_video(
                    f"{name}.{shot}", scene, args.seed, n_frames=args.frames, fps=FPS, points=args.points
                )
            )
    return videos


def pairs(video: tapvid.Video, predicted, args) -> dict[str, list]:
    """Anchor-sampled pairs over mode ``first``'s tracks: per pair wrong or not, and its gap."""
    df = predicted.to_pandas()
    n_frames = len(video.frames)
    occluded = df.occluded.to_numpy().reshape(-1, n_frames)
    xy = df[["x", "y"]].to_numpy().reshape(-1, n_frames, 2)
    track = df.track.to_numpy().reshape(-1, n_frames)[:, 0]
    tracked = ~occluded
    start, end = tracked.argmax(1), n_frames - 1 - tracked[:, ::-1].argmax(1)
    truth, truth_occluded = video.points[track], video.occluded[track]
    bad = truth_occluded | (np.linalg.norm(xy - truth, axis=-1) > args.wrong_px)
    rng = seeding.rng(args.seed, "bench-track-quality", video.name)
    out = {"wrong": [], "gap": [], "per_draw": []}
    for _ in range(args.draws):
        frames = sampling.anchor_frames(start, end, end == n_frames - 1, n_frames, 2, rng)
        if len(frames) < 2:
            out["per_draw"].append(0)
            continue
        a, b = frames
        both = tracked[:, a] & tracked[:, b]
        out["wrong"] += list(bad[both, a] | bad[both, b])
        out["gap"] += [abs(b - a)] * int(both.sum())
        out["per_draw"].append(int(both.sum()))
    return out


def run_backend(name: str, videos: list[tapvid.Video], args, folder: Path) -> list[dict]:
    """One backend: flow of every video, then every cut's scores and pairs."""
    estimate, flows, seconds = estimator(name), [], 0.0
    for video in videos:
        start = time.perf_counter()
        fwd, bwd = estimate(video.frames)
        seconds += time.perf_counter() - start
        path = folder / f"{video.name}{flowstore.SUFFIX}"
        flowstore.write(path, fwd, bwd, {"video": video.name}, **CODEC)
        flows.append(path)
    print(f"  {name}: flow {seconds:.0f} s", file=sys.stderr)
    rows = []
    for (gamma, delta), boundary in itertools.product(CUTS, (False, True)):
        scored = {mode: [] for mode in tapvid.MODES}
        found = {"wrong": [], "gap": [], "per_draw": []}
        for video, path in zip(videos, flows):
            for mode in tapvid.MODES:
                result, predicted = tapvid.evaluate_video(
                    video, path, mode=mode, gamma=gamma, delta=delta, motion_boundary=boundary
                )
                scored[mode].append(result)
                if mode == "first":
                    for key, values in pairs(video, predicted, args).items():
                        found[key] += values
        first, strided = tapvid.summary(scored["first"]), tapvid.summary(scored["strided"])
        rows.append(
            {
                "backend": name,
                "cut": f"({gamma:g}, {delta:g})" + (" +MB" if boundary else ""),
                "AJ first": first["aj"],
                "AJ strided": strided["aj"],
                "δavg first": first["delta_avg"],
                "OA first": first["oa"],
                "wrong pairs": float(np.mean(found["wrong"])) if found["wrong"] else float("nan"),
                "pairs/draw": float(np.mean(found["per_draw"])),
                "median gap": float(np.median(found["gap"])) if found["gap"] else float("nan"),
            }
        )
    return rows


def table(rows: list[dict], args, seconds: float) -> str:
    width, height = args.size
    keys = list(rows[0])
    lines = [
        f"World of {args.world_from or 'the demo'}: {args.videos} pretraining videos (both shots: {2 * args.videos} "
        f"scenes) x {args.frames} frames at {width}x{height}, 30 fps, {args.points} points each (seed {args.seed}); "
        f"flow through the tiled q90 codec; anchor sampling {args.draws} draws per scene, a pair wrong beyond "
        f"{args.wrong_px:g} px or occluded; "
        f"OpenCV {cv2.__version__}; {seconds / 60:.1f} min.",
        "",
        "| " + " | ".join(keys) + " |",
        "|---|---|" + "--:|" * (len(keys) - 2),
    ]
    for row in rows:
        cells = [row["backend"], row["cut"]] + [
            f"{row[k]:.1%}" if k == "wrong pairs" else f"{row[k]:.3g}" for k in keys[2:]
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=int, default=4, help="pretraining videos, two scenes each (default 4)")
    parser.add_argument("--frames", type=int, default=60, help="frames per scene (default 60: a demo snippet)")
    parser.add_argument("--points", type=int, default=512, help="ground-truth points per scene (default 512)")
    parser.add_argument("--size", type=size, default=(171, 128), help="frame size WxH (default 171x128)")
    parser.add_argument("--backends", nargs="+", default=BACKENDS, help=f"default: {' '.join(BACKENDS)}")
    parser.add_argument("--draws", type=int, default=50, help="anchor-sampling draws per scene (default 50)")
    parser.add_argument("--wrong-px", type=float, default=2.0, help="a pair is wrong beyond this (default 2 px)")
    parser.add_argument("--seed", type=int, default=0, help="world, points and draws seed (default 0)")
    parser.add_argument(
        "--world-from", help="a config YAML whose datasets.demo.synthetic.world to use (default: the demo's)"
    )
    args = parser.parse_args()
    args.world = world_from(args.world_from) if args.world_from else synthetic.World()
    start = time.perf_counter()
    videos = scenes(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pico-track-quality-") as tmp:
        for name in args.backends:
            rows += run_backend(name, videos, args, Path(tmp))
    print(table(rows, args, time.perf_counter() - start))


if __name__ == "__main__":
    main()
