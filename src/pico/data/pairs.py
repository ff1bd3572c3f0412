"""Section 3.3-4: frame selections and their point pairs, for PiCO, the two baselines and a
negative control.

Per video, ``draws_per_video`` independent selections ("draws") are made, each from its own
seed (run seed, video, attempt): the frames (anchor sampling or random frames, ``sampling``)
and every point pair between them. Pretraining takes a video's draws in turn, one per visit
(``pico.learn.pretrain``), so over a run a video offers different frames and points each time it is
drawn, and crops, flips, which frame pair and which view is the query are drawn per visit too.
The methods differ only in the correspondence map of the same draws (Section 4):

- ``pico``: the trajectories alive on both frames of a frame pair (a < b) give
  (xa, ya) on a -> (xb, yb) on b.
- ``static_video``: PiCO's frames and points, the identity correspondence (zero flow):
  (xb, yb) = (xa, ya).
- ``static_frame``: PiCO's points on one frame, a: frame_b = frame_a, (xb, yb) = (xa, ya);
  the two views differ only by augmentation (VADeR's setting).
- ``shuffled`` (beyond the paper, a negative control): PiCO's frames and query points, each
  query's key point another point of the same frame pair (a random derangement of the pair's
  key points), so every positive is a wrong correspondence. A frame pair with a single point
  has no wrong partner to give and is left out. A model trained on it learns no
  correspondence; a benchmark that does not score it lowest is not measuring correspondence.

No cap is applied here: Section 3.4's limit (``pretrain.max_pairs`` per iteration, 65,536 from
256 videos) holds per iteration after the crops, over the global batch (``pico.learn.pretrain``), so
every method trains on at most as many pairs as survive its crops. A selection with no PiCO
pair (random frames that share no trajectory) is not a draw: the next attempt is made, up to
``MAX_ATTEMPTS`` per draw; a video with no draw at all is left out of pretraining for every
method (and counted in the pair set's health, ``pico.reporting.health``).

Outputs per shard and method: the pairs (SCHEMA; a row group per video, rows by draw) and,
beside them, the JPEG bytes of every frame a video's draws use (FRAMES_SCHEMA; the same row group
per video), so pretraining never opens the full snippets and reads a video's rows when it visits
it. One pass over a shard draws once and writes every method asked for (``run_shard``): each
method's files are those a pass for that method alone writes.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable
from contextlib import ExitStack
from operator import itemgetter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from pico import logs, seeding
from pico.data import sampling, tracks
from pico.store import framestore, manifest
from pico.store.files import damaged, parquet_writer, read_parquet

log = logging.getLogger(__name__)

SCHEMA = pa.schema(
    [
        ("video", pa.string()),
        ("frame_a", pa.int32()),
        ("frame_b", pa.int32()),
        ("track", pa.int32()),
        ("xa", pa.float32()),
        ("ya", pa.float32()),
        ("xb", pa.float32()),
        ("yb", pa.float32()),
        ("draw", pa.int32()),
    ]
)
FRAMES_SCHEMA = pa.schema([("video", pa.string()), ("frame", pa.int32()), ("jpeg", pa.binary())])
#: Selections tried per draw before a video is taken to have no more PiCO pairs to offer.
MAX_ATTEMPTS = 4
COLUMNS = ("frame_a", "frame_b", "track", "xa", "ya", "xb", "yb")


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


def correspondence(method: str, pico: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """``method``'s correspondence map on PiCO's pairs of a draw (the module docstring);
    ``rng`` draws the control's derangements."""
    if method == "pico":
        return pico
    if method == "shuffled":
        return deranged(pico, rng)
    static = {**pico, "xb": pico["xa"], "yb": pico["ya"]}  # zero flow: every point maps to itself
    if method == "static_frame":
        static["frame_b"] = pico["frame_a"]  # one frame, two augmentations
    return static


def deranged(pico: dict[str, np.ndarray], rng: np.random.Generator) -> dict[str, np.ndarray]:
    """PiCO's pairs with every query's key point replaced by that of another pair of its frame
    pair: within each frame pair (a, b) of n >= 2 points, in a random order pi, query pi[i]
    takes the key of pi[i + 1 mod n] (a cyclic shift of a random order has no fixed point).
    Frame pairs of one point are dropped."""
    order = np.lexsort((rng.random(len(pico["xa"])), pico["frame_b"], pico["frame_a"]))  # random within each frame pair
    frame_pair = np.stack([pico["frame_a"][order], pico["frame_b"][order]], 1)
    starts = np.flatnonzero(np.r_[True, (frame_pair[1:] != frame_pair[:-1]).any(1)])
    sizes = np.diff(np.r_[starts, len(order)])
    position = np.arange(len(order)) - np.repeat(starts, sizes)
    partner = np.repeat(starts, sizes) + (position + 1) % np.repeat(sizes, sizes)  # the next in its frame pair, cyclic
    keep = np.repeat(sizes, sizes) >= 2
    query, key = order[keep], order[partner[keep]]
    out = {name: values[query] for name, values in pico.items()}
    out["xb"], out["yb"] = pico["xb"][key], pico["yb"][key]
    return out


