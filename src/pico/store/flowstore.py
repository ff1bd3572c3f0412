"""Section 3.2's flow codec: each flow component linearly rescaled to [0, 255] and stored as a
grayscale JPEG; decompression rescales back. One file per snippet holds both directions.

Two rescalings (``scheme``):

- ``frame_range``: per field and component, [min, max] of the values -> [0, 255]. No value is
  ever clipped; the quantisation step is range / 255, so it is fine for slow motion and
  coarser for fast motion.
- ``fixed``: [-bound, bound] -> [0, 255] for every field, values beyond it clipped (as
  two-stream networks store flow with bound 20). Step 2 * bound / 255 everywhere.

bench/flow_codec.py measures both on real flows; the README gives the numbers and the choice.
The [lo, hi] of every component of every field are stored with the data (``ranges.npy``),
so decoding never depends on the config. ``write`` decodes what it stores and returns the
codec's own mean end-point error, which the flow stage records per video (``flow_epe``).

Members: ``meta.json`` ({video, n_fields, height, width, scheme, bound, quality, backend}),
``ranges.npy`` (float32, (n_fields, 2 directions, 2 components, [lo, hi])),
``fwd/000000_u.jpg``, ``fwd/000000_v.jpg``, ``bwd/...``: field t is frame t <-> t + 1.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np

from pico.store import zipstore

SUFFIX = ".flow.zip"
DIRECTIONS = ("fwd", "bwd")
COMPONENTS = ("u", "v")


def _member(direction: str, t: int, component: str) -> str:
    return f"{direction}/{t:06d}_{component}.jpg"


def value_range(component: np.ndarray, scheme: str, bound: float) -> tuple[float, float]:
    """The [lo, hi] mapped onto [0, 255] for one flow component (H, W)."""
    if scheme == "fixed":
        return -bound, bound
    lo, hi = float(component.min()), float(component.max())
    return lo, max(hi, lo + 1e-3)  # a constant field still decodes to itself


def quantize(component: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """float -> uint8 by the linear map [lo, hi] -> [0, 255], clipping outside."""
    scaled = (component - lo) * (255.0 / (hi - lo))
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def dequantize(codes: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """uint8 -> float32 by the inverse map."""
    return (lo + codes.astype(np.float32) * np.float32((hi - lo) / 255.0)).astype(np.float32)


def encode_field(
    field: np.ndarray, scheme: str, bound: float, quality: int
) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """One field (2, H, W) as stored: its two JPEGs, their [lo, hi] (2, 2), and the float32
    field a reader decodes from them, so the codec's own error is known when writing."""
    jpegs, ranges, decoded = [], np.zeros((2, 2), np.float32), []
    for c, component in enumerate(field):
        lo, hi = value_range(component, scheme, bound)
        data = zipstore.encode_jpeg(quantize(component, lo, hi), quality)
        jpegs.append(data)
        ranges[c] = lo, hi
        decoded.append(dequantize(zipstore.decode_jpeg(data, gray=True), lo, hi))
    return jpegs, ranges, np.stack(decoded)


class Stored(NamedTuple):
    """What ``write`` stored: the file's size and the codec's mean end-point error (px) over
    every pixel of every field of both directions (quantisation + JPEG, clipping included)."""

    bytes: int
    epe: float


def write(
    path: str | Path, fwd: np.ndarray, bwd: np.ndarray, meta: dict, *, scheme: str, bound: float, quality: int
) -> Stored:
    """Store forward and backward flow, each (T-1, 2, H, W) float, T >= 2, atomically. Flow
    with a NaN or an infinity is refused: it reaches the codec's error sum, checked before the
    archive appears (one pass over the flow, not two)."""
    if fwd.shape != bwd.shape or fwd.ndim != 4 or fwd.shape[1] != 2 or len(fwd) == 0:
        raise ValueError(f"{path}: flow must be two (T-1, 2, H, W) arrays with T >= 2, got {fwd.shape} and {bwd.shape}")
    n, _, height, width = fwd.shape
    ranges = np.zeros((n, 2, 2, 2), np.float32)
    epe_sum = 0.0
    with zipstore.writer(path) as put:
        for d, (direction, flow) in enumerate(zip(DIRECTIONS, (fwd, bwd))):
            for t in range(n):
                jpegs, ranges[t, d], decoded = encode_field(flow[t], scheme, bound, quality)
                for component, data in zip(COMPONENTS, jpegs):
                    put(_member(direction, t, component), data)
                error = decoded - flow[t]
                # np.hypot, not cv2.magnitude: OpenCV's result depends on the buffer's alignment
                epe_sum += float(np.hypot(*error).sum(dtype=np.float64))
        if not math.isfinite(epe_sum):
            raise ValueError(f"{path}: flow has NaN or infinite values (an fp16 overflow?); not stored")
        buf = io.BytesIO()
        np.save(buf, ranges)
        put("ranges.npy", buf.getvalue())
        info = {
            **meta,
            "n_fields": n,
            "height": height,
            "width": width,
            "scheme": scheme,
            "bound": bound,
            "quality": quality,
        }
        put("meta.json", json.dumps(info, sort_keys=True).encode())
    return Stored(Path(path).stat().st_size, epe_sum / (2 * n * height * width))


class FlowStore(zipstore.Store):
    """Decoded access to one snippet's stored flow."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.ranges = np.load(io.BytesIO(self._archive.read("ranges.npy")))

    def __len__(self) -> int:
        return self.meta["n_fields"]

    def quantized(self, direction: str, t: int) -> tuple[np.ndarray, np.ndarray]:
        """Field ``t`` as stored: uint8 codes (2, H, W) and each component's [lo, hi] (2, 2).
        ``dequantize`` is affine, so interpolating codes and then dequantizing equals
        interpolating the flow: tracking samples codes and never decodes whole fields to float."""
        if not 0 <= t < len(self):
            raise IndexError(f"{self.path}: flow field {t} outside 0..{len(self) - 1}")
        codes = np.stack([self._archive.jpeg(_member(direction, t, name), gray=True) for name in COMPONENTS])
        return codes, self.ranges[t, DIRECTIONS.index(direction)]

    def field(self, direction: str, t: int) -> np.ndarray:
        """Flow ``fwd`` (frame t -> t+1) or ``bwd`` (frame t+1 -> t), float32 (2, H, W)."""
        codes, ranges = self.quantized(direction, t)
        return np.stack([dequantize(code, *span) for code, span in zip(codes, ranges)])

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Forward and backward flow of the snippet, each float32 (T-1, 2, H, W)."""
        return tuple(np.stack([self.field(d, t) for t in range(len(self))]) for d in DIRECTIONS)
