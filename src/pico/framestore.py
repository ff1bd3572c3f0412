"""One file per snippet: its 30 Hz frames as JPEGs in an uncompressed (stored) ZIP archive.

Why a ZIP: one file per snippet (72 M frame files would cripple a cluster file system), O(1)
random access to frame i through the archive's central directory, inspectable with standard
tools (``unzip -l``), and no custom binary format to maintain. Members:

- ``meta.json``: ``{"video", "fps", "n_frames", "width", "height", "start_s", "end_s"}``
- ``frames/000000.jpg`` ... one baseline JPEG per frame, RGB.

Members carry a fixed timestamp, so the same frames give the same bytes.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Iterable

import cv2
import numpy as np

from pico.io import atomic_path

SUFFIX = ".frames.zip"


def _member(i: int) -> str:
    return f"frames/{i:06d}.jpg"


def _entry(name: str) -> zipfile.ZipInfo:
    return zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))


def encode_jpeg(frame: np.ndarray, quality: int) -> bytes:
    """RGB uint8 (H, W, 3) -> JPEG bytes."""
    ok, buf = cv2.imencode(".jpg", frame[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes) -> np.ndarray:
    """JPEG bytes -> RGB uint8 (H, W, 3)."""
    frame = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if frame is None:
        raise ValueError("not a JPEG image")
    return cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)  # contiguous, unlike a [..., ::-1] view


def write(path: str | Path, frames: Iterable[np.ndarray], meta: dict, quality: int = 95) -> dict:
    """Write ``frames`` (RGB uint8) atomically; return the meta written (with n_frames, size,
    and ``end_s`` when ``meta`` has ``start_s``)."""
    meta = dict(meta)
    n = 0
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for n, frame in enumerate(frames, 1):
            zf.writestr(_entry(_member(n - 1)), encode_jpeg(frame, quality))
            meta["height"], meta["width"] = frame.shape[:2]
        meta["n_frames"] = n
        if "start_s" in meta:
            meta["end_s"] = meta["start_s"] + n / meta["fps"]
        zf.writestr(_entry("meta.json"), json.dumps(meta, sort_keys=True))
    return meta


class FrameStore:
    """Random access to the frames of one snippet file. Safe to use after ``fork`` (data-loader
    workers): each process reopens the archive rather than share one file offset."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._open()
        self.meta = json.loads(self._zip.read("meta.json"))

    def _open(self) -> None:
        self._zip, self._pid = zipfile.ZipFile(self.path), os.getpid()

    def __len__(self) -> int:
        return self.meta["n_frames"]

    @property
    def fps(self) -> float:
        return self.meta["fps"]

    def jpeg(self, i: int) -> bytes:
        """The stored JPEG bytes of frame ``i`` (no decoding)."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.path}: frame {i} outside 0..{len(self) - 1}")
        if self._pid != os.getpid():
            self._open()
        return self._zip.read(_member(i))

    def __getitem__(self, i: int) -> np.ndarray:
        return decode_jpeg(self.jpeg(i))

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> "FrameStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
