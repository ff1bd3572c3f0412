"""Section 3.2 / A.1: point trajectories by flow chaining, and their forward-backward cuts.

Raw tracks record, at every step t -> t+1 of every point, both terms of Eq. 3 --
``fb_sq`` = |w + ŵ|² and ``mag_sq`` = |w|² + |ŵ|² in half precision -- so that the cut for
any (γ, δ) is a pass over the table and never touches the flow again: the paper could re-tune
δ cheaply; storing both terms makes γ cheap too.

Table layout (one row per point per frame, sorted by video, track, t): ``video`` string,
``track`` int32, ``t`` int32 (frame index in the snippet), ``x``, ``y`` float32 (pixel centres at
integers, x right, y down), ``fb_sq``, ``mag_sq`` float16 for the step t -> t+1, NaN on a
track's last row.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path
from typing import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pico import flowstore, logs, seeding
from pico.io import parquet_writer, read_parquet, write_parquet

log = logging.getLogger(__name__)

SCHEMA = pa.schema([
    ("video", pa.string()), ("track", pa.int32()), ("t", pa.int32()),
    ("x", pa.float32()), ("y", pa.float32()), ("fb_sq", pa.float16()), ("mag_sq", pa.float16()),
])
F16_MAX = float(np.finfo(np.float16).max)


def bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Sample ``field`` (C, H, W) at points inside [0, W-1] x [0, H-1]; float32 (C, n).
    Bilinear interpolation between pixel centres (Section 3.2)."""
    c, h, w = field.shape
    x0 = np.minimum(np.floor(x), w - 2)
    y0 = np.minimum(np.floor(y), h - 2)
    ax, ay = x - x0, y - y0
    i = y0.astype(np.intp) * w + x0.astype(np.intp)
    flat = field.reshape(c, -1)
    top_left, top_right = (flat.take(j, axis=1).astype(np.float32) for j in (i, i + 1))
    bottom_left, bottom_right = (flat.take(j, axis=1).astype(np.float32) for j in (i + w, i + w + 1))
    top = top_left + (top_right - top_left) * ax
    bottom = bottom_left + (bottom_right - bottom_left) * ax
    return top + (bottom - top) * ay


class StoredField:
    """A flow field as stored (uint8 codes and ranges), sampled without decoding it to float:
    dequantization is affine, so it commutes with bilinear interpolation."""

    def __init__(self, codes: np.ndarray, ranges: np.ndarray):
        self.codes, self.ranges = codes, ranges
        self.shape = codes.shape

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        sampled = bilinear(self.codes, x, y)
        return np.stack([flowstore.dequantize(s, *span) for s, span in zip(sampled, self.ranges)])


