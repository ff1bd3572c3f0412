"""Checkpoints and model files (``torch.save``'s archives) written atomically and verified
when read: a truncated, bit-flipped or half-copied file is an error naming it, never a model.

``torch.load`` checks nothing (a flipped bit in a tensor loads silently), so ``save`` seals the
file: the SHA-256 of everything before it goes into the ZIP comment of the archive that
``torch.save`` wrote. The file stays a plain ``torch.load``-able archive (ZIP readers skip the
comment); ``load`` recomputes the digest before unpickling anything.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from typing import Any, BinaryIO

import torch

from pico.store.files import atomic_path

_MAGIC = b"pico-sha256:"
_COMMENT = len(_MAGIC) + 64  # the seal: magic + hex digest
_EOCD = b"PK\x05\x06"  # ZIP's end-of-central-directory record: 22 bytes, then the comment


def _digest(f: BinaryIO, size: int) -> str:
    """Hex SHA-256 of the next ``size`` bytes of ``f`` (fewer if it ends first)."""
    digest = hashlib.sha256()
    while size > 0:
        block = f.read(min(size, 1 << 20))
        if not block:
            break
        digest.update(block)
        size -= len(block)
    return digest.hexdigest()


def sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file, read in blocks."""
    with open(path, "rb") as f:
        return _digest(f, os.fstat(f.fileno()).st_size)


def save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save(obj)`` to ``path`` atomically, sealed with its SHA-256."""
    with atomic_path(path) as tmp:
        # through a handle: given a path, torch names the archive's records after its stem (the
        # random temporary name), so the same object would give other bytes on every save
        with open(tmp, "wb") as f:
            torch.save(obj, f)
        with open(tmp, "r+b") as f:
            end = f.seek(-22, os.SEEK_END) + 22
            eocd = f.read(22)
            if eocd[:4] != _EOCD or eocd[20:] != b"\0\0":
                raise ValueError(f"{path}: torch.save did not end its archive as expected; not sealed")
            f.seek(0)
            digest = _digest(f, end - 2).encode()  # everything but the comment's length
            f.seek(end - 2)
            f.write(_COMMENT.to_bytes(2, "little") + _MAGIC + digest)


def _verified(f: BinaryIO, path: str | os.PathLike) -> None:
    """Raise ValueError naming ``path`` unless ``f`` is a sealed file whose content is intact."""
    size = os.fstat(f.fileno()).st_size
    f.seek(max(0, size - _COMMENT - 2))
    trailer = f.read()
    if (
        len(trailer) != _COMMENT + 2
        or trailer[:2] != _COMMENT.to_bytes(2, "little")
        or not trailer[2:].startswith(_MAGIC)
    ):
        raise ValueError(
            f"{path}: no pico checksum at its end (truncated, or not written by pico.store.checkpoint.save); "
            "delete it to rebuild"
        )
    f.seek(0)
    if _digest(f, size - _COMMENT - 2) != trailer[2 + len(_MAGIC) :].decode("ascii", "replace"):
        raise ValueError(f"{path}: checksum mismatch, the file is corrupted; delete it to rebuild")
    f.seek(0)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """What ``save`` wrote to ``path``, verified first; tensors and plain data only
    (``weights_only``). Any damage is a ValueError naming the file."""
    try:
        with open(path, "rb") as f:
            _verified(f, path)
            return torch.load(f, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:  # unreadable, or sealed but not torch's
        raise ValueError(f"{path}: cannot be loaded ({e})") from e
