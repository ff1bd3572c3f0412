"""True correspondences between two images, read from the usual formats, as one flow field.

Every reader returns where each pixel of image a is in image b: a flow (2, H, W) float32,
(x, y) in a -> (x + u, y + v) in b, NaN where the truth is unknown.

- Rectified stereo: a disparity map d of the left image, (x, y) -> (x - d, y), so u = -d,
  v = 0. ``.npy``, ``.npz`` (its one array, or the one named ``disparity``), ``.pfm``
  (single-channel ``Pf``, rows stored bottom to top, scale < 0 = little-endian) or an 8- or
  16-bit single-channel ``.png`` whose values times ``disparity_scale`` are pixels
  (Middlebury's 8-bit maps: scale 1; KITTI's 16-bit: 1/256). Non-finite or non-positive
  disparities are unknown (0 is the PNG formats' "no measurement").
- Optical flow: a Middlebury ``.flo`` (float32 magic 202021.25, int32 width and height, then
  u, v interleaved row by row, little-endian); unknown where |u| or |v| >= 1e9 or non-finite.

A file that is not what its extension says is a ``DatasetError`` naming it and the reason.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from pico.evaluation.readers import DatasetError
from pico.store.files import atomic_path

FLO_MAGIC = 202021.25
PFM_HEADER = re.compile(rb"(P[fF])\s+(\d+)\s+(\d+)\s+([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s")
FLO_UNKNOWN = 1e9  # Middlebury: a component this large marks an unknown flow vector


def read_flo(path: str | Path) -> np.ndarray:
    """A Middlebury ``.flo`` as flow (2, H, W) float32, NaN where unknown."""
    raw = Path(path).read_bytes()
    if len(raw) < 12 or np.frombuffer(raw[:4], "<f4")[0] != FLO_MAGIC:
        raise DatasetError(f"{path}: not a Middlebury .flo file (no magic number {FLO_MAGIC} in its first 4 bytes)")
    width, height = (int(v) for v in np.frombuffer(raw[4:12], "<i4"))
    expected = 12 + 8 * width * height
    if width <= 0 or height <= 0 or len(raw) != expected:
        raise DatasetError(
            f"{path}: a {width} x {height} .flo needs {expected} bytes, the file has {len(raw)} (truncated or damaged)"
        )
    flow = np.frombuffer(raw[12:], "<f4").reshape(height, width, 2).transpose(2, 0, 1).astype(np.float32)
    unknown = ~np.isfinite(flow).all(0) | (np.abs(flow) >= FLO_UNKNOWN).any(0)
    flow[:, unknown] = np.nan
    return flow


def write_flo(flow: np.ndarray, path: str | Path) -> None:
    """Flow (2, H, W) as a Middlebury ``.flo``, atomically; NaN (unknown) written as 1e10."""
    _, height, width = flow.shape
    body = np.where(np.isfinite(flow), flow, 1e10).transpose(1, 2, 0).astype("<f4")
    with atomic_path(path) as tmp:
        tmp.write_bytes(
            np.float32(FLO_MAGIC).astype("<f4").tobytes() + np.array([width, height], "<i4").tobytes() + body.tobytes()
        )


def read_pfm(path: str | Path) -> np.ndarray:
    """A single-channel PFM (``Pf``) as (H, W) float32, top row first."""
    raw = Path(path).read_bytes()
    header = PFM_HEADER.match(raw)  # type, width, height, scale, each followed by one whitespace
    if header is None or header[1] != b"Pf" or float(header[4]) == 0:
        raise DatasetError(
            f"{path}: not a single-channel PFM (expected 'Pf', width, height and a nonzero scale, got {raw[:24]!r})"
        )
    width, height, scale = int(header[2]), int(header[3]), float(header[4])
    if len(raw) - header.end() != 4 * width * height:
        raise DatasetError(
            f"{path}: a {width} x {height} PFM has {4 * width * height} bytes of samples, "
            f"the file {len(raw) - header.end()} (truncated or damaged)"
        )
    samples = np.frombuffer(raw[header.end() :], "<f4" if scale < 0 else ">f4").reshape(height, width)
    return samples[::-1].astype(np.float32)  # PFM rows run bottom to top


def _array(path: Path) -> np.ndarray:
    """The disparity array of a ``.npy`` or ``.npz`` file."""
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DatasetError(f"{path}: not a readable NumPy file ({e})") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            names = loaded.files
            if len(names) != 1 and "disparity" not in names:
                raise DatasetError(f"{path}: holds {names}; expected one array or one named 'disparity'")
            return loaded["disparity" if "disparity" in names else names[0]]
    return loaded


def _png(path: Path, scale: float) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 2 or image.dtype not in (np.uint8, np.uint16):
        what = "unreadable" if image is None else f"{image.dtype} with shape {image.shape}"
        raise DatasetError(f"{path}: expected a single-channel 8- or 16-bit disparity PNG, got {what}")
    return image.astype(np.float32) * scale


def read_disparity(path: str | Path, scale: float = 1.0) -> np.ndarray:
    """A disparity map (H, W) float32 in pixels, NaN where unknown (non-finite or <= 0)."""
    path = Path(path)
    readers = {".npy": _array, ".npz": _array, ".pfm": read_pfm, ".png": lambda p: _png(p, scale)}
    if path.suffix.lower() not in readers:
        raise DatasetError(f"{path}: unknown disparity format; expected one of {', '.join(readers)}")
    disparity = np.asarray(readers[path.suffix.lower()](path), dtype=np.float32)
    if disparity.ndim != 2:
        raise DatasetError(f"{path}: a disparity map is 2-D, this one has shape {disparity.shape}")
    return np.where(np.isfinite(disparity) & (disparity > 0), disparity, np.nan).astype(np.float32)


def disparity_flow(disparity: np.ndarray) -> np.ndarray:
    """Rectified stereo as flow: (x, y) in the left image is (x - d, y) in the right."""
    return np.stack([-disparity, np.where(np.isnan(disparity), np.nan, 0.0)]).astype(np.float32)


def read_truth(spec: dict) -> np.ndarray:
    """The flow a -> b of a configured pair (``flow`` or ``disparity`` with ``disparity_scale``)."""
    if "flow" in spec:
        return read_flo(spec["flow"])
    return disparity_flow(read_disparity(spec["disparity"], spec.get("disparity_scale", 1.0)))
