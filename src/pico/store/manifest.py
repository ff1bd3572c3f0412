"""Per-shard video tables: one row per input video, carried and extended stage by stage.

The final table, ``results/{dataset}/videos/{shard}.parquet``, is the manifest: every input
video appears exactly once with its ``status`` and, when not ``ok``, the ``reason``.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from pico.store.files import read_parquet, write_parquet

#: Statuses a video can end in; only ``ok`` videos go on to later stages. ``flow_failed``: the
#: flow backend produced non-finite values for this snippet (the rest of the shard goes on).
#: ``gone``, ``lookup_failed``: a yt8m pseudo id with no YouTube id (``pico.data.yt8m.lookup``); its
#: row's ``video`` is the pseudo id.
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
        ("flow", pa.string()),  # the snippet's flow store (flow stage)
        ("flow_bytes", pa.int64()),
        ("flow_epe", pa.float64()),  # mean end-point error (px) the flow codec added, both directions
        ("download_bytes", pa.int64()),  # the downloaded file's size (youtube, kinetics, yt8m)
        ("download_seconds", pa.float64()),  # and how long its download took
    ]
)
#: Columns added since the first tables were written: a table without them reads as null.
ADDED = ("download_bytes", "download_seconds")


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
