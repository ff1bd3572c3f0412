"""Section 3.2's flow codec: each flow component linearly rescaled to [0, 255] and stored as a
grayscale JPEG; decompression rescales back. One file per snippet holds both directions.

Three rescalings (``scheme``):

- ``frame_range``: per field and component, [min, max] of the values -> [0, 255]. No value is
  ever clipped; the quantisation step is range / 255, so it is fine for slow motion and
  coarser for fast motion: 8 bits cannot hold a 60 px span to 0.1 px.
- ``fixed``: [-bound, bound] -> [0, 255] for every field, values beyond it clipped (as
  two-stream networks store flow with bound 20). Step 2 * bound / 255 everywhere.
- ``tiled``: ``frame_range`` per TILE x TILE tile, each tile's step its own range / 255 but
  never finer than ``step`` (or the field's own frame_range step, if that is finer); JPEG with a
  flat quantisation table. Smooth regions keep a fine step however far the field spans, and
  only tiles across a motion boundary get a coarse one.

bench/flow_codec.py measures all three on real flows; docs/measurements.md gives the numbers
and the choice. The [lo, hi] of every tile of every component of every field are stored with
the data (``ranges.npy``), so decoding never depends on the config. ``write`` decodes what it
stores and returns the codec's own mean end-point error, which the flow stage records per
video (``flow_epe``).

Members: ``meta.json`` ({video, n_fields, height, width, scheme, bound, quality, step, tile,
epe, backend}; ``tile`` null: one tile covers the field; ``epe``: ``write``'s error),
``ranges.npy`` (float16, (n_fields, 2 directions, 2 components, tile rows, tile columns,
[lo, hi])), ``fwd/000000_u.jpg``,
``fwd/000000_v.jpg``, ``bwd/...``: field t is frame t <-> t + 1. Files written before the tiled
scheme lack ``step`` and ``tile`` and store ``ranges.npy`` as float32 (n_fields, 2, 2, [lo, hi]);
they read as they always did, one tile per field.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image

from pico.store import zipstore

SUFFIX = ".flow.zip"
DIRECTIONS = ("fwd", "bwd")
COMPONENTS = ("u", "v")
#: The tiled scheme's tile side, px: whole 8x8 JPEG blocks, so a tile's own offset never
#: splits a DCT block (16 against 32: docs/measurements.md).
TILE = 16
#: The tiled scheme's finest step, px (config ``flow.codec.step``).
STEP = 1 / 32
#: The tiled scheme's JPEG quantisation table: this value for every coefficient, scaled by the
#: quality as libjpeg scales its own tables (6 at quality 90). The flow's error is mean squared,
#: which a flat table serves better than libjpeg's perceptual one (docs/measurements.md).
FLAT_TABLE = 32


def _member(direction: str, t: int, component: str) -> str:
    return f"{direction}/{t:06d}_{component}.jpg"


def grid(height: int, width: int, tile: int | None) -> tuple[int, int]:
    """Tile rows and columns of an (H, W) field; ``tile`` None: one tile."""
    return (1, 1) if tile is None else (-(-height // tile), -(-width // tile))


def value_ranges(component: np.ndarray, *, scheme: str, bound: float, step: float, tile: int | None) -> np.ndarray:
    """The [lo, hi] mapped onto [0, 255] in each tile of one flow component (H, W): float32
    (tile rows, tile columns, 2), one tile but for the tiled scheme, whose tiles start at their
    minimum with a step of max(tile range / 255, min(field range / 255, ``step``)). The values
    are float16's, as stored, rounded outward so that a range still covers its values."""
    if scheme == "fixed":
        spans = np.array([[[-bound, bound]]])
    else:
        lo, hi = float(component.min()), float(component.max())
        hi = max(hi, lo + 1e-3)  # a constant field still decodes to itself
        spans = np.array([[[lo, hi]]])
    if scheme == "tiled":
        starts = [np.arange(0, n, tile) for n in component.shape]
        # each tile's min and max: reduceat over the tiles' first rows, then their first columns
        tile_lo, tile_hi = (
            extreme.reduceat(extreme.reduceat(component, starts[0], axis=0), starts[1], axis=1)
            for extreme in (np.minimum, np.maximum)
        )
        tile_step = np.maximum((tile_hi - tile_lo) / 255, min((hi - lo) / 255, step))
        spans = np.stack([tile_lo, tile_lo + 255 * tile_step], axis=-1)
    stored = spans.astype(np.float16)
    # one float16 step outward where rounding moved lo up or hi down
    inward = (stored - spans) * [-1, 1] < 0
    return np.where(inward, np.nextafter(stored, np.float16([-np.inf, np.inf])), stored).astype(np.float32)


