"""Section 3.3-4: point pairs between selected frames, for PiCO and the two baselines.

- ``pico``: trajectories alive on both frames of a frame pair give (xa, ya) -> (xb, yb).
- ``static_video``: the same frames, the identity correspondence (zero flow): points drawn
  uniformly, (xb, yb) = (xa, ya); ``track`` is -1.
- ``static_frame``: one frame (the first selected, i.e. the anchor), frame_a = frame_b,
  identity correspondence; the two views differ only by augmentation (VADeR's setting).

Frame pairs are all pairs of the selected frames. Per video at most ``max_pairs //
videos_per_batch`` point pairs are kept (a uniform subsample), so a batch of
``videos_per_batch`` videos never exceeds ``max_pairs`` (Section 3.4: 65,536 from 256 videos).

Outputs per shard: the pairs (SCHEMA) and, beside them, the selected frames' JPEG bytes
(FRAMES_SCHEMA), so pretraining never opens the full snippets. The frames file has one row
group per video, so pretraining reads a video's frames when it needs them (``video_frames``)
instead of holding every JPEG in memory.
"""

from __future__ import annotations

import itertools
import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pico import framestore, logs, sampling, seeding
from pico.io import parquet_writer, read_parquet, write_parquet
from pico.tracks import read as read_tracks

log = logging.getLogger(__name__)

SCHEMA = pa.schema([
    ("video", pa.string()), ("frame_a", pa.int32()), ("frame_b", pa.int32()), ("track", pa.int32()),
    ("xa", pa.float32()), ("ya", pa.float32()), ("xb", pa.float32()), ("yb", pa.float32()),
])
FRAMES_SCHEMA = pa.schema([("video", pa.string()), ("frame", pa.int32()), ("jpeg", pa.binary())])


def per_video_cap(max_pairs: int, videos_per_batch: int) -> int:
    return max(1, max_pairs // videos_per_batch)


def tracked(tracks: dict[str, np.ndarray], frames: list[int]) -> dict[str, np.ndarray]:
    """PiCO's pairs: for each frame pair (a < b), the tracks with a row on both frames."""
    parts = []
    for a, b in itertools.combinations(sorted(frames), 2):
        on_a, on_b = tracks["t"] == a, tracks["t"] == b
        common, ia, ib = np.intersect1d(tracks["track"][on_a], tracks["track"][on_b], return_indices=True)
        xa, ya = tracks["x"][on_a][ia], tracks["y"][on_a][ia]
        xb, yb = tracks["x"][on_b][ib], tracks["y"][on_b][ib]
        parts.append((np.full(len(common), a), np.full(len(common), b), common, xa, ya, xb, yb))
    return _columns(parts)


def identity(frame_pairs: list[tuple[int, int]], count: int, width: int, height: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Static baselines: ``count`` uniform points per frame pair, mapped to themselves."""
    parts = []
    for a, b in frame_pairs:
        x = rng.uniform(0, width - 1, count).astype(np.float32)
        y = rng.uniform(0, height - 1, count).astype(np.float32)
        parts.append((np.full(count, a), np.full(count, b), np.full(count, -1), x, y, x, y))
    return _columns(parts)


def _columns(parts) -> dict[str, np.ndarray]:
    names = ("frame_a", "frame_b", "track", "xa", "ya", "xb", "yb")
    if not parts:
        return {name: np.array([], np.float32) for name in names}
    return {name: np.concatenate(col) for name, col in zip(names, zip(*parts))}


def subsample(pairs: dict[str, np.ndarray], cap: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """At most ``cap`` pairs, drawn uniformly without replacement, original order kept."""
    n = len(pairs["xa"])
    if n <= cap:
        return pairs
    keep = np.sort(rng.choice(n, cap, replace=False))
    return {k: v[keep] for k, v in pairs.items()}


def video_pairs(method: str, strategy: str, row: dict, tracks: dict[str, np.ndarray], cfg: dict) -> tuple[list[int], dict]:
    """Selected frames and point pairs of one video."""
    rng = seeding.rng(cfg["seed"], "pairs", row["video"])
    start, end = sampling.spans(tracks["track"], tracks["t"]) if len(tracks["t"]) else (np.array([], int), np.array([], int))
    frames = sampling.select(strategy, start, end, row["n_frames"], cfg["frames_per_video"], rng)
    cap = per_video_cap(cfg["max_pairs"], cfg["videos_per_batch"])
    if method == "pico":
        pairs = tracked(tracks, frames)
    elif method == "static_video":
        frame_pairs = list(itertools.combinations(sorted(frames), 2))
        pairs = identity(frame_pairs, -(-cap // max(1, len(frame_pairs))), row["width"], row["height"], rng)
    else:
        frames = frames[:1]
        pairs = identity([(f, f) for f in frames], cap, row["width"], row["height"], rng)
    return frames, subsample(pairs, cap, rng)


def runs(videos: pa.ChunkedArray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video, first row, row after the last) of each run of a column grouped by video."""
    encoded = pc.dictionary_encode(videos).combine_chunks()
    codes = encoded.indices.to_numpy()
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]]) if len(codes) else np.array([], int)
    names = encoded.dictionary.to_pylist()
    return [names[codes[a]] for a in starts], starts, np.r_[starts[1:], len(codes)].astype(int)