def _columns(parts) -> dict[str, np.ndarray]:
    if not parts:
        return {name: np.array([], np.float32) for name in COLUMNS}
    return {name: np.concatenate(col) for name, col in zip(COLUMNS, zip(*parts))}


def video_draws(
    strategy: str,
    row: dict,
    tracks: dict[str, np.ndarray],
    settings: dict,
) -> list[tuple[list[int], dict[str, np.ndarray]]]:
    """Up to ``settings['draws_per_video']`` draws of one video: (selected frames, PiCO's pairs) each;
    a method's pairs of a draw are ``correspondence(method, pairs, rng)``."""
    start, end = sampling.spans(tracks["track"], tracks["t"])
    ends = sampling.end_reasons(tracks["track"], tracks["end"])
    draws = []
    for attempt in range(MAX_ATTEMPTS * settings["draws_per_video"]):
        if len(draws) == settings["draws_per_video"]:
            break
        rng = seeding.rng(settings["seed"], "pairs", row["video"], attempt)
        frames = sampling.select(
            strategy,
            start,
            end,
            ends,
            row["n_frames"],
            settings["frames_per_video"],
            rng,
            endpoints=settings["endpoints"],
        )
        pico = tracked(tracks, frames)
        if len(pico["xa"]):
            draws.append((frames, pico))
    return draws


def method_columns(
    method: str, draws: list[tuple[list[int], dict[str, np.ndarray]]], *, seed: int, video: str
) -> dict[str, np.ndarray]:
    """A video's rows of ``method`` (columns of SCHEMA but ``video``): its draws in turn, the
    control's derangement of draw k drawn from (seed, video, k)."""
    maps = [correspondence(method, pico, seeding.rng(seed, "shuffled", video, k)) for k, (_, pico) in enumerate(draws)]
    parts = [{**m, "draw": np.full(len(m["xa"]), k)} for k, m in enumerate(maps)]
    return {name: np.concatenate([p[name] for p in parts]) for name in SCHEMA.names[1:]}