def lo_step(ranges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[lo, hi] (..., 2) -> the map code -> lo + code * step as lo and step (...)."""
    lo = ranges[..., 0]
    return lo, (ranges[..., 1] - lo) / np.float32(255)


def per_pixel(grid: np.ndarray, tile: int | None, height: int, width: int) -> np.ndarray:
    """A per-tile array (..., tile rows, tile columns) at every pixel, (..., H, W); a single
    tile's stays (..., 1, 1) and broadcasts."""
    if tile is None:
        return grid
    # whole columns, then whole rows of the grid repeated (np.take), never gathered pixel by pixel
    return np.take(np.take(grid, np.arange(width) // tile, axis=-1), np.arange(height) // tile, axis=-2)


def at_pixels(grid: np.ndarray, tile: int | None, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """A per-tile array (..., tile rows, tile columns) at the pixels (rows, cols), (..., n); a
    single tile's (..., 1) broadcasts."""
    if tile is None:
        return grid[..., 0, :]
    # a flat tile index and np.take along one axis: a third of what 2-D fancy indexing costs
    return np.take(grid.reshape(*grid.shape[:-2], -1), (rows // tile) * grid.shape[-1] + cols // tile, axis=-1)


def quantize(component: np.ndarray, lo, step) -> np.ndarray:
    """float -> uint8 by the linear map lo + code * step, clipping outside [0, 255]; lo and step
    broadcast against the component."""
    return np.clip(np.rint((component - lo) / step), 0, 255).astype(np.uint8)


def dequantize(codes: np.ndarray, lo, step) -> np.ndarray:
    """uint8 -> float32 by the inverse map; lo and step (float32) broadcast against the codes."""
    return lo + codes * step


def encode_jpeg(codes: np.ndarray, *, table: int | None, quality: int) -> bytes:
    """One component's codes (H, W) as a grayscale JPEG: with libjpeg's table (``table`` None),
    or with ``table`` for every coefficient, scaled by ``quality`` as libjpeg scales its own,
    and optimised Huffman codes."""
    if table is None:
        return zipstore.encode_jpeg(codes, quality)
    buf = io.BytesIO()
    Image.fromarray(codes).save(buf, "JPEG", qtables=[[table] * 64], quality=quality, optimize=True)
    return buf.getvalue()


def encode_field(
    field: np.ndarray,
    *,
    scheme: str,
    bound: float,
    quality: int,
    step: float = STEP,
    tile: int = TILE,
    table: int | None = FLAT_TABLE,
) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """One field (2, H, W) as stored: its two JPEGs, their per-tile [lo, hi] (2, tile rows,
    tile columns, 2), and the float32 field a reader decodes from them, so the codec's own
    error is known when writing. ``tile`` and ``table`` are the tiled scheme's (the bench
    varies them); frame_range and fixed use one tile and libjpeg's table."""
    if scheme != "tiled":
        tile, table = None, None
    height, width = field.shape[1:]
    jpegs, ranges, decoded = [], [], []
    for component in field:
        spans = value_ranges(component, scheme=scheme, bound=bound, step=step, tile=tile)
        lo, code_step = (per_pixel(a, tile, height, width) for a in lo_step(spans))
        data = encode_jpeg(quantize(component, lo, code_step), table=table, quality=quality)
        jpegs.append(data)
        ranges.append(spans)
        decoded.append(dequantize(zipstore.decode_jpeg(data, gray=True), lo, code_step))
    return jpegs, np.stack(ranges), np.stack(decoded)


class Stored(NamedTuple):
    """What ``write`` stored: the file's size and the codec's mean end-point error (px) over
    every pixel of every field of both directions (quantisation + JPEG, clipping included)."""

    bytes: int
    epe: float


def write(
    path: str | Path,
    fwd: np.ndarray,
    bwd: np.ndarray,
    meta: dict,
    *,
    scheme: str,
    bound: float,
    quality: int,
    step: float = STEP,
) -> Stored:
    """Store forward and backward flow, each (T-1, 2, H, W) float, T >= 2, atomically. Flow
    with a NaN or an infinity is refused: it reaches the codec's error sum, checked before the
    archive appears (one pass over the flow, not two)."""
    if fwd.shape != bwd.shape or fwd.ndim != 4 or fwd.shape[1] != 2 or len(fwd) == 0:
        raise ValueError(f"{path}: flow must be two (T-1, 2, H, W) arrays with T >= 2, got {fwd.shape} and {bwd.shape}")
    n, _, height, width = fwd.shape
    tile = TILE if scheme == "tiled" else None
    ranges = np.zeros((n, 2, 2, *grid(height, width, tile), 2), np.float16)
    epe_sum = 0.0
    with zipstore.writer(path) as put:
        for d, (direction, flow) in enumerate(zip(DIRECTIONS, (fwd, bwd))):
            for t in range(n):
                jpegs, ranges[t, d], decoded = encode_field(
                    flow[t], scheme=scheme, bound=bound, quality=quality, step=step
                )
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
            "step": step,
            "tile": tile,
            "epe": epe_sum / (2 * n * height * width),
        }
        put("meta.json", json.dumps(info, sort_keys=True).encode())
    return Stored(Path(path).stat().st_size, info["epe"])


class Quantized(NamedTuple):
    """One field as stored: uint8 codes (2, H, W), each component's per-tile [lo, hi]
    (2, tile rows, tile columns, 2) and the tile side (None: one tile)."""

    codes: np.ndarray
    ranges: np.ndarray
    tile: int | None


class FlowStore(zipstore.Store):
    """Decoded access to one snippet's stored flow."""

    def __init__(self, path: str | Path):
        super().__init__(path)
        self.tile = self.meta.get("tile")  # absent before the tiled scheme: one tile per field
        ranges = np.load(io.BytesIO(self._archive.read("ranges.npy"))).astype(np.float32)
        shape = (len(self), 2, 2, *grid(self.meta["height"], self.meta["width"], self.tile), 2)
        if ranges.size != math.prod(shape):
            self.close()
            raise ValueError(f"{self.path}: ranges.npy holds {ranges.shape}, not the {shape} its meta.json implies")
        self.ranges = ranges.reshape(shape)

    def __len__(self) -> int:
        return self.meta["n_fields"]

    def quantized(self, direction: str, t: int) -> Quantized:
        """Field ``t`` as stored. Tracking samples codes and dequantizes only the pixels it
        interpolates between, never decoding whole fields to float."""
        if not 0 <= t < len(self):
            raise IndexError(f"{self.path}: flow field {t} outside 0..{len(self) - 1}")
        codes = np.stack([self._archive.jpeg(_member(direction, t, name), gray=True) for name in COMPONENTS])
        return Quantized(codes, self.ranges[t, DIRECTIONS.index(direction)], self.tile)

    def field(self, direction: str, t: int) -> np.ndarray:
        """Flow ``fwd`` (frame t -> t+1) or ``bwd`` (frame t+1 -> t), float32 (2, H, W)."""
        codes, ranges, tile = self.quantized(direction, t)
        return dequantize(codes, *(per_pixel(a, tile, *codes.shape[1:]) for a in lo_step(ranges)))

    def read(self) -> tuple[np.ndarray, np.ndarray]:
        """Forward and backward flow of the snippet, each float32 (T-1, 2, H, W)."""
        return tuple(np.stack([self.field(d, t) for t in range(len(self))]) for d in DIRECTIONS)
