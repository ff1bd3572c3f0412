"""One file per snippet: its 30 Hz frames as JPEGs in an uncompressed ZIP (``pico.store.zipstore``).

Members:

- ``meta.json``: ``{"video", "fps", "n_frames", "width", "height", "start_s", "end_s"}``
- ``frames/000000.jpg`` ... one baseline JPEG per frame, RGB.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from pico.store import zipstore

SUFFIX = ".frames.zip"
#: The largest width or height a frame can be stored at (libjpeg's limit, through OpenCV).
JPEG_MAX_SIDE = 65500


class EncodeError(ValueError):
    """A frame that cannot be stored as a JPEG: that snippet's failure, not its shard's."""


def _member(i: int) -> str:
    return f"frames/{i:06d}.jpg"


def write(path: str | Path, frames: Iterable[np.ndarray], meta: dict, quality: int = 95) -> dict:
    """Write ``frames`` (RGB uint8) atomically; return the meta written (with n_frames, size,
    and ``end_s`` when ``meta`` has ``start_s``)."""
    meta = dict(meta)
    n = 0
    with zipstore.writer(path) as put:
        for n, frame in enumerate(frames, 1):
            put(_member(n - 1), _jpeg(frame, quality, n - 1))
            meta["height"], meta["width"] = frame.shape[:2]
        meta["n_frames"] = n
        if "start_s" in meta:
            meta["end_s"] = meta["start_s"] + n / meta["fps"]
        put("meta.json", json.dumps(meta, sort_keys=True).encode())
    return meta


def _jpeg(frame: np.ndarray, quality: int, i: int) -> bytes:
    try:
        return zipstore.encode_jpeg(frame, quality)
    except ValueError as e:
        raise EncodeError(f"frame {i} ({frame.shape[1]}x{frame.shape[0]}): {e}") from e


class FrameStore(zipstore.Store):
    """Random access to the frames of one snippet file."""

    def __len__(self) -> int:
        return self.meta["n_frames"]

    @property
    def fps(self) -> float:
        return self.meta["fps"]

    def _member(self, i: int) -> str:
        if not 0 <= i < len(self):
            raise IndexError(f"{self.path}: frame {i} outside 0..{len(self) - 1}")
        return _member(i)

    def jpeg(self, i: int) -> bytes:
        """The stored JPEG bytes of frame ``i`` (no decoding)."""
        return self._archive.read(self._member(i))

    def __getitem__(self, i: int) -> np.ndarray:
        return self._archive.jpeg(self._member(i))

    def all(self) -> np.ndarray:
        """Every frame, (T, H, W, 3) uint8."""
        return np.stack([self[i] for i in range(len(self))])