def sample(field, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Flow at the points: from a float array (C, H, W) or a StoredField."""
    return field.sample(x, y) if isinstance(field, StoredField) else bilinear(field, x, y)


def start_points(n: int, n_frames: int, width: int, height: int, rng: np.random.Generator):
    """``n`` start points uniform in space and time (A.1): (t0, x, y)."""
    t0 = rng.integers(0, n_frames, n).astype(np.int32)
    x = rng.uniform(0, width - 1, n).astype(np.float32)
    y = rng.uniform(0, height - 1, n).astype(np.float32)
    return t0, x, y


def half(values: np.ndarray) -> np.ndarray:
    """Round to float16 as stored (clamped to its largest finite value), back as float32."""
    return np.minimum(values, F16_MAX).astype(np.float16).astype(np.float32)


def passes(fb_sq: np.ndarray, mag_sq: np.ndarray, gamma: float, delta: float) -> np.ndarray:
    """Eq. 3: |w + ŵ|² < γ(|w|² + |ŵ|²) + δ. NaN (a track's last row) never passes."""
    return fb_sq < gamma * mag_sq + delta


def track(
    fields: Iterable[tuple[np.ndarray, np.ndarray]],
    n_frames: int, t0: np.ndarray, x: np.ndarray, y: np.ndarray, max_gamma: float, max_delta: float,
) -> dict[str, np.ndarray]:
    """Chain points through the flow (Eq. 2), vectorised over the points alive at each step.

    ``fields`` yields, for t = 0 .. n_frames - 2 in order, the forward flow t -> t+1 and the
    backward flow t+1 -> t: float arrays (2, H, W) or StoredFields. A track stops when its point leaves the frame, at
    the snippet's end, or when the loosest test (max_gamma, max_delta) fails; the test uses the
    float16 values that are stored, so the cut at the max bounds is the raw track itself.
    Returns the rows as columns (track, t, x, y, fb_sq, mag_sq), sorted by track and t.
    """
    x, y = x.astype(np.float32).copy(), y.astype(np.float32).copy()
    alive = np.ones(len(t0), bool)
    steps = itertools.chain(fields, [None])  # None: the last frame, where every track ends
    parts = []
    for t, step_fields in zip(range(n_frames), steps):
        idx = np.flatnonzero(alive & (t0 <= t))
        if len(idx) == 0:
            continue
        fb = np.full(len(idx), np.nan, np.float32)
        mag = np.full(len(idx), np.nan, np.float32)
        cont = np.array([], np.int64)
        if step_fields is not None:
            fwd, bwd = step_fields
            h, w = fwd.shape[1:]
            step = sample(fwd, x[idx], y[idx])
            nx, ny = x[idx] + step[0], y[idx] + step[1]
            inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
            back = sample(bwd, nx[inside], ny[inside])
            fwd_in = step[:, inside]
            fb_in = half(((fwd_in + back) ** 2).sum(0))
            mag_in = half((fwd_in**2).sum(0) + (back**2).sum(0))
            ok = passes(fb_in, mag_in, max_gamma, max_delta)
            cont = np.flatnonzero(inside)[ok]
            fb[cont], mag[cont] = fb_in[ok], mag_in[ok]
        parts.append((idx, np.full(len(idx), t, np.int32), x[idx].copy(), y[idx].copy(), fb, mag))
        moving = idx[cont]
        x[moving], y[moving] = nx[cont], ny[cont]
        alive[idx] = False
        alive[moving] = True
    if not parts:
        empty = np.array([], np.float32)
        return {"track": np.array([], np.int32), "t": np.array([], np.int32), "x": empty, "y": empty, "fb_sq": empty, "mag_sq": empty}
    cols = [np.concatenate(c) for c in zip(*parts)]
    order = np.lexsort((cols[1], cols[0]))
    names = ("track", "t", "x", "y", "fb_sq", "mag_sq")
    out = {name: col[order] for name, col in zip(names, cols)}
    out["track"] = out["track"].astype(np.int32)
    return out


def table(video: str, rows: dict[str, np.ndarray]) -> pa.Table:
    """One video's rows as a table of SCHEMA."""
    n = len(rows["t"])
    return pa.table({
        "video": pa.array([video] * n, pa.string()),
        "track": rows["track"], "t": rows["t"], "x": rows["x"], "y": rows["y"],
        "fb_sq": rows["fb_sq"].astype(np.float16), "mag_sq": rows["mag_sq"].astype(np.float16),
    }, schema=SCHEMA)


def video_tracks(row: dict, cfg: dict) -> pa.Table:
    """Raw tracks of one snippet from its stored flow (config ``tracking``)."""
    rng = seeding.rng(cfg["seed"], "tracks", row["video"])
    t0, x, y = start_points(cfg["points_per_video"], row["n_frames"], row["width"], row["height"], rng)
    with flowstore.FlowStore(row["flow"]) as store:
        fields = ((StoredField(*store.quantized("fwd", t)), StoredField(*store.quantized("bwd", t))) for t in range(len(store)))
        rows = track(fields, row["n_frames"], t0, x, y, cfg["max_gamma"], cfg["max_delta"])
    return table(row["video"], rows)


def run_shard(rows: list[dict], cfg: dict, out: str | Path) -> None:
    """Raw tracks of every ok snippet of a shard into one Parquet file (a row group per video)."""
    todo = [r for r in rows if r["status"] == "ok"]
    with parquet_writer(out, SCHEMA) as writer:
        for row in logs.progress(todo, len(todo), "tracks", log):
            writer.write_table(video_tracks(row, cfg))
        if not todo:
            writer.write_table(SCHEMA.empty_table())


def cut(raw: pa.Table, gamma: float, delta: float) -> pa.Table:
    """Each track's prefix up to the first step that fails Eq. 3 for (γ, δ): the point is
    taken as occluded in the next frame. That row becomes the last (fb_sq, mag_sq NaN)."""
    if raw.num_rows == 0:
        return raw
    fb = raw["fb_sq"].to_numpy(zero_copy_only=False).astype(np.float32)
    mag = raw["mag_sq"].to_numpy(zero_copy_only=False).astype(np.float32)
    video = pc.dictionary_encode(raw["video"]).combine_chunks().indices.to_numpy()
    trk = raw["track"].to_numpy()
    first = np.r_[True, (video[1:] != video[:-1]) | (trk[1:] != trk[:-1])]
    fail = ~passes(fb, mag, gamma, delta)
    fails_before = np.cumsum(fail) - fail
    keep = fails_before == fails_before[np.flatnonzero(first)][np.cumsum(first) - 1]
    last = keep & fail
    fb[last], mag[last] = np.nan, np.nan
    kept = raw.filter(pa.array(keep))
    return kept.set_column(5, "fb_sq", pa.array(fb[keep].astype(np.float16))).set_column(
        6, "mag_sq", pa.array(mag[keep].astype(np.float16)))


def write(table_: pa.Table, out: str | Path) -> None:
    write_parquet(table_, out)


def read(path: str | Path) -> pa.Table:
    """A raw or cut tracks table, checked (``pico.io.read_parquet``: checksums, SCHEMA)."""
    return read_parquet(path, SCHEMA)
