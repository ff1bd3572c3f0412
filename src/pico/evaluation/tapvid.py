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
from pico.store.files import atomic_path, read_parquet, write_parquet

MODES = ("first", "strided")
#: TAP-Vid's query stride of mode ``strided``, frames.
STRIDE = 5
#: TAP-Vid's thresholds, px at SIDE x SIDE.
THRESHOLDS = (1, 2, 4, 8, 16)
SIDE = 256
#: The per-point predictions: one row per query and frame, sorted by video, mode, query, t.
#: ``track`` is the ground-truth track the query follows and ``query_t`` its query frame, so a
#: table and the ground truth are all a rescoring needs; ``motion_boundary`` tells the tracker's
#: two stops apart where one file holds both (the workflow's, one per (γ, δ)).
SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("mode", pa.string()),
        ("motion_boundary", pa.bool_()),
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


def predictions(
    name: str, mode: str, queries: Queries, positions: np.ndarray, occluded: np.ndarray, *, motion_boundary: bool
) -> pa.Table:
    """One video's predictions in one mode, tracked with or without the ``motion_boundary``
    stop, as a table of SCHEMA, a row per query and frame."""
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
    fixed = {
        "video": pa.array([name] * n, pa.string()),
        "mode": pa.array([mode] * n, pa.string()),
        "motion_boundary": pa.array([motion_boundary] * n, pa.bool_()),
    }
    return pa.table({**fixed, **columns}, schema=SCHEMA)


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
        video.name, mode, queries, positions, occluded, motion_boundary=motion_boundary
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
    """Synthetic TAP-Vid video ``index``: ``scene_video`` of ``demo_scene``."""
    scene = demo_scene(seed, index, n_frames=n_frames, fps=fps, width=width, height=height, world=world)
    return scene_video(demo_name(index), scene, seed, n_frames=n_frames, fps=fps, points=points)


def scene_video(name: str, scene: synthetic.Scene, seed: int, *, n_frames: int, fps: float, points: int) -> Video:
    """Video ``name``: ``n_frames`` frames at ``fps`` of ``scene`` from t = 0 and the exact tracks of
    ``points`` surface points, drawn uniform in space and time as the tracks stage draws its
    starts (``tracks.start_points``, seeded by (seed, name)). A point lies on the surface nearest
    the viewer where it is drawn (``Scene.surfaces``), moves with it (``Scene.follow``), and is
    visible where it is inside the frame and no nearer object covers it (``Scene.visible``)."""
    width, height = scene.width, scene.height
    t0, x, y = tracks.start_points(points, n_frames, width, height, seeding.rng(seed, "tapvid", name))
    times = np.arange(n_frames) / fps
    layer = scene.surfaces(x, y, t0 / fps)
    px, py = scene.follow(layer, x, y, t0 / fps, times)
    seen = scene.visible(layer, px, py, times)
    frames = np.stack([scene.render(t)["rgb"] for t in times])
    return Video(name, frames, np.stack([px.T, py.T], -1).astype(np.float32), ~seen.T)


