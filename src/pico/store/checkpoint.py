"""Checkpoints and model files (``torch.save``'s archives) written atomically and verified
when read: a truncated, bit-flipped or half-copied file is an error naming it, never a model.

``torch.load`` checks nothing (a flipped bit in a tensor loads silently), so ``save`` seals the
file: the SHA-256 of everything before it goes into the ZIP comment of the archive that
``torch.save`` wrote. The file stays a plain ``torch.load``-able archive (ZIP readers skip the
comment); ``load`` recomputes the digest before unpickling anything. ``load_weights`` reads a
weights file that is either pico's (sealed: verified) or a user's download (no seal: the
official MoCo-v2 checkpoint, loaded as ``torch.load`` does).
"""

from __future__ import annotations

import hashlib
import os
import pickle
from typing import Any, BinaryIO

import torch

from pico.store.files import atomic_path, damaged

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


def _seal(f: BinaryIO) -> str | None:
    """The digest in ``save``'s seal at the end of ``f``; None where there is none (a file cut
    short, or not pico's)."""
    size = os.fstat(f.fileno()).st_size
    f.seek(max(0, size - _COMMENT - 2))
    trailer = f.read()
    f.seek(0)
    if len(trailer) != _COMMENT + 2 or trailer[:2] != _COMMENT.to_bytes(2, "little"):
        return None
    if not trailer[2:].startswith(_MAGIC):
        return None
    return trailer[2 + len(_MAGIC) :].decode("ascii", "replace")


def _verified(f: BinaryIO, path: str | os.PathLike, progress: bool) -> None:
    """Raise ValueError naming ``path`` unless ``f`` is a sealed file whose content is intact."""
    sealed = _seal(f)
    if sealed is None:
        reason = "no pico checksum at its end (truncated, or not written by pico.store.checkpoint.save)"
        raise damaged(path, reason, progress=progress)
    if _digest(f, os.fstat(f.fileno()).st_size - _COMMENT - 2) != sealed:
        raise damaged(path, "checksum mismatch, the file is corrupted", progress=progress)
    f.seek(0)


def load(path: str | os.PathLike, map_location: str | torch.device = "cpu", *, progress: bool = False) -> Any:
    """What ``save`` wrote to ``path``, verified first; tensors and plain data only
    (``weights_only``). Any damage is a ValueError naming the file and how to rebuild it;
    ``progress``: the file is a job's saved progress, no output (``files.rebuild_hint``)."""
    try:
        with open(path, "rb") as f:
            _verified(f, path, progress)
            return torch.load(f, map_location=map_location, weights_only=True)
    except (OSError, RuntimeError, pickle.UnpicklingError) as e:  # unreadable, or sealed but not torch's
        raise damaged(path, f"cannot be loaded ({e})", progress=progress) from e


def load_weights(path: str | os.PathLike) -> Any:
    """A weights file that pico wrote (the stand-in MoCo-v2 encoder, sealed: verified by
    ``load``) or a user's download without the seal (an official MoCo-v2 checkpoint, loaded as
    ``torch.load`` loads it: tensors and plain data only). Either way, a file that cannot be
    loaded is a ValueError naming it. A pico file cut short has lost its seal and is read as a
    download: its archive's central directory, at the end, is gone too, so torch cannot load it."""
    with open(path, "rb") as f:
        if _seal(f) is not None:
            return load(path)
        try:
            return torch.load(f, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError, pickle.UnpicklingError) as e:
            raise ValueError(f"{path}: cannot be loaded as a torch checkpoint ({e})") from e
