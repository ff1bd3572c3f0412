"""Figures of the paper rebuilt from the workflow's own data."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa

from pico.store import framestore
from pico.store.files import atomic_path


def long_moving_tracks(cut: pa.Table, n: int) -> list[tuple[str, int]]:
    """(video, track) of ``n`` trajectories at least half as long as the longest, those that
    travel furthest first (static background makes dull rows), at most two per video."""
    df = cut.select(["video", "track", "t", "x", "y"]).to_pandas()
    per_track = df.groupby(["video", "track"]).agg(
        n=("t", "size"), x0=("x", "first"), x1=("x", "last"), y0=("y", "first"), y1=("y", "last")
    )
    per_track = per_track[per_track.n >= per_track.n.max() / 2]
    travel = np.hypot(per_track.x1 - per_track.x0, per_track.y1 - per_track.y0)
    picked, per_video = [], {}
    for video, trk in travel.sort_values(ascending=False, kind="stable").index:
        if per_video.get(video, 0) < 2:
            picked.append((video, int(trk)))
            per_video[video] = per_video.get(video, 0) + 1
        if len(picked) == n:
            break
    return picked


def patch(frame: np.ndarray, x: float, y: float, size: int) -> np.ndarray:
    """A size x size crop centred on (x, y), the frame reflected beyond its borders."""
    half = size // 2
    padded = cv2.copyMakeBorder(frame, half, half, half, half, cv2.BORDER_REFLECT101)
    cx, cy = int(round(x)) + half, int(round(y)) + half
    return padded[cy - half : cy - half + size, cx - half : cx - half + size]


def figure1(
    cut: pa.Table, frames_of: dict[str, str], rows: int = 6, times: int = 8, size: int = 32, scale: int = 3
) -> np.ndarray:
    """Figure 1: each row shows patches cropped along one long trajectory at evenly spaced
    times, resized for viewing. ``frames_of`` maps video id -> frame-store path."""
    df = cut.to_pandas().set_index(["video", "track"]).sort_index()
    gap, cell = 4, size * scale
    chosen = long_moving_tracks(cut, rows)
    canvas = np.full((max(1, len(chosen)) * (cell + gap) + gap, times * (cell + gap) + gap, 3), 255, np.uint8)
    for r, (video, trk) in enumerate(chosen):
        points = df.loc[(video, trk)].sort_values("t")
        picks = points.iloc[np.linspace(0, len(points) - 1, times).round().astype(int)]
        with framestore.FrameStore(frames_of[video]) as store:
            for c, p in enumerate(picks.itertuples()):
                crop = cv2.resize(patch(store[int(p.t)], p.x, p.y, size), (cell, cell), interpolation=cv2.INTER_NEAREST)
                top, left = gap + r * (cell + gap), gap + c * (cell + gap)
                canvas[top : top + cell, left : left + cell] = crop
    return canvas


def write_png(image: np.ndarray, path: str | Path) -> None:
    """RGB uint8 image -> PNG, atomically."""
    with atomic_path(path) as tmp:  # the temporary name keeps the .png suffix
        if not cv2.imwrite(str(tmp), image[:, :, ::-1]):
            raise OSError(f"could not write {path}")