def save_video(video: Video, path: str | Path) -> None:
    """A video with its ground truth to one ``.npz`` file (no pickles), atomically."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, name=video.name, frames=video.frames, points=video.points, occluded=video.occluded)


def load_video(path: str | Path) -> Video:
    """A video ``save_video`` wrote."""
    with np.load(path, allow_pickle=False) as data:
        return Video(str(data["name"]), data["frames"], data["points"], data["occluded"])


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


# --- the workflow's files (rules/track_quality.smk) -----------------------------------------------

#: What ``results/track_quality.json`` is titled.
TITLE = "Track quality (beyond the paper): pico's tracks scored as TAP-Vid scores point tracking"
#: The columns of ``results/track_quality.json``'s rows.
ROW_KEYS = (
    "dataset",
    "backend",
    "codec",
    "gamma",
    "delta",
    "motion_boundary",
    "query_mode",
    "AJ",
    "delta_avg",
    "OA",
    "n_videos",
    "n_points",
)
#: A ground-truth video's file in a set's folder, and its flow's (``flowstore.SUFFIX``): named by
#: the video's position in the set, so that any video name (a pickle's key) makes a safe path.
VIDEO_SUFFIX = ".npz"


def truth_videos(settings: dict) -> Iterator[Video]:
    """The videos of one ground-truth set (``pico.plan.tapvid_sets``): TAP-Vid's pickles at
    ``root``, or ``videos`` synthetic ones (``demo_video``) of ``world`` at ``fps``, rendered at
    ``source_size`` scaled to ``short_side`` as the frames stage scales a video."""
    if "root" in settings:
        yield from read_tapvid(settings["root"])
        return
    from pico.data.video import output_size  # decoding's module: only where videos are made

    width, height = output_size(*settings["source_size"], settings["short_side"])
    world = synthetic.World.from_settings(settings["world"])
    for index in range(settings["videos"]):
        yield demo_video(
            settings["seed"],
            index,
            n_frames=settings["frames"],
            fps=settings["fps"],
            width=width,
            height=height,
            points=settings["points"],
            world=world,
        )


def write_truth(settings: dict, folder: str | Path) -> None:
    """Every video of a ground-truth set into ``folder``, ``00000.npz``, ... in the set's order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for index, video in enumerate(truth_videos(settings)):
        save_video(video, folder / f"{index:05d}{VIDEO_SUFFIX}")


def truth_files(folder: str | Path) -> list[Path]:
    """A ground-truth set's video files (``write_truth``), in order."""
    return sorted(Path(folder).glob(f"*{VIDEO_SUFFIX}"))


def write_flow(truth: str | Path, cfg: dict, folder: str | Path) -> None:
    """``store_flow`` of every video of a ground-truth set's ``truth`` folder into ``folder``,
    each named as its video's file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for path in truth_files(truth):
        store_flow(load_video(path), cfg, folder / f"{path.stem}{flowstore.SUFFIX}")


def evaluate_set(
    truth: str | Path, flow_folder: str | Path, *, modes: Sequence[str], gamma: float, delta: float, motion_boundaries
) -> tuple[list[dict], list[pa.Table]]:
    """Every video of a ground-truth set tracked over its stored flow at (γ, δ), with each of
    ``motion_boundaries`` and in each query mode: per (motion_boundary, mode) its ``summary``
    with ``n_points`` (the queries scored) and the per-video scores; and the predictions."""
    results, tables = [], []
    videos = [(load_video(path), Path(flow_folder) / f"{path.stem}{flowstore.SUFFIX}") for path in truth_files(truth)]
    for motion_boundary, mode in itertools.product(motion_boundaries, modes):
        per_video = []
        for video, flow_path in videos:
            result, table = evaluate_video(
                video, flow_path, mode=mode, gamma=gamma, delta=delta, motion_boundary=motion_boundary
            )
            per_video.append(result)
            tables.append(table)
        results.append(
            {
                "motion_boundary": motion_boundary,
                "query_mode": mode,
                **summary(per_video),
                "n_points": sum(v["queries"] for v in per_video),
                "per_video": per_video,
            }
        )
    return results, tables


def table(results: list[dict], demo: bool) -> dict:
    """``results/track_quality.json`` from the per-cut results (``rules/track_quality.smk``'s
    ``{dataset, backend, codec, gamma, delta, results}``): a row per dataset, backend, cut and
    query mode, in that order."""
    rows = [
        {
            **{k: r[k] for k in ("dataset", "backend", "codec", "gamma", "delta")},
            "motion_boundary": s["motion_boundary"],
            "query_mode": s["query_mode"],
            "AJ": s["aj"],
            "delta_avg": s["delta_avg"],
            "OA": s["oa"],
            "n_videos": s["videos"],
            "n_points": s["n_points"],
        }
        for r in results
        for s in r["results"]
    ]
    rows.sort(key=lambda row: tuple(row[k] for k in ROW_KEYS[:7]))
    name = TITLE + (" -- DEMO: the synthetic world's exact tracks, not TAP-Vid's videos" if demo else "")
    return {"benchmark": name, "demo": demo, "rows": rows}
