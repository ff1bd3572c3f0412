"""Uncompressed ZIP archives as per-snippet containers (frames, flow): one file per snippet,
O(1) access to a member through the central directory, standard tools can list them.

Written atomically with fixed member timestamps, so the same content gives the same bytes;
read through a handle that reopens itself after ``fork`` (data-loader workers), since
processes must not share one file offset.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from pico.store.files import atomic_path, damaged

_EPOCH = (1980, 1, 1, 0, 0, 0)
#: What zipfile raises on a damaged archive: a bad CRC-32 or header (BadZipFile), data cut
#: short (EOFError), a flipped compression-method field (NotImplementedError, zlib.error).
_DAMAGED = (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, zlib.error)


@contextmanager
def writer(path: str | Path) -> Iterator[Callable[[str, bytes], None]]:
    """Yield ``put(name, data)``; the archive appears at ``path`` only when the block ends."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        yield lambda name, data: zf.writestr(zipfile.ZipInfo(name, date_time=_EPOCH), data)


class Reader:
    """Members of an archive by name; safe across ``fork``. Every member read is checked
    against the CRC-32 in the archive (zipfile does so on reading a member to its end), so a
    truncated or corrupted archive is a ValueError naming it, never data."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._open()

    def _open(self) -> None:
        try:
            self._zip = zipfile.ZipFile(self.path)
        except FileNotFoundError:
            raise  # missing, not damaged: the message names the path already
        except _DAMAGED as e:
            raise damaged(self.path, f"not a readable archive ({e})") from e
        # ``writer`` stores every member plain: another method or an encryption flag is a
        # damaged header (zipfile would try to inflate or decrypt it)
        odd = [i.filename for i in self._zip.infolist() if i.compress_type != zipfile.ZIP_STORED or i.flag_bits & 1]
        if odd:
            self._zip.close()
            raise damaged(self.path, f"damaged header of member {odd[0]!r} (not stored plain)")
        self._pid = os.getpid()

    def read(self, name: str) -> bytes:
        if self._pid != os.getpid():
            self._open()
        try:
            return self._zip.read(name)
        except (KeyError, *_DAMAGED) as e:
            raise damaged(self.path, f"member {name} cannot be read ({e})") from e

    def jpeg(self, name: str, gray: bool = False) -> np.ndarray:
        """Member ``name`` decoded as a JPEG (see ``decode_jpeg``)."""
        data = self.read(name)
        try:
            return decode_jpeg(data, gray)
        except ValueError as e:
            raise ValueError(f"{self.path}:{name}: {e}") from e

    def close(self) -> None:
        self._zip.close()


class Store:
    """A per-snippet archive opened for reading, with its ``meta.json``; a context manager."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._archive = Reader(path)
        try:
            self.meta = json.loads(self._archive.read("meta.json"))
        except ValueError as e:  # json's errors are ValueErrors too
            self._archive.close()
            if isinstance(e, json.JSONDecodeError):
                raise damaged(self.path, f"meta.json is not readable JSON ({e})") from e
            raise

    def close(self) -> None:
        self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """uint8 RGB (H, W, 3) or grayscale (H, W) -> baseline JPEG bytes."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


def decode_jpeg(data: bytes, gray: bool = False) -> np.ndarray:
    """JPEG bytes -> uint8 RGB (H, W, 3), or (H, W) with ``gray``; contiguous."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError("not a JPEG image")
    return image if gray else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