def runs(videos: pa.ChunkedArray) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(video, first row, row after the last) of each run of a column grouped by video."""
    encoded = pc.dictionary_encode(videos).combine_chunks()
    codes = encoded.indices.to_numpy()
    # a run starts wherever the dictionary code differs from the row before
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
    """A pairs shard and its selected frames, checked (``pico.store.files.read_parquet``)."""
    return read_parquet(path, SCHEMA), read_parquet(frames_path(path), FRAMES_SCHEMA)


def write(videos, out: str | Path, frames_out: str | Path) -> None:
    """One pair set's videos: ``videos`` yields (video, columns of SCHEMA but ``video``, {frame:
    JPEG bytes}); ``write_sets`` of that one set."""
    write_sets(((video, [(columns, jpegs)]) for video, columns, jpegs in videos), [(out, frames_out)])


def write_sets(videos, outs: list[tuple[str | Path, str | Path]]) -> None:
    """Pair sets of the same videos, each to its (pairs, frames) paths of ``outs``, atomically
    with page checksums: ``videos`` yields (video, [(columns, {frame: JPEG bytes}) per set]); a
    row group per video in both files of a set, in the same order (``index`` and ``read_video``
    rely on it)."""
    with ExitStack() as stack:
        writers = [
            (
                stack.enter_context(parquet_writer(out, SCHEMA, dictionary=["video"], statistics=["video", "draw"])),
                stack.enter_context(parquet_writer(frames, FRAMES_SCHEMA, dictionary=["video"], statistics=["video"])),
            )
            for out, frames in outs
        ]
        for video, sets in videos:
            for (pair_writer, frame_writer), (columns, jpegs) in zip(writers, sets, strict=True):
                pair_writer.write_table(pa.table({"video": [video] * len(columns["xa"]), **columns}).cast(SCHEMA))
                frame_writer.write_table(
                    pa.table({"video": [video] * len(jpegs), "frame": list(jpegs), "jpeg": list(jpegs.values())}).cast(
                        FRAMES_SCHEMA
                    )
                )


def index(path: str | Path, *, metadata: pq.FileMetaData | None = None) -> list[tuple[str, int]]:
    """(video, number of draws) of each row group of a pairs file, read from its footer alone
    (a row group per video, ``write``; its draws are 0 .. the ``draw`` column's maximum);
    ``metadata``: that footer, parsed already (``footers``)."""
    try:
        metadata = metadata or pq.read_metadata(path)
        video, draw = (metadata.schema.to_arrow_schema().get_field_index(name) for name in ("video", "draw"))
        groups = [metadata.row_group(i) for i in range(metadata.num_row_groups)]
        stats = [(g.column(video).statistics, g.column(draw).statistics) for g in groups]
    except (pa.ArrowException, OSError) as e:
        raise damaged(path, f"not a readable pairs file ({e})") from e
    if any(v is None or d is None or not v.has_min_max or v.min != v.max for v, d in stats):
        raise damaged(path, "not one video per row group with statistics (not written by pico.data.pairs.write)")
    return [(v.min if isinstance(v.min, str) else v.min.decode(), int(d.max) + 1) for v, d in stats]


def footers(path: str | Path) -> tuple[pq.FileMetaData, pq.FileMetaData]:
    """The parsed footers of the pairs file ``path`` and of the frames file beside it."""
    found = []
    for name in (path, frames_path(path)):
        try:
            found.append(pq.read_metadata(name))
        except (pa.ArrowException, OSError) as e:
            raise damaged(name, f"not a readable Parquet file ({e})") from e
    return found[0], found[1]


def read_video(
    path: str | Path,
    group: int,
    video: str,
    *,
    parsed: tuple[pq.FileMetaData, pq.FileMetaData] | None = None,
) -> tuple[dict[str, np.ndarray], dict[int, bytes]]:
    """The draws of ``video`` (columns of SCHEMA but ``video``) and the JPEG bytes of the
    frames they use, from row group ``group`` of the pairs file ``path`` and of the frames
    file beside it, checked (``pico.store.files.read_parquet``); ``parsed``: the two files'
    ``footers``, when they are kept (each costs about 1-3 ms to parse at 500 videos a shard)."""
    pairs_footer, frames_footer = parsed or (None, None)
    table = read_parquet(path, SCHEMA, [group], metadata=pairs_footer)
    frames = read_parquet(frames_path(path), FRAMES_SCHEMA, [group], metadata=frames_footer)
    for name, found in ((path, table), (frames_path(path), frames)):
        if found.num_rows == 0 or {v.as_py() for v in pc.min_max(found["video"]).values()} != {video}:
            raise damaged(
                name, f"row group {group} does not hold video {video} (the pairs and frames files are out of step)"
            )
    jpegs = dict(zip(frames["frame"].to_pylist(), frames["jpeg"].to_pylist()))
    return {k: table[k].to_numpy() for k in SCHEMA.names[1:]}, jpegs


def draw_sets(
    shards: list[tuple[str, str]],
    *,
    thresholds: tuple[float, float],
    motion_boundary: bool,
    methods: list[str],
    strategy: str,
    settings: dict,
    outs: list[tuple[str | Path, str | Path]],
    used: set[str] | None = None,
    keep_cut: str | Path | None = None,
) -> tuple[list[dict], list[np.ndarray]]:
    """Pair sets of ``methods`` drawn from the ok videos of one shard or a group of them
    (``shards``: each one's raw tracks and flow table), each shard's raw tracks cut at
    ``thresholds`` in turn, written to ``outs`` (``run_shard``); ``keep_cut``: where to write the
    cut too (one shard's). ``used``: the videos to draw from (yt8m's selection), else all.
    Returns the flow-table rows drawn from and each shard's track-length bincount, for the
    sets' health."""
    rows, lengths = [], []

    def parts():
        for tracks_path, table_path in shards:
            mine = [row for row in manifest.read(table_path) if used is None or row["video"] in used]
            shard_cut = tracks.cut_file(tracks_path, *thresholds, motion_boundary=motion_boundary)
            if keep_cut is not None:
                tracks.write(shard_cut, keep_cut)
            rows.extend(mine)
            lengths.append(tracks.lengths(shard_cut))
            yield mine, shard_cut

    run_shard(parts(), methods=methods, strategy=strategy, settings=settings, outs=outs)
    return rows, lengths


def run_shard(
    parts: Iterable[tuple[list[dict], pa.Table]],
    *,
    methods: list[str],
    strategy: str,
    settings: dict,
    outs: list[tuple[str | Path, str | Path]],
) -> None:
    """The draws of every ok video of a shard, or of a group of shards (``parts``: each one's
    flow-table rows and cut tracks table, taken one at a time, so that a group holds one
    shard's tracks in memory; ``settings``: seed and ``sampling``), drawn once and written for each
    of ``methods`` to its (pairs, frames) paths of ``outs``, in the parts' order."""

    def videos():
        desc = f"pairs {'+'.join(methods)}/{strategy}"
        for rows, cut in parts:
            tracks = by_video(cut)
            todo = [r for r in rows if r["status"] == "ok" and r["video"] in tracks]
            for row in logs.progress(todo, len(todo), desc, log, name=itemgetter("video")):
                video = tracks[row["video"]]
                mine = {k: video[k].to_numpy() for k in ("track", "t", "x", "y", "end")}
                draws = video_draws(strategy, row, mine, settings)
                if not draws:
                    continue  # no PiCO pair in any selection: counted by the pair sets' health
                sets = [method_columns(method, draws, seed=settings["seed"], video=row["video"]) for method in methods]
                used = [np.union1d(columns["frame_a"], columns["frame_b"]) for columns in sets]
                with framestore.FrameStore(row["frames"]) as store:  # the frames the pairs use
                    jpegs = {int(f): store.jpeg(int(f)) for f in np.unique(np.concatenate(used))}
                yield row["video"], [(columns, {int(f): jpegs[int(f)] for f in fs}) for columns, fs in zip(sets, used)]

    write_sets(videos(), outs)
