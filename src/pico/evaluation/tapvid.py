"""Point tracking measured as TAP-Vid measures it (beyond the paper; docs/tapvid.md).

PiCO trains on the point tracks it computes (Section 3.2: Eq. 2's flow chaining, cut by Eq.
3). Point-tracking research scores correspondence over time with TAP-Vid (Doersch et al.,
"TAP-Vid: A Benchmark for Tracking Any Point in a Video", NeurIPS 2022 Datasets and
Benchmarks): a ground-truth track is queried at one of its visible points (t_q, x, y), and a
tracker must say, on every other frame, where the point is and whether it is visible.

Queries (``query_points``; TAP-Vid's ``sample_queries_first`` / ``_strided``): mode ``first``
queries each track once, at its first visible frame; mode ``strided`` queries it at every
frame t = 0, 5, 10, ... where it is visible, one query each.

pico's tracker (``track_queries``) is the tracks stage's: from the query point, Eq. 2 steps
over the stored flow and stops where the tracks stage's cut would (Eq. 3 at (γ, δ), leaving
the frame, and with ``motion_boundary`` Sundaram et al.'s Eq. 6), through
``pico.data.tracks.advance``, the one implementation of the step. A query is followed forward,
and in mode ``strided`` backward too (the backward flow steps, the forward flow checks). Once
a stop fires the point is predicted occluded for the rest of the video in that direction, at
its last tracked position: pico never re-finds a point, so an occlusion ends its track.

Metrics (``scores``; TAP-Vid's ``compute_tapvid_metrics``), per video, then a plain mean over
videos (``summary``). Positions are compared after scaling to 256 x 256, i.e. errors in
ground-truth pixels times (256 / W, 256 / H). With E the evaluated (query, frame) pairs (mode
``first``: the frames after the query frame; ``strided``: every frame but the query frame), V
the pairs the ground truth shows visible, V̂ those predicted visible, and
W_d = {|p̂ - p| < d} (strictly, at 256 x 256):

    OA       = |E ∩ {occluded = predicted occluded}| / |E|
    <δ^d     = |E ∩ V ∩ W_d| / |E ∩ V|                       (whatever the predicted visibility)
    J_d      = |E ∩ V ∩ W_d ∩ V̂| / (|E ∩ V| + |E ∩ V̂ \\ (V ∩ W_d)|)
    <δ^x_avg = mean over d in {1, 2, 4, 8, 16} of <δ^d,     AJ = mean over d of J_d.

Ground truth: ``demo_video`` (the synthetic world's own trajectories and visibility) or
``read_tapvid`` (the official TAP-Vid pickles). Coordinates are pixels with pixel centres at
integers, x right, y down: TAP-Vid's points in [0, 1] times (W, H), as its own reader scales
them. Predictions are a Parquet table (``SCHEMA``) anyone can rescore.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pyarrow as pa

from pico import seeding
from pico.data import flow, synthetic, tracks
from pico.evaluation.readers import DatasetError
from pico.store import flowstore
from pico.store.files import read_parquet, write_parquet

MODES = ("first", "strided")
#: TAP-Vid's query stride of mode ``strided``, frames.
STRIDE = 5
#: TAP-Vid's thresholds, px at SIDE x SIDE.
THRESHOLDS = (1, 2, 4, 8, 16)
SIDE = 256
#: The per-point predictions: one row per query and frame, sorted by video, mode, query, t.
#: ``track`` is the ground-truth track the query follows and ``query_t`` its query frame, so a
#: table and the ground truth are all a rescoring needs.
SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("mode", pa.string()),
        ("query", pa.int32()),
        ("track", pa.int32()),
        ("query_t", pa.int32()),
        ("t", pa.int32()),
        ("x", pa.float32()),
        ("y", pa.float32()),
        ("occluded", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class Video:
    """A video with ground-truth point tracks: ``frames`` (T, H, W, 3) uint8 RGB, ``points``
    (N, T, 2) float32 pixel positions (x, y), ``occluded`` (N, T) bool."""

    name: str
    frames: np.ndarray
    points: np.ndarray
    occluded: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return self.frames.shape[2], self.frames.shape[1]


class Queries(NamedTuple):
    """Query points: the ground-truth ``track`` each follows and its query frame ``t``, (Q,) int."""

    track: np.ndarray
    t: np.ndarray


def query_points(occluded: np.ndarray, mode: str) -> Queries:
    """TAP-Vid's queries of tracks whose visibility is ``~occluded`` (N, T). ``first``: each
    track with a visible frame, at its first one. ``strided``: at frames 0, STRIDE, 2 STRIDE, ...
    every track visible there, ordered by frame, then track (as TAP-Vid concatenates them)."""
    visible = ~occluded
    if mode == "first":
        track = np.flatnonzero(visible.any(1))
        return Queries(track, visible[track].argmax(1))  # argmax of a bool row: its first True
    if mode == "strided":
        frames = np.arange(0, visible.shape[1], STRIDE)
        at, track = np.nonzero(visible[:, frames].T)  # frame-major: np.nonzero walks rows first
        return Queries(track, frames[at])
    raise ValueError(f"query mode {mode!r}: not one of {MODES}")


def follow(
    fields: Sequence[tuple],
    start: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_frames: int,
    *,
    gamma: float,
    delta: float,
    motion_boundary: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Points followed forward from (x[i], y[i]) at frame start[i], Eq. 2 and the tracks stage's
    stops (``tracks.advance`` at (γ, δ); with ``motion_boundary`` also ``tracks.at_motion_boundary``)
    until one fires. ``fields``: (forward t -> t+1, backward t+1 -> t) for t = 0 .. n_frames - 2.
    Returns the positions (Q, T, 2), NaN where not tracked, and where tracked (Q, T) bool."""
    positions = np.full((len(start), n_frames, 2), np.nan, np.float32)
    tracked = np.zeros((len(start), n_frames), bool)
    x, y = x.astype(np.float32).copy(), y.astype(np.float32).copy()
    alive = np.ones(len(start), bool)
    for t, pair in zip(range(n_frames), itertools.chain(fields, [None])):
        idx = np.flatnonzero(alive & (start <= t))
        positions[idx, t, 0], positions[idx, t, 1] = x[idx], y[idx]
        tracked[idx, t] = True
        if pair is None or len(idx) == 0:
            continue
        moved = tracks.advance(*pair, x[idx], y[idx], gamma, delta)
        stop = (moved.end != 0) | (motion_boundary & tracks.at_motion_boundary(moved.boundary))
        x[idx], y[idx] = moved.x, moved.y
        alive[idx[stop]] = False
    return positions, tracked


