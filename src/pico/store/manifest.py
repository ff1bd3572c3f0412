"""Per-shard video tables: one row per input video, carried and extended stage by stage.

The final table, ``results/{dataset}/videos/{shard}.parquet``, is the manifest: every input
video appears exactly once with its ``status`` and, when not ``ok``, the ``reason``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pico.store.files import read_parquet, write_parquet

#: Statuses a video can end in; only ``ok`` videos go on to later stages. ``flow_failed``: the
#: flow backend produced non-finite values for this snippet (the rest of the shard goes on).
#: ``gone``, ``lookup_failed``: a yt8m pseudo id with no YouTube id (``pico.data.yt8m.lookup``); its
#: row's ``video`` is the pseudo id. ``unsupported``: a video pico cannot store (frames beyond
#: JPEG's 65,500 pixels a side after resizing, an output name the file system refuses).
#: ``static``: a snippet that barely moves (``motion`` below ``frames.min_motion``): no flow,
#: tracks or pairs are computed for it.
STATUSES = (
    "ok",
    "unavailable",
    "corrupt",
    "no_video_stream",
    "too_short",
    "no_shot",
    "flow_failed",
    "gone",
    "lookup_failed",
    "unsupported",
    "static",
)

SCHEMA = pa.schema(
    [
        ("video", pa.string()),  # id, unique within the dataset
        ("status", pa.string()),
        ("reason", pa.string()),  # why not ok (or a warning for ok rows); null otherwise
        ("source", pa.string()),
        ("url", pa.string()),  # youtube/kinetics download URL
        ("path", pa.string()),  # the video file read by shots and frames
        ("duration_s", pa.float64()),  # of the source video stream
        ("src_fps", pa.float64()),
        ("src_width", pa.int32()),
        ("src_height", pa.int32()),
        ("n_shots", pa.int32()),  # TransNetV2 shots found (null when shots: false)
        ("start_s", pa.float64()),  # snippet, in source time
        ("end_s", pa.float64()),
        ("fps", pa.float64()),  # frame rate of the stored frames (frames.fps)
        ("n_frames", pa.int32()),
        ("width", pa.int32()),  # frame size after resizing
        ("height", pa.int32()),
        ("frames", pa.string()),  # the snippet's frame store, relative to the working directory
        ("bytes", pa.int64()),  # size of that file
        ("motion", pa.float64()),  # median grey levels per pixel that consecutive frames differ by
        ("flow", pa.string()),  # the snippet's flow store (flow stage)
        ("flow_bytes", pa.int64()),
        ("flow_epe", pa.float64()),  # mean end-point error (px) the flow codec added, both directions
        ("download_bytes", pa.int64()),  # the downloaded file's size (youtube, kinetics, yt8m)
        ("download_seconds", pa.float64()),  # and how long its download took
        ("src_bytes", pa.int64()),  # a local file's (or a clip's under a kinetics root) size at download
        ("src_mtime_ns", pa.int64()),  # and its modification time: shots and frames check both
    ]
)
#: Columns added since the first tables were written: a table without them reads as null.
ADDED = ("download_bytes", "download_seconds", "src_bytes", "src_mtime_ns", "motion")


def write(rows: list[dict], path: str | Path) -> None:
    """Write ``rows`` (dicts with any subset of SCHEMA's columns) atomically."""
    for row in rows:
        if row["status"] not in STATUSES:
            raise ValueError(f"{row['video']}: unknown status {row['status']!r}")
    write_parquet(pa.Table.from_pylist([{k: row.get(k) for k in SCHEMA.names} for row in rows], schema=SCHEMA), path)


def read(path: str | Path) -> list[dict]:
    """The rows of a table ``write`` wrote, checked (``pico.store.files.read_parquet``); the ``ADDED``
    columns are null in a table written before them, so existing runs need not rebuild."""
    try:
        present = set(pq.read_schema(path).names)
    except (pa.ArrowException, OSError):  # missing or damaged: read_parquet says so, naming the file
        present = set(SCHEMA.names)
    schema = pa.schema([f for f in SCHEMA if f.name in present or f.name not in ADDED])
    return [{**dict.fromkeys(ADDED), **row} for row in read_parquet(path, schema).to_pylist()]


def fail(row: dict, status: str, reason: str) -> dict:
    """``row`` marked as failed; later stages carry it through untouched."""
    return {**row, "status": status, "reason": reason}


def source_record(path: str | os.PathLike) -> dict:
    """The ``src_bytes`` and ``src_mtime_ns`` of the file at ``path`` (a link followed): what the
    download stage records of a file it does not own, for ``check_sources``."""
    stat = os.stat(path)
    return {"src_bytes": stat.st_size, "src_mtime_ns": stat.st_mtime_ns}


class SourceChanged(RuntimeError):
    """A source file that is not the one its shard's download stage recorded: the shard's
    tables describe another file, so the stage stops (a rebuild, not a per-video status)."""


def check_sources(rows: list[dict], download_table: str | os.PathLike | None) -> None:
    """Raise SourceChanged naming every ok row's source file whose size or modification time is
    not what the download stage recorded (a file replaced in place, ``cp -p`` included, or
    removed), with the command that rebuilds the shard from its download (``download_table``).
    Rows without a record (downloaded files, tables from before it) are not checked."""
    changed = [f"{row['path']} ({change})" for row in rows if row["status"] == "ok" and (change := _change(row))]
    if changed:
        table = download_table or "results/<dataset>/download/<shard>.parquet (this job's)"
        raise SourceChanged(
            f"source files changed since their shard's download recorded them: {'; '.join(changed)}. "
            f"This shard's tables describe the old files; rebuild it from its download: "
            f"snakemake <your target> --forcerun {table}"
        )


def _change(row: dict) -> str | None:
    """How ``row``'s source file differs from its record, in words, or None."""
    if row.get("src_bytes") is None:
        return None
    try:
        now = source_record(row["path"])
    except FileNotFoundError:
        return "it no longer exists"
    size, ns, new_size, new_ns = row["src_bytes"], row["src_mtime_ns"], now["src_bytes"], now["src_mtime_ns"]
    if (size, ns) == (new_size, new_ns):
        return None
    sizes = f"size {size} -> {new_size} bytes" if new_size != size else f"size {size} bytes"
    times = f"modified {_when(ns)} -> {_when(new_ns)}" if new_ns != ns else f"modification time kept ({_when(ns)})"
    return f"{sizes}, {times}"


def _when(ns: int) -> str:
    """A modification time, to the nanosecond: ``2026-12-07 00:41:02.123456789``."""
    return f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(ns // 10**9))}.{ns % 10**9:09d}"
