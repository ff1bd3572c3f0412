"""Section 3.2 / A.1: point trajectories by flow chaining, and their forward-backward cuts.

Raw tracks record, at every step t -> t+1 of every point, both terms of Eq. 3 --
``fb_sq`` = |w + ŵ|² and ``mag_sq`` = |w|² + |ŵ|² in half precision -- so that the cut for
any (γ, δ) is a pass over the table and never touches the flow again: the paper could re-tune
δ cheaply; storing both terms makes γ cheap too. Beyond the paper they also record Sundaram et
al. (2010)'s motion-boundary term (their Eq. 6, ``boundary``), which a cut may apply as well.

Table layout (one row per point per frame, sorted by video, track, t): ``video`` string,
``track`` int32, ``t`` int32 (frame index in the snippet), ``x``, ``y`` float32 (pixel centres at
integers, x right, y down), ``fb_sq``, ``mag_sq`` float16 for the step t -> t+1, NaN on a
track's last row; ``end`` int8, 0 on every row but a track's last, there why the track ended
(``END_LEFT``, ``END_OCCLUDED``, ``END_SNIPPET``, ``END_BOUNDARY``); ``boundary`` float16, the
motion-boundary ratio of the step t -> t+1 (``motion_boundary_ratio``), NaN on a track's last row.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pico import logs, seeding
from pico.store import flowstore
from pico.store.files import parquet_writer, read_parquet, write_parquet

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("track", pa.int32()),
        ("t", pa.int32()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("fb_sq", pa.float16()),
        ("mag_sq", pa.float16()),
        ("end", pa.int8()),
        ("boundary", pa.float16()),
    ]
)
F16_MAX = float(np.finfo(np.float16).max)

#: Why a track ended, on its last row (``end``; 0 on every other row).
END_LEFT = 1  # the point's next position is outside the frame
END_OCCLUDED = 2  # the step failed Eq. 3 at the table's (γ, δ): the point is taken as occluded
END_SNIPPET = 3  # the snippet's last frame
END_BOUNDARY = 4  # Sundaram et al.'s motion-boundary criterion (a cut with motion_boundary only)

#: Sundaram et al. (2010), Eq. 6: a motion boundary where |∇u|² + |∇v|² > 0.01 |w|² + 0.002.
BOUNDARY_SCALE, BOUNDARY_FLOOR = 0.01, 0.002


def bilinear(field: np.ndarray, x: np.ndarray, y: np.ndarray, *, decode: Callable | None = None) -> np.ndarray:
    """Sample ``field`` (C, H, W) at points inside [0, W-1] x [0, H-1]; float32 (C, n).
    Bilinear interpolation between pixel centres (Section 3.2). ``decode(values, rows, cols)``,
    if given, turns the values (C, n) gathered at pixels (rows, cols) into float32 first."""
    c, h, w = field.shape
    x0 = np.minimum(np.floor(x), w - 2)
    y0 = np.minimum(np.floor(y), h - 2)
    ax, ay = x - x0, y - y0
    rows, cols = y0.astype(np.intp), x0.astype(np.intp)
    flat = field.reshape(c, -1)

    def corner(dr: int, dc: int) -> np.ndarray:
        values = flat.take((rows + dr) * w + cols + dc, axis=1)
        return values.astype(np.float32) if decode is None else decode(values, rows + dr, cols + dc)

    top_left, top_right, bottom_left, bottom_right = (corner(dr, dc) for dr, dc in ((0, 0), (0, 1), (1, 0), (1, 1)))
    top = top_left + (top_right - top_left) * ax
    bottom = bottom_left + (bottom_right - bottom_left) * ax
    return top + (bottom - top) * ay


class StoredField:
    """A flow field as stored (``flowstore.Quantized``: uint8 codes, per-tile ranges), sampled
    without decoding it to float: only the four pixels around each point are dequantized, each
    by its own tile's map (a point may sit between tiles), then interpolated."""

    def __init__(self, codes: np.ndarray, ranges: np.ndarray, tile: int | None):
        self.codes, self.tile = codes, tile
        self.maps = np.stack(flowstore.lo_step(ranges), axis=1)  # (2 components, [lo, step], tile rows, columns)
        self.shape = codes.shape

    def _decode(self, codes: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        at = flowstore.at_pixels(self.maps, self.tile, rows, cols)
        return flowstore.dequantize(codes, at[:, 0], at[:, 1])

    def sample(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return bilinear(self.codes, x, y, decode=self._decode)


def stored_fields(store: flowstore.FlowStore) -> Iterator[tuple[StoredField, StoredField]]:
    """A snippet's stored fields in order, t = 0 .. T-2: (forward t -> t+1, backward t+1 -> t),
    read one pair at a time."""
    for t in range(len(store)):
        yield StoredField(*store.quantized("fwd", t)), StoredField(*store.quantized("bwd", t))


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


def at_motion_boundary(boundary: np.ndarray) -> np.ndarray:
    """Sundaram et al.'s Eq. 6 holds: the ratio of its sides (``motion_boundary_ratio``) is
    above 1. NaN (a track's last row) never holds."""
    return boundary > 1


def motion_boundary_ratio(field, x: np.ndarray, y: np.ndarray, step: np.ndarray) -> np.ndarray:
    """Sundaram et al. (2010)'s motion-boundary term at the points, as the ratio of the two
    sides of their Eq. 6, (|∇u|² + |∇v|²) / (0.01 |w|² + 0.002): above 1 at a motion boundary.

    ``field`` is the forward flow w = (u, v) and ``step`` its value at the points (2, n). The
    gradient is the central difference of the bilinear interpolant over ±1 px, one-sided where
    that leaves the frame.
    """
    h, w = field.shape[1:]
    x0, x1 = np.maximum(x - 1, 0), np.minimum(x + 1, w - 1)
    y0, y1 = np.maximum(y - 1, 0), np.minimum(y + 1, h - 1)
    d_dx = (sample(field, x1, y) - sample(field, x0, y)) / (x1 - x0)  # (2, n): u_x, v_x
    d_dy = (sample(field, x, y1) - sample(field, x, y0)) / (y1 - y0)  # (2, n): u_y, v_y
    gradient_sq = (d_dx**2).sum(0) + (d_dy**2).sum(0)
    return gradient_sq / (BOUNDARY_SCALE * (step**2).sum(0) + BOUNDARY_FLOOR)


class Step(NamedTuple):
    """Points moved one frame by ``advance``, in the columns of SCHEMA: where each lands (Eq. 2),
    the step's Eq. 3 terms and motion-boundary ratio in float16 as stored (NaN where it stops),
    and ``end``: 0 where the point goes on, else why it stops (``END_LEFT``, ``END_OCCLUDED``)."""

    x: np.ndarray
    y: np.ndarray
    fb_sq: np.ndarray
    mag_sq: np.ndarray
    end: np.ndarray
    boundary: np.ndarray


def advance(fwd, bwd, x: np.ndarray, y: np.ndarray, gamma: float, delta: float) -> Step:
    """One step of the points (x, y) from frame t to t+1: Eq. 2, (x, y) + w(x, y) with w the
    forward flow ``fwd`` sampled bilinearly, then Eq. 3 with ŵ the backward flow ``bwd`` (t+1 -> t)
    at the landing point, |w + ŵ|² < γ(|w|² + |ŵ|²) + δ, on the float16 values that are stored.
    A point stops when it lands outside [0, W-1] x [0, H-1] (``END_LEFT``) or fails Eq. 3
    (``END_OCCLUDED``); the motion-boundary ratio is computed for those that go on, never
    applied. The tracks stage and pico.evaluation.tapvid's query points both step through here;
    swapping ``fwd`` and ``bwd`` steps backward in time."""
    n = len(x)
    fb, mag, boundary = (np.full(n, np.nan, np.float32) for _ in range(3))
    step = sample(fwd, x, y)
    h, w = fwd.shape[1:]
    nx, ny = x + step[0], y + step[1]
    inside = (nx >= 0) & (nx <= w - 1) & (ny >= 0) & (ny <= h - 1)
    back = sample(bwd, nx[inside], ny[inside])
    fwd_in = step[:, inside]
    fb_in = half(((fwd_in + back) ** 2).sum(0))
    mag_in = half((fwd_in**2).sum(0) + (back**2).sum(0))
    ok = passes(fb_in, mag_in, gamma, delta)
    cont = np.flatnonzero(inside)[ok]
    fb[cont], mag[cont] = fb_in[ok], mag_in[ok]
    boundary[cont] = half(motion_boundary_ratio(fwd, x[cont], y[cont], step[:, cont]))
    end = np.where(inside, END_OCCLUDED, END_LEFT).astype(np.int8)
    end[cont] = 0
    return Step(nx, ny, fb, mag, end, boundary)


def track(
    fields: Iterable[tuple[np.ndarray, np.ndarray]],
    n_frames: int,
    t0: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    max_gamma: float,
    max_delta: float,
) -> dict[str, np.ndarray]:
    """Chain points through the flow, Eq. 2: (x_{t+1}, y_{t+1}) = (x_t, y_t) + (u_t(x_t, y_t),
    v_t(x_t, y_t)), w = (u, v) sampled bilinearly; vectorised over the points alive at each step.

    ``fields`` yields, for t = 0 .. n_frames - 2 in order, the forward flow t -> t+1 and the
    backward flow t+1 -> t: float arrays (2, H, W) or StoredFields. A track stops when its
    point leaves the frame (``END_LEFT``), when the loosest test (max_gamma, max_delta) fails
    (``END_OCCLUDED``) or at the snippet's end (``END_SNIPPET``); the test uses the float16
    values that are stored, so the cut at the max bounds is the raw track itself. The
    motion-boundary term is recorded, never applied here. Returns the rows as columns
    (track, t, x, y, fb_sq, mag_sq, end, boundary), sorted by track and t.
    """
    x, y = x.astype(np.float32).copy(), y.astype(np.float32).copy()
    alive = np.ones(len(t0), bool)
    steps = itertools.chain(fields, [None])  # None: the last frame, where every track ends
    parts = []
    for t, step_fields in zip(range(n_frames), steps):
        idx = np.flatnonzero(alive & (t0 <= t))
        if len(idx) == 0:
            continue
        if step_fields is None:  # the last frame: every track ends here
            nan = np.full(len(idx), np.nan, np.float32)
            moved = Step(x[idx], y[idx], nan, nan, np.full(len(idx), END_SNIPPET, np.int8), nan)
        else:
            moved = advance(*step_fields, x[idx], y[idx], max_gamma, max_delta)
        parts.append((idx, np.full(len(idx), t, np.int32), x[idx].copy(), y[idx].copy(), *moved[2:]))
        cont = np.flatnonzero(moved.end == 0)
        moving = idx[cont]
        x[moving], y[moving] = moved.x[cont], moved.y[cont]
        alive[idx] = False
        alive[moving] = True
    names = ("track", "t", "x", "y", "fb_sq", "mag_sq", "end", "boundary")
    if not parts:
        return {name: np.array([], SCHEMA.field(name).type.to_pandas_dtype()) for name in names}
    cols = [np.concatenate(c) for c in zip(*parts)]
    order = np.lexsort((cols[1], cols[0]))
    out = {name: col[order] for name, col in zip(names, cols)}
    out["track"] = out["track"].astype(np.int32)
    return out


def table(video: str, rows: dict[str, np.ndarray]) -> pa.Table:
    """One video's rows (every column of SCHEMA but ``video``) as a table of SCHEMA."""
    n = len(rows["t"])
    columns = {
        name: np.asarray(rows[name]).astype(SCHEMA.field(name).type.to_pandas_dtype()) for name in SCHEMA.names[1:]
    }
    return pa.table({"video": pa.array([video] * n, pa.string()), **columns}, schema=SCHEMA)


def video_tracks(row: dict, cfg: dict) -> pa.Table:
    """Raw tracks of one snippet from its stored flow (config ``tracking``)."""
    rng = seeding.rng(cfg["seed"], "tracks", row["video"])
    t0, x, y = start_points(cfg["points_per_video"], row["n_frames"], row["width"], row["height"], rng)
    with flowstore.FlowStore(row["flow"]) as store:
        rows = track(stored_fields(store), row["n_frames"], t0, x, y, cfg["max_gamma"], cfg["max_delta"])
    return table(row["video"], rows)


def run_shard(rows: list[dict], cfg: dict, out: str | Path) -> None:
    """Raw tracks of every ok snippet of a shard into one Parquet file (a row group per video)."""
    todo = [r for r in rows if r["status"] == "ok"]
    with parquet_writer(out, SCHEMA) as writer:
        for row in logs.progress(todo, len(todo), "tracks", log, name=itemgetter("video")):
            writer.write_table(video_tracks(row, cfg))
        if not todo:
            writer.write_table(SCHEMA.empty_table())


def cut(raw: pa.Table, gamma: float, delta: float, *, motion_boundary: bool = False) -> pa.Table:
    """Each track's prefix up to the first step that fails Eq. 3 for (γ, δ): the point is
    taken as occluded in the next frame. That row becomes the last (fb_sq, mag_sq, boundary
    NaN; ``end`` = ``END_OCCLUDED``); a track that never fails keeps its raw end and reason.
    With ``motion_boundary``, a step where Sundaram et al.'s Eq. 6 holds (``boundary`` > 1)
    ends the track too (``END_BOUNDARY``, unless Eq. 3 fails there as well)."""
    if raw.num_rows == 0:
        return raw
    fb, mag, boundary = (
        raw[name].to_numpy(zero_copy_only=False).astype(np.float32) for name in ("fb_sq", "mag_sq", "boundary")
    )
    end = raw["end"].to_numpy(zero_copy_only=False).copy()
    video = pc.dictionary_encode(raw["video"]).combine_chunks().indices.to_numpy()
    trk = raw["track"].to_numpy()
    first = np.r_[True, (video[1:] != video[:-1]) | (trk[1:] != trk[:-1])]  # each track's first row
    occluded = (end == 0) & ~passes(fb, mag, gamma, delta)  # end == 0: a raw last row is no step
    at_boundary = (end == 0) & at_motion_boundary(boundary) if motion_boundary else np.zeros_like(occluded)
    fail = occluded | at_boundary
    # A row is kept when no earlier row of its track failed: the running count of failures
    # before each row equals that count at its track's first row (broadcast to the track's
    # rows by the cumulative count of track starts), so one pass over the table, no loop.
    fails_before = np.cumsum(fail) - fail
    keep = fails_before == fails_before[np.flatnonzero(first)][np.cumsum(first) - 1]
    last = keep & fail
    fb[last], mag[last], boundary[last] = np.nan, np.nan, np.nan
    end[last] = np.where(occluded[last], END_OCCLUDED, END_BOUNDARY)
    kept = raw.filter(pa.array(keep))
    for name, values in (("fb_sq", fb), ("mag_sq", mag), ("end", end), ("boundary", boundary)):
        field = SCHEMA.field(name)
        kept = kept.set_column(SCHEMA.get_field_index(name), field, pa.array(values[keep], field.type))
    return kept


def cut_file(path: str | Path, gamma: float, delta: float, *, motion_boundary: bool) -> pa.Table:
    """A shard's raw tracks (``read``) cut at (gamma, delta) (``cut``). Only the cut is kept in
    memory, since a paper shard's raw tracks are gigabytes."""
    raw = read(path)
    kept = cut(raw, gamma, delta, motion_boundary=motion_boundary)
    log.info("%s: cut: %d of %d rows kept", path, kept.num_rows, raw.num_rows)
    return kept


def lengths(cut_: pa.Table) -> np.ndarray:
    """Bincount of track lengths in a cut (a tracks table): the frames each point is followed on
    (1: stopped at once)."""
    sizes = cut_.select(["video", "track"]).group_by(["video", "track"]).aggregate([([], "count_all")])["count_all"]
    return np.bincount(sizes.to_numpy(), minlength=1)


def write(table_: pa.Table, out: str | Path) -> None:
    write_parquet(table_, out)


def read(path: str | Path) -> pa.Table:
    """A raw or cut tracks table, checked (``pico.store.files.read_parquet``: checksums, SCHEMA)."""
    return read_parquet(path, SCHEMA)