def held(positions: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Positions (Q, T, 2) with every untracked frame given the nearest tracked frame's position
    (the last before it, or the first after it). Each query's tracked frames are one run, so
    the nearest one is the frame index clipped to the run's ends."""
    n_frames = tracked.shape[1]
    first = tracked.argmax(1)
    last = n_frames - 1 - tracked[:, ::-1].argmax(1)
    nearest = np.clip(np.arange(n_frames), first[:, None], last[:, None])
    return np.take_along_axis(positions, nearest[..., None], axis=1)


def track_queries(
    fields: Sequence[tuple],
    queries_t: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    n_frames: int,
    *,
    gamma: float,
    delta: float,
    motion_boundary: bool,
    backward: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """pico's prediction for queries (t, x, y): positions (Q, T, 2) and occluded (Q, T). Each is
    ``follow``ed forward from its query frame and, with ``backward``, backward to frame 0; a
    frame it was not tracked to is predicted occluded, at its nearest tracked position (``held``).
    ``fields`` as for ``follow``, a sequence (the backward pass reads it in reverse)."""
    stops = {"gamma": gamma, "delta": delta, "motion_boundary": motion_boundary}
    positions, tracked = follow(fields, queries_t, x, y, n_frames, **stops)
    if backward:
        # Backward in time is forward in the reversed video: its frame t is frame T-1-t, its
        # field t the field T-2-t with the directions swapped (the backward flow steps).
        reversed_fields = [(bwd, fwd) for fwd, bwd in reversed(fields)]
        back, back_tracked = follow(reversed_fields, n_frames - 1 - queries_t, x, y, n_frames, **stops)
        back, back_tracked = back[:, ::-1], back_tracked[:, ::-1]
        positions = np.where(tracked[..., None], positions, back)
        tracked = tracked | back_tracked
    return held(positions, tracked), ~tracked


def evaluated_frames(queries_t: np.ndarray, n_frames: int, mode: str) -> np.ndarray:
    """The (query, frame) pairs TAP-Vid scores, (Q, T) bool: ``first`` the frames after the
    query frame (those before it are known occluded), ``strided`` every frame but the query frame."""
    frames, query = np.arange(n_frames)[None, :], queries_t[:, None]
    if mode == "first":
        return frames > query
    if mode == "strided":
        return frames != query
    raise ValueError(f"query mode {mode!r}: not one of {MODES}")


def ratio(numerator: int, denominator: int) -> float:
    """numerator / denominator, NaN for 0 / 0 (a video with nothing to score on that count)."""
    return numerator / denominator if denominator else float("nan")


def scores(
    truth: np.ndarray,
    truth_occluded: np.ndarray,
    predicted: np.ndarray,
    predicted_occluded: np.ndarray,
    queries_t: np.ndarray,
    *,
    mode: str,
    size: tuple[int, int],
) -> dict:
    """TAP-Vid's metrics of one video (the module docstring writes them out): ``aj``,
    ``delta_avg``, ``oa``, and ``jaccard_d``, ``within_d`` per threshold d. ``truth`` and
    ``predicted`` (Q, T, 2) in the pixels of frames of ``size`` (width, height), occlusions
    (Q, T) bool, each query's frame ``queries_t`` (Q,)."""
    evaluated = evaluated_frames(queries_t, truth.shape[1], mode)
    visible, predicted_visible = ~truth_occluded, ~predicted_occluded
    scale = SIDE / np.asarray(size, np.float64)  # ground-truth pixels -> pixels at 256 x 256
    error_sq = (((predicted - truth) * scale) ** 2).sum(-1)
    seen = evaluated & visible
    out = {"oa": ratio(int((evaluated & (predicted_occluded == truth_occluded)).sum()), int(evaluated.sum()))}
    for d in THRESHOLDS:
        within = error_sq < d * d
        out[f"within_{d}"] = ratio(int((seen & within).sum()), int(seen.sum()))
        hits = int((seen & within & predicted_visible).sum())
        false_positives = int((evaluated & predicted_visible & ~(visible & within)).sum())
        out[f"jaccard_{d}"] = ratio(hits, int(seen.sum()) + false_positives)
    out["aj"] = float(np.mean([out[f"jaccard_{d}"] for d in THRESHOLDS]))
    out["delta_avg"] = float(np.mean([out[f"within_{d}"] for d in THRESHOLDS]))
    return out


METRICS = ("aj", "delta_avg", "oa", *(f"jaccard_{d}" for d in THRESHOLDS), *(f"within_{d}" for d in THRESHOLDS))


def summary(per_video: list[dict]) -> dict:
    """The benchmark's numbers: each metric's plain mean over videos (TAP-Vid's), over the videos
    that have it (NaN: nothing to score, e.g. no visible evaluated frame), and ``videos``."""
    out = {"videos": len(per_video)}
    for key in METRICS:
        values = [v[key] for v in per_video if not np.isnan(v[key])]
        out[key] = float(np.mean(values)) if values else float("nan")
    return out


def predictions(name: str, mode: str, queries: Queries, positions: np.ndarray, occluded: np.ndarray) -> pa.Table:
    """One video's predictions in one mode as a table of SCHEMA, a row per query and frame."""
    n_queries, n_frames = occluded.shape
    per_row = {
        "query": np.repeat(np.arange(n_queries), n_frames),
        "track": np.repeat(queries.track, n_frames),
        "query_t": np.repeat(queries.t, n_frames),
        "t": np.tile(np.arange(n_frames), n_queries),
        "x": positions[..., 0].ravel(),
        "y": positions[..., 1].ravel(),
        "occluded": occluded.ravel(),
    }
    n = n_queries * n_frames
    columns = {k: pa.array(v, SCHEMA.field(k).type) for k, v in per_row.items()}
    return pa.table(
        {"video": pa.array([name] * n, pa.string()), "mode": pa.array([mode] * n, pa.string()), **columns},
        schema=SCHEMA,
    )


def write_predictions(tables: list[pa.Table], path: str | Path) -> None:
    """Predictions (tables of SCHEMA) to one Parquet file, atomically, with page checksums."""
    write_parquet(pa.concat_tables(tables) if tables else SCHEMA.empty_table(), path)


def read_predictions(path: str | Path) -> pa.Table:
    """A predictions file, checked (``pico.store.files.read_parquet``: checksums, SCHEMA)."""
    return read_parquet(path, SCHEMA)


def flow_fields(path: str | Path, video: Video) -> list[tuple[tracks.StoredField, tracks.StoredField]]:
    """A video's stored flow as ``track_queries`` reads it; a file of another length or size
    than the video is an error naming it."""
    with flowstore.FlowStore(path) as store:
        fields = list(tracks.stored_fields(store))
    n_frames, (width, height) = len(video.frames), video.size
    if len(fields) != n_frames - 1 or (fields and fields[0][0].shape[1:] != (height, width)):
        shape = fields[0][0].shape[1:] if fields else None
        raise ValueError(
            f"{path}: {len(fields)} flow fields of (height, width) {shape}, but video {video.name} has "
            f"{n_frames} frames of {(height, width)}"
        )
    return fields


def evaluate_video(
    video: Video, flow_path: str | Path, *, mode: str, gamma: float, delta: float, motion_boundary: bool
) -> tuple[dict, pa.Table]:
    """pico's tracker on one video's queries of ``mode`` over its stored flow at ``flow_path``:
    its ``scores`` (with ``video``, ``mode``, ``queries``) and its ``predictions``."""
    queries = query_points(video.occluded, mode)
    start = video.points[queries.track, queries.t]
    positions, occluded = track_queries(
        flow_fields(flow_path, video),
        queries.t,
        start[:, 0],
        start[:, 1],
        len(video.frames),
        gamma=gamma,
        delta=delta,
        motion_boundary=motion_boundary,
        backward=mode == "strided",
    )
    truth, truth_occluded = video.points[queries.track], video.occluded[queries.track]
    result = scores(truth, truth_occluded, positions, occluded, queries.t, mode=mode, size=video.size)
    return {"video": video.name, "mode": mode, "queries": len(queries.t), **result}, predictions(
        video.name, mode, queries, positions, occluded
    )


def store_flow(video: Video, cfg: dict, path: str | Path) -> flowstore.Stored:
    """The configured backend's flow of the video's frames (config ``flow``:
    ``pico.data.flow.estimator``), stored through the flow codec (``flow.codec``) as the flow
    stage stores a snippet's."""
    fwd, bwd = flow.estimator(cfg)(video.frames)
    return flowstore.write(path, fwd, bwd, {"backend": cfg["backend"], "video": video.name}, **cfg["codec"])


# --- ground truth: the synthetic world ------------------------------------------------------------


def demo_name(index: int) -> str:
    """Synthetic TAP-Vid video ``index``: ``tapvid{index:04d}``, a namespace of its own (never a
    pretraining video's id)."""
    return f"tapvid{index:04d}"


def demo_scene(
    seed: int, index: int, *, n_frames: int, fps: float, width: int, height: int, world: synthetic.World
) -> synthetic.Scene:
    """The one shot (no cut) of synthetic TAP-Vid video ``index``, a fresh scene of ``world``."""
    vid = synthetic.make_video(seed, demo_name(index), n_frames / fps, fps, width, height, cut=False, world=world)
    return vid.shots[0][0]


def demo_video(
    seed: int,
    index: int,
    *,
    n_frames: int,
    fps: float,
    width: int,
    height: int,
    points: int,
    world: synthetic.World = synthetic.World(),
) -> Video:
    """Synthetic TAP-Vid video ``index``: ``n_frames`` frames at ``fps`` of ``demo_scene`` and the
    exact tracks of ``points`` surface points, drawn uniform in space and time as the tracks
    stage draws its starts (``tracks.start_points``). A point lies on the surface nearest the
    viewer where it is drawn (``Scene.surfaces``), moves with it (``Scene.follow``), and is
    visible where it is inside the frame and no nearer object covers it (``Scene.visible``)."""
    scene = demo_scene(seed, index, n_frames=n_frames, fps=fps, width=width, height=height, world=world)
    t0, x, y = tracks.start_points(points, n_frames, width, height, seeding.rng(seed, "tapvid", demo_name(index)))
    times = np.arange(n_frames) / fps
    layer = scene.surfaces(x, y, t0 / fps)
    px, py = scene.follow(layer, x, y, t0 / fps, times)
    seen = scene.visible(layer, px, py, times)
    frames = np.stack([scene.render(t)["rgb"] for t in times])
    return Video(demo_name(index), frames, np.stack([px.T, py.T], -1).astype(np.float32), ~seen.T)


# --- ground truth: TAP-Vid's pickles --------------------------------------------------------------


def read_tapvid(root: str | Path) -> Iterator[Video]:
    """The videos of TAP-Vid pickle files (``benchmarks.tapvid.root``): one ``.pkl`` file, or
    every ``*.pkl`` of a folder in name order.

    Layouts (TAP-Vid's README and reader): TAP-Vid-DAVIS is a dict of video name -> {``video``
    uint8 [T, H, W, 3], ``points`` float [N, T, 2] in [0, 1] as (x, y), ``occluded`` bool
    [N, T]}; TAP-Vid-Kinetics (``generate_tapvid.py``'s shards) and -RGB-Stacking are a list of
    such dicts, named here ``{file stem}_{index:04d}``, with ``video`` possibly a sequence of
    JPEG bytes. Points become pixels, (x W, y H), as TAP-Vid's reader scales them.

    Pickles can run code when loaded: only point this at files you downloaded from TAP-Vid (or
    made yourself); pico loads them with ``pickle`` as TAP-Vid's own reader does.
    """
    root = Path(root)
    paths = [root] if root.is_file() else sorted(root.glob("*.pkl"))
    if not paths:
        raise DatasetError(f"{root}: no .pkl file (benchmarks.tapvid.root: a TAP-Vid pickle or a folder of them)")
    for path in paths:
        yield from read_pickle(path)


def read_pickle(path: Path) -> Iterator[Video]:
    """The videos of one TAP-Vid pickle file (``read_tapvid``)."""
    try:
        with open(path, "rb") as f:
            data = pickle.load(f)  # trusted input: see read_tapvid
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, ValueError) as e:
        raise DatasetError(f"{path}: not a readable pickle ({type(e).__name__}: {e})") from e
    if isinstance(data, dict):
        items = data.items()
    elif isinstance(data, list):
        items = ((f"{path.stem}_{i:04d}", example) for i, example in enumerate(data))
    else:
        raise DatasetError(
            f"{path}: holds a {type(data).__name__}, not TAP-Vid's dict of videos (DAVIS) or list of them (Kinetics)"
        )
    for name, example in items:
        yield tapvid_video(f"{path}: video {name}", str(name), example)


def tapvid_video(where: str, name: str, example) -> Video:
    """One TAP-Vid example as a Video, checked; errors start with ``where`` (file and video)."""
    keys = ("video", "points", "occluded")
    if not isinstance(example, dict) or any(k not in example for k in keys):
        found = sorted(map(str, example)) if isinstance(example, dict) else type(example).__name__
        raise DatasetError(f"{where}: expected a dict with {', '.join(keys)}, found {found}")
    frames = decoded_frames(where, example["video"])
    points, occluded = np.asarray(example["points"]), np.asarray(example["occluded"])
    n_frames, height, width = frames.shape[:3]
    if points.ndim != 3 or points.shape[1:] != (n_frames, 2) or points.dtype.kind != "f":
        raise DatasetError(f"{where}: points must be floats [N, {n_frames}, 2], got {points.dtype} {points.shape}")
    if occluded.shape != points.shape[:2] or occluded.dtype != bool:
        raise DatasetError(f"{where}: occluded must be bool {points.shape[:2]}, got {occluded.dtype} {occluded.shape}")
    pixels = (points * np.array([width, height])).astype(np.float32)
    return Video(name, frames, pixels, occluded)


def decoded_frames(where: str, video) -> np.ndarray:
    """A TAP-Vid ``video``: uint8 [T, H, W, 3] as it is, or a sequence of JPEG bytes decoded to RGB."""
    if isinstance(video, np.ndarray) and video.dtype == np.uint8:
        frames = video
    elif isinstance(video, list | tuple | np.ndarray) and len(video) and all(isinstance(f, bytes) for f in video):
        decoded = [cv2.imdecode(np.frombuffer(f, np.uint8), cv2.IMREAD_COLOR) for f in video]
        bad = [i for i, image in enumerate(decoded) if image is None]
        if bad:
            raise DatasetError(f"{where}: frame {bad[0]} is not a readable JPEG ({len(bad)} frames unreadable)")
        if len({image.shape for image in decoded}) > 1:
            raise DatasetError(f"{where}: frames of different sizes {sorted({im.shape for im in decoded})}")
        frames = np.stack(decoded)[..., ::-1]  # OpenCV decodes to BGR
    else:
        frames = np.asarray(video, dtype=object if isinstance(video, list | tuple) else None)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3 or len(frames) < 2:
        raise DatasetError(
            f"{where}: video must be uint8 [T >= 2, H, W, 3] or JPEG bytes, got {frames.dtype} {frames.shape}"
        )
    return np.ascontiguousarray(frames)
