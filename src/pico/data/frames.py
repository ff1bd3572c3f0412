"""Section 3.1: each snippet decoded, resampled to exactly ``frames.fps`` and resized so its
short side is ``frames.short_side``, stored as one frame-store file per snippet, and its motion
measured on the way (``Motion``): a snippet that barely moves can be left out before flow."""

from __future__ import annotations

import errno
import logging
from operator import itemgetter
from pathlib import Path

import cv2
import numpy as np

from pico import logs
from pico.data import sources, video
from pico.store import framestore, manifest

log = logging.getLogger(__name__)

#: Errors about one output's name (too long, characters the file system refuses): that video's
#: failure. Any other OSError (a full disk, a lost mount) still fails the shard.
NAME_ERRNOS = (errno.ENAMETOOLONG, errno.EILSEQ)


def run_shard(
    rows: list[dict], cfg: dict, out_dir: str | Path, *, download_table: str | Path | None = None
) -> list[dict]:
    """Extract the frames of every ok row into ``out_dir``; return the manifest rows. Stops
    first if a source file is not the one the shard's download recorded (``download_table``,
    named in the error's rebuild command): the rows' snippet and size describe the old file."""
    out_dir = Path(out_dir)
    todo = [r for r in rows if r["status"] == "ok"]
    manifest.check_sources(todo, download_table)
    out_dir.mkdir(parents=True, exist_ok=True)
    done = {}
    for row in logs.progress(todo, len(todo), "frames", log, name=itemgetter("video")):
        done[row["video"]] = extract(row, cfg, out_dir / (sources.file_name(row["video"]) + framestore.SUFFIX))
    return [done.get(r["video"], r) for r in rows]


class Motion:
    """How much a snippet moves, measured on its stored frames as they are decoded:

        motion = median over t of mean over pixels x of |Y_t(x) - Y_{t-1}(x)|,

    Y the frames' luma (ITU-R BT.601, grey levels 0-255, as OpenCV rounds it to 8 bits). The
    median over consecutive frames leaves out the few frames of a cut, so a slideshow of stills
    measures near 0 however many cuts it has, and a moving camera or object measures its typical
    change per frame. A snippet of one frame measures 0."""

    def __init__(self):
        self.changes: list[float] = []
        self._previous: np.ndarray | None = None

    def follow(self, frames):
        """Yield ``frames`` unchanged, measuring each against the one before."""
        for frame in frames:
            luma = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)  # BT.601 weights, in 8 bits
            if self._previous is not None:
                # the L1 norm of the difference in one pass, without an array for it
                self.changes.append(cv2.norm(luma, self._previous, cv2.NORM_L1) / luma.size)
            self._previous = luma
            yield frame

    @property
    def value(self) -> float:
        """The snippet's motion, grey levels per pixel and frame, rounded to 1/1000."""
        return round(float(np.median(self.changes)), 3) if self.changes else 0.0


def extract(row: dict, cfg: dict, path: Path) -> dict:
    """Decode ``row``'s snippet into the frame store at ``path``; the row with its frame info,
    or the row failed: a stream that cannot be decoded, a frame that cannot be stored, a name
    the file system refuses."""
    fps = cfg["fps"]
    width, height = video.output_size(row["src_width"], row["src_height"], cfg["short_side"])
    if max(width, height) > framestore.JPEG_MAX_SIDE:
        return manifest.fail(
            row,
            "unsupported",
            f"a {row['src_width']}x{row['src_height']} video: its frames at short side {cfg['short_side']} "
            f"would be {width}x{height}, beyond JPEG's {framestore.JPEG_MAX_SIDE} pixels a side",
        )
    expected = round((row["end_s"] - row["start_s"]) * fps)
    motion = Motion()
    frames = motion.follow(video.decode(row["path"], (width, height), start=row["start_s"], n_frames=expected, fps=fps))
    meta = {"video": row["video"], "fps": fps, "start_s": row["start_s"]}
    try:
        meta = framestore.write(path, frames, meta, quality=cfg["jpeg_quality"])
    except video.VideoError as e:
        return manifest.fail(row, e.status, e.reason)
    except framestore.EncodeError as e:
        return manifest.fail(row, "unsupported", f"{path.name}: {e}")
    except OSError as e:
        if e.errno not in NAME_ERRNOS:
            raise
        return manifest.fail(row, "unsupported", f"{path}: the file system refuses this name ({e.strerror})")
    n = meta["n_frames"]
    row = {**row, "fps": fps, "n_frames": n, "width": width, "height": height, "motion": motion.value}
    try:
        video.check_complete(row["path"], n, expected, fps)
    except video.VideoError as e:
        path.unlink()
        return manifest.fail(row, e.status, e.reason)
    if cfg.get("min_motion") is not None and row["motion"] < cfg["min_motion"]:
        path.unlink()  # no later stage reads a static snippet's frames
        return manifest.fail(
            row,
            "static",
            f"motion {row['motion']:g} grey levels per frame is below frames.min_motion {cfg['min_motion']:g}",
        )
    if n < expected:
        row["reason"] = f"video stream ended {expected - n} frames before the snippet's end"
    return {**row, "end_s": row["start_s"] + n / fps, "frames": str(path), "bytes": path.stat().st_size}