def by_video(table: pa.Table) -> dict[str, pa.Table]:
    """Zero-copy slices of a table whose rows are grouped by ``video``."""
    return {video: table.slice(a, b - a) for video, a, b in zip(*runs(table["video"]))}


def frames_path(path: str | Path) -> str:
    """The selected frames' file beside a pairs file."""
    return str(path).removesuffix(".parquet") + ".frames.parquet"


def read(path: str | Path) -> tuple[pa.Table, pa.Table]:
    """A pairs shard and its selected frames, checked (``pico.io.read_parquet``)."""
    return read_parquet(path, SCHEMA), read_parquet(frames_path(path), FRAMES_SCHEMA)


def write_frames(tables: list[pa.Table], path: str | Path) -> None:
    """Selected frames, one table (one row group) per video, atomically with page checksums."""
    with parquet_writer(path, FRAMES_SCHEMA) as writer:
        for table in tables:
            writer.write_table(table.cast(FRAMES_SCHEMA))


def frame_groups(path: str | Path) -> dict[str, tuple[int, int]]:
    """Where each video's selected frames are in the frames file beside the pairs file
    ``path``: its first and last row group (one and the same as ``write_frames`` writes them).
    Reads the ``video`` column and the footer only, not the JPEG bytes."""
    frames = frames_path(path)
    videos, starts, stops = runs(read_parquet(frames, pa.schema([FRAMES_SCHEMA.field("video")]))["video"])
    metadata = pq.read_metadata(frames)
    ends = np.cumsum([metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)])
    first, last = np.searchsorted(ends, starts, side="right"), np.searchsorted(ends, stops - 1, side="right")
    return {video: (int(a), int(b)) for video, a, b in zip(videos, first, last)}


def video_frames(path: str | Path, groups: tuple[int, int], video: str, frames: list[int]) -> list[bytes]:
    """JPEG bytes of ``frames`` of ``video`` from the frames file beside the pairs file
    ``path``, reading only its row groups (``frame_groups``), checked (``read_parquet``)."""
    table = read_parquet(frames_path(path), FRAMES_SCHEMA, list(range(groups[0], groups[1] + 1)))
    mine = table.filter(pc.equal(table["video"], video)).to_pydict()
    jpegs = dict(zip(mine["frame"], mine["jpeg"]))
    if missing := sorted(set(frames) - jpegs.keys()):
        raise ValueError(f"{frames_path(path)}: no frame {missing} of video {video}, which its pairs in {path} use")
    return [jpegs[frame] for frame in frames]


def run_shard(rows: list[dict], tracks_path: str | Path, method: str, strategy: str, cfg: dict, out: str | Path, frames_out: str | Path) -> None:
    """Pairs and selected frames of every ok video of a shard (``cfg``: sampling + caps)."""
    table = read_tracks(tracks_path)
    tracks, untracked = by_video(table), table.schema.empty_table()
    todo = [r for r in rows if r["status"] == "ok"]
    pair_tables, frame_tables = [], []
    for row in logs.progress(todo, len(todo), f"pairs {method}/{strategy}", log):
        mine = tracks.get(row["video"], untracked)
        cols = {k: mine[k].to_numpy() for k in ("track", "t", "x", "y")}
        frames, pairs = video_pairs(method, strategy, row, cols, cfg)
        n = len(pairs["xa"])
        pair_tables.append(pa.table({"video": [row["video"]] * n, **{k: pairs[k] for k in SCHEMA.names[1:]}}).cast(SCHEMA))
        with framestore.FrameStore(row["frames"]) as store:
            jpegs = [store.jpeg(f) for f in frames]
        frame_tables.append(pa.table({"video": [row["video"]] * len(frames), "frame": frames, "jpeg": jpegs}))
    write_parquet(pa.concat_tables([SCHEMA.empty_table(), *pair_tables]), out)
    write_frames(frame_tables, frames_out)
