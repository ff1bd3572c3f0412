"""Deterministic randomness: every draw derives from the global seed and stable keys."""

from __future__ import annotations

import hashlib

import numpy as np


def _word(key: object) -> int:
    return int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "little")


def rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator fixed by ``seed`` and ``keys`` (e.g. a video id), stable across runs,
    processes and machines (unlike Python's salted ``hash``)."""
    return np.random.default_rng(np.random.SeedSequence([seed, *map(_word, keys)]))
