"""Video object segmentation by label propagation (beyond the paper; docs/propagation.md).

The DAVIS-2017 semi-supervised protocol as self-supervised correspondence work uses it (Wang et
al. 2019, Jabri et al. 2020 "CRW", Caron et al. 2021 "DINO"): a video's first-frame instance
masks are given, and every later frame's labels are read off earlier frames by nearest
neighbours in a model's frozen dense features, with nothing trained.

Features. Every frame is resized to the short side s the models see (``short_side``) and

    f_t = normalise(model(frame_t))        (C, h, w) at 1/STRIDE of the resized frame,

each cell a unit vector (``correspondence.dense_features``).

Labels. y_t (K + 1, h, w): per cell, the weight of the background (channel 0) and of each of
the K objects of the first frame. y_0 is the first frame's masks, each cell the mean of their
one-hot maps over its STRIDE x STRIDE pixels of the resized frame (a void pixel counts for no
label); every later y_t is a prediction.

Propagation. Frame t reads its labels from the first frame and the N frames before it,

    C_t = {0} u {max(1, t - N), ..., t - 1}        (N = ``context``).

For a query cell i of frame t and a key cell j of a context frame t', the affinity is the
cosine a_ij = f_t(i) . f_t'(j), kept only for keys within the radius, |p_i - p_j| <= r (cell
positions, r = ``radius_px`` / STRIDE). With N_k(i) the k keys of highest affinity over the
whole context (k = ``topk``, temperature tau),

    y_t(i) = sum_{j in N_k(i)} w_ij y_t'(j),    w_ij = exp(a_ij / tau) / sum_{j' in N_k(i)} exp(a_ij' / tau).

The predicted mask: y_t bilinearly upsampled to the frame's own size, argmax over labels.

Scoring (DAVIS 2017: Pont-Tuset et al. 2017, measures of Perazzi et al. 2016). Per object o
and scored frame (every frame but the first and last), with M the predicted mask and G the
true one, void pixels removed from both:

    J = |M n G| / |M u G|                                      (1 when both are empty)
    F = 2 P R / (P + R),   P = |dM n dil(dG)| / |dM|,   R = |dG n dil(dM)| / |dG|,

dM, dG the boundary pixels, dil the dilation by a disk of radius
d = ceil(0.008 x image diagonal) px; F = 1 when both boundaries are empty, 0 when only one is
(or P + R = 0). J_mean and F_mean average each object's frame means over every object of every
video; JF_mean = (J_mean + F_mean) / 2.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from pico import logs, seeding
from pico.data import synthetic
from pico.evaluation.correspondence import dense_features
from pico.evaluation.demo_data import demo_size, write_image
from pico.evaluation.readers import DatasetError, read_image
from pico.evaluation.registry import ordered
from pico.learn.model import STRIDE
from pico.store.files import atomic_path

log = logging.getLogger(__name__)
TITLE = "Video object segmentation by label propagation, DAVIS-2017 semi-supervised protocol (beyond the paper)"
VOID = 255  # DAVIS's value for pixels that are scored as nothing
BOUNDARY_THRESHOLD = 0.008  # DAVIS's bound_th: the boundary tolerance as a share of the image diagonal
CHUNK = 1 << 24  # affinities held at once (floats)
MIN_TILE = 8  # query cells a side per tile at least: smaller tiles make matrix products too small
DEMO_SECONDS, DEMO_FPS = 1.0, 30
MIN_DEMO_SHARE = 0.005  # a demo object is tracked when it covers this share of the first frame


# --- DAVIS-2017 on disk -------------------------------------------------------------------------


@dataclass(frozen=True)
class Video:
    """One video: its frames (JPEG) and, for each, its annotation (palette PNG of object ids)."""

    name: str
    frames: tuple[Path, ...]
    annotations: tuple[Path, ...]


def davis_videos(root: str | Path, split: str = "val") -> list[Video]:
    """The videos ``ImageSets/2017/{split}.txt`` lists under ``root``, in its order."""
    listing = Path(root) / "ImageSets" / "2017" / f"{split}.txt"
    if not listing.is_file():
        raise DatasetError(f"{listing}: missing; DAVIS-2017 lists its {split} videos there (official layout)")
    names = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
    if not names:
        raise DatasetError(f"{listing}: lists no video")
    return [davis_video(Path(root), name) for name in names]


def davis_video(root: Path, name: str) -> Video:
    """Video ``name``: ``JPEGImages/480p/{name}/*.jpg``, each with ``Annotations/480p/{name}/`` its stem ``.png``."""
    folders = root / "JPEGImages" / "480p" / name, root / "Annotations" / "480p" / name
    for folder in folders:
        if not folder.is_dir():
            raise DatasetError(f"{folder}: missing; video {name} of the split needs its frames and annotations")
    frames = sorted(folders[0].glob("*.jpg"))
    if len(frames) < 3:
        raise DatasetError(
            f"{folders[0]}: {len(frames)} JPEG frames; a video needs 3 or more (the first is given, the last unscored)"
        )
    annotations = tuple(folders[1] / f"{frame.stem}.png" for frame in frames)
    missing = [a for a in annotations if not a.is_file()]
    if missing:
        raise DatasetError(f"{missing[0]}: missing; every frame needs its annotation ({len(missing)} missing)")
    return Video(name, tuple(frames), annotations)


def read_annotation(path: Path) -> np.ndarray:
    """A DAVIS annotation: uint8 (H, W) object ids (0 background, VOID void) from a palette PNG
    (or an 8-bit grey one), read as indices, never as colours."""
    try:
        with Image.open(path) as image:
            mode, ids = image.mode, np.array(image)
    except (OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: unreadable PNG ({e})") from None
    if mode not in ("P", "L"):
        raise DatasetError(f"{path}: a {mode} image; DAVIS annotations are palette PNGs whose values are object ids")
    return ids


def load(video: Video) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A video's RGB frames (H, W, 3) and object ids (H, W), every annotation its frame's size."""
    frames = [read_image(path, cv2.IMREAD_COLOR)[:, :, ::-1].copy() for path in video.frames]
    ids = [read_annotation(path) for path in video.annotations]
    for frame, mask, path in zip(frames, ids, video.annotations):
        if mask.shape != frame.shape[:2]:
            raise DatasetError(
                f"{path}: {mask.shape[1]} x {mask.shape[0]}, its frame {frame.shape[1]} x {frame.shape[0]}; "
                "an annotation must be its frame's size"
            )
    return frames, ids


def first_frame_objects(ids: np.ndarray, path: Path) -> list[int]:
    """The objects to track: the ids of the first annotation (neither background nor void)."""
    objects = [int(o) for o in np.unique(ids) if o not in (0, VOID)]
    if not objects:
        raise DatasetError(f"{path}: no object in the first frame's annotation (ids 1-254 are objects)")
    return objects


# --- propagation ----------------------------------------------------------------------------


def resized(image: np.ndarray, short_side: int) -> np.ndarray:
    """``image`` (H, W, ...) with its short side ``short_side``: area-averaged when shrinking."""
    h, w = image.shape[:2]
    scale = short_side / min(h, w)
    if scale == 1:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def cell_means(maps: torch.Tensor, cells: tuple[int, int]) -> torch.Tensor:
    """Maps (n, H', W') of the resized frame averaged over each feature cell's STRIDE x STRIDE
    pixels: (n, h, w); the last row and column of pixels repeat where the cells overhang."""
    h, w = cells
    pad = (0, max(0, STRIDE * w - maps.shape[2]), 0, max(0, STRIDE * h - maps.shape[1]))
    full = F.pad(maps[None], pad, mode="replicate")[0, :, : STRIDE * h, : STRIDE * w]
    return F.avg_pool2d(full[None], STRIDE)[0]


def first_labels(ids: np.ndarray, objects: list[int], *, short_side: int, cells: tuple[int, int]) -> torch.Tensor:
    """y_0 (K + 1, h, w): the background's and each object's share of every cell."""
    onehot = np.stack([ids == label for label in (0, *objects)], -1).astype(np.float32)  # void: in no channel
    small = np.atleast_3d(resized(onehot, short_side))  # resized as the frame is, so the shares sit on its pixels
    return cell_means(torch.from_numpy(small).permute(2, 0, 1), cells)


def tile_side(frames: int, reach: int) -> int:
    """Query cells a side per tile: twice the radius, at least MIN_TILE, with no more than CHUNK
    affinities. A tile's queries each meet its (side + 2 reach)^2 window of keys a frame, so a
    smaller tile wastes less on keys beyond the radius, a larger one makes fewer, larger matrix
    products (the demo's 2048-channel baseline, 32 x 43 cells, 21 frames, radius 6 cells, one CPU
    thread: side 12 1.38 s a frame, side 8 1.62 s, side 16 1.71 s)."""
    fits = -reach + math.sqrt(reach**2 + math.sqrt(CHUNK / frames))  # side (side + 2 reach) sqrt(frames) <= sqrt(CHUNK)
    return max(1, min(max(2 * reach, MIN_TILE), math.floor(fits)))


@functools.lru_cache(maxsize=4096)
def within_radius(rows: range, cols: range, key_rows: range, key_cols: range, radius: float) -> torch.Tensor:
    """(queries, keys) bool: key cell within ``radius`` cells of query cell, both row-major
    (cached: every frame of a video has the same tiles)."""
    qy, qx = torch.meshgrid(torch.tensor(rows), torch.tensor(cols), indexing="ij")
    ky, kx = torch.meshgrid(torch.tensor(key_rows), torch.tensor(key_cols), indexing="ij")
    dy = qy.reshape(-1, 1) - ky.reshape(1, -1)  # broadcast: every query against every key
    dx = qx.reshape(-1, 1) - kx.reshape(1, -1)
    return dy**2 + dx**2 <= radius**2


def propagate_tile(
    query: torch.Tensor,
    keys: torch.Tensor,
    labels: torch.Tensor,
    rows: range,
    cols: range,
    *,
    topk: int,
    temperature: float,
    radius: float,
) -> torch.Tensor:
    """y_t of the query cells ``rows`` x ``cols`` (K + 1, len(rows), len(cols)) from the key
    cells within the radius: the window around the tile of ``keys`` (the context frames'
    features, (T, C, h, w)) and of their ``labels`` (T, K + 1, h, w)."""
    frames, channels, h, w = keys.shape
    reach = math.floor(radius)
    key_rows = range(max(0, rows.start - reach), min(h, rows.stop + reach))
    key_cols = range(max(0, cols.start - reach), min(w, cols.stop + reach))
    window = (slice(None), slice(None), slice(key_rows.start, key_rows.stop), slice(key_cols.start, key_cols.stop))
    q = query[:, rows.start : rows.stop, cols.start : cols.stop].flatten(1).T  # (n, C)
    k = keys[window].transpose(0, 1).reshape(channels, -1)  # (C, T m): every context frame's window, side by side
    affinity = (q @ k).view(len(q), frames, -1)  # (n, T, m) cosines: both sides are unit vectors
    near = within_radius(rows, cols, key_rows, key_cols, radius).to(affinity.device)
    affinity = affinity.masked_fill(~near[:, None, :], -torch.inf).flatten(1)  # keys beyond the radius never win
    top, index = affinity.topk(min(topk, affinity.shape[1]), dim=1)
    weights = (top / temperature).softmax(1)  # exp(-inf) = 0: a far key picked to fill k weighs nothing
    values = labels[window].permute(0, 2, 3, 1).reshape(-1, labels.shape[1])  # (T m, K + 1), in k's column order
    out = (weights[..., None] * values[index]).sum(1)  # (n, K + 1)
    return out.T.reshape(-1, len(rows), len(cols))


def propagate_frame(
    query: torch.Tensor,
    keys: torch.Tensor,
    labels: torch.Tensor,
    *,
    topk: int,
    temperature: float,
    radius: float,
) -> torch.Tensor:
    """y_t (K + 1, h, w) of a frame's features ``query`` (C, h, w) from its context (``keys``
    (T, C, h, w), ``labels`` (T, K + 1, h, w)), tile by tile so that the affinities fit in memory."""
    _, h, w = query.shape
    side = tile_side(len(keys), math.floor(radius))
    out = query.new_empty(labels.shape[1], h, w)
    for y0 in range(0, h, side):
        for x0 in range(0, w, side):
            rows, cols = range(y0, min(h, y0 + side)), range(x0, min(w, x0 + side))
            out[:, rows.start : rows.stop, cols.start : cols.stop] = propagate_tile(
                query, keys, labels, rows, cols, topk=topk, temperature=temperature, radius=radius
            )
    return out


def propagate(
    features: Iterable[torch.Tensor],
    first: torch.Tensor,
    *,
    context: int,
    topk: int,
    temperature: float,
    radius: float,
) -> Iterator[torch.Tensor]:
    """y_1, y_2, ...: each later frame's labels (K + 1, h, w), as its features (C, h, w) arrive
    (the first of ``features`` is frame 0's, whose labels are ``first``); ``radius`` in cells.
    The context lives in slots: 0 the first frame, 1..N the last N frames, oldest overwritten
    (top-k is over a set: the slots' order does not matter)."""
    frames = iter(features)
    f0 = next(frames)
    keys, labels = f0.new_empty(context + 1, *f0.shape), first.new_empty(context + 1, *first.shape)
    keys[0], labels[0] = f0, first
    for t, f in enumerate(frames, 1):
        held = min(t, context + 1)  # the first frame and frames max(1, t - N)..t - 1
        y = propagate_frame(f, keys[:held], labels[:held], topk=topk, temperature=temperature, radius=radius)
        slot = 1 + (t - 1) % context
        keys[slot], labels[slot] = f, y
        yield y


def predicted_ids(
    y: torch.Tensor, objects: list[int], *, resized_size: tuple[int, int], size: tuple[int, int]
) -> np.ndarray:
    """The predicted object ids (H, W) of labels ``y`` (K + 1, h, w): upsampled x STRIDE
    (bilinear, cropped to the resized frame's ``resized_size``, width x height), then to the
    frame's own ``size`` (bilinear), argmax."""
    up = F.interpolate(y[None], scale_factor=STRIDE, mode="bilinear", align_corners=False)
    up = up[:, :, : resized_size[1], : resized_size[0]]
    full = F.interpolate(up, size=(size[1], size[0]), mode="bilinear", align_corners=False)[0]
    return np.array([0, *objects], np.uint8)[full.argmax(0).cpu().numpy()]


def segment(
    net: torch.nn.Module,
    frames: list[np.ndarray],
    first: np.ndarray,
    objects: list[int],
    *,
    short_side: int,
    context: int,
    topk: int,
    temperature: float,
    radius_px: float,
    device: torch.device,
) -> list[np.ndarray]:
    """The predicted object ids (H, W) of frames 1, 2, ... of a video whose first frame's ids are ``first``."""
    small = [resized(frame, short_side) for frame in frames]
    features = (dense_features(net, image, device) for image in small)  # one frame at a time: only the context is held
    f0 = next(features)
    y0 = first_labels(first, objects, short_side=short_side, cells=tuple(f0.shape[1:])).to(device)
    size, resized_size = frames[0].shape[1::-1], small[0].shape[1::-1]
    labels = propagate(
        itertools.chain([f0], features),
        y0,
        context=context,
        topk=topk,
        temperature=temperature,
        radius=radius_px / STRIDE,
    )
    return [predicted_ids(y, objects, resized_size=resized_size, size=size) for y in labels]


# --- scoring --------------------------------------------------------------------------------


def region_similarity(truth: np.ndarray, predicted: np.ndarray, void: np.ndarray | None = None) -> float:
    """J: |M n G| / |M u G| of bool masks over the pixels that are not void; 1 when both are empty."""
    scored = ~void if void is not None else np.ones_like(truth)
    union = np.count_nonzero((truth | predicted) & scored)
    return 1.0 if union == 0 else np.count_nonzero(truth & predicted & scored) / union


def boundary(mask: np.ndarray) -> np.ndarray:
    """The mask's boundary pixels: those of the mask with a 4-neighbour outside it (the image's
    edge is not a boundary: an object the frame cuts has none there)."""
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
    inner = cv2.erode(mask.astype(np.uint8), cross, borderType=cv2.BORDER_CONSTANT, borderValue=1)
    return mask & ~inner.astype(bool)


def disk(radius: int) -> np.ndarray:
    """A disk structuring element: the offsets (dx, dy) with dx^2 + dy^2 <= radius^2."""
    y, x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    return (x**2 + y**2 <= radius**2).astype(np.uint8)


def boundary_tolerance(shape: tuple[int, int]) -> int:
    """d: the distance (px) within which boundaries match, ceil(0.008 x the image diagonal)."""
    return math.ceil(BOUNDARY_THRESHOLD * math.hypot(*shape))


def boundary_measure(truth: np.ndarray, predicted: np.ndarray, void: np.ndarray | None = None) -> float:
    """F: the F-measure of the boundary pixels of bool masks matched within ``boundary_tolerance``."""
    if void is not None:
        truth, predicted = truth & ~void, predicted & ~void
    edge_truth, edge_predicted = boundary(truth), boundary(predicted)
    n_truth, n_predicted = np.count_nonzero(edge_truth), np.count_nonzero(edge_predicted)
    if n_truth == 0 or n_predicted == 0:
        return float(n_truth == n_predicted)
    kernel = disk(boundary_tolerance(truth.shape))
    near_truth = cv2.dilate(edge_truth.astype(np.uint8), kernel).astype(bool)
    near_predicted = cv2.dilate(edge_predicted.astype(np.uint8), kernel).astype(bool)
    precision = np.count_nonzero(edge_predicted & near_truth) / n_predicted
    recall = np.count_nonzero(edge_truth & near_predicted) / n_truth
    return 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)


def score_video(truth: list[np.ndarray], predicted: list[np.ndarray], objects: list[int]) -> list[dict]:
    """Per object, J and F averaged over the scored frames: all but the first and the last.
    ``truth`` holds every frame's ids, ``predicted`` those of frames 1, 2, ...."""
    scored = list(zip(truth[1:-1], predicted[:-1]))
    rows = []
    for o in objects:
        j = [region_similarity(t == o, p == o, t == VOID) for t, p in scored]
        f = [boundary_measure(t == o, p == o, t == VOID) for t, p in scored]
        rows.append({"object": o, "J": float(np.mean(j)), "F": float(np.mean(f))})
    return rows


def summary(videos: list[dict]) -> dict:
    """J_mean, F_mean: the mean over every object of every video; JF_mean their mean; n_objects."""
    objects = [o for v in videos for o in v["objects"]]
    j, f = (float(np.mean([o[k] for o in objects])) for k in ("J", "F"))
    return {"J_mean": j, "F_mean": f, "JF_mean": (j + f) / 2, "n_objects": len(objects), "videos": videos}


def evaluate(
    net: torch.nn.Module,
    root: str | Path,
    *,
    short_side: int,
    context: int,
    topk: int,
    temperature: float,
    radius_px: float,
    device: torch.device,
) -> dict:
    """A model's scores on the val videos under ``root`` (DAVIS-2017's layout): ``summary``."""
    videos, rows = davis_videos(root), []
    lines = logs.Progress(log, "propagation", len(videos))
    net = net.eval().to(device)
    for i, video in enumerate(videos, 1):
        frames, truth = load(video)
        objects = first_frame_objects(truth[0], video.annotations[0])
        predicted = segment(
            net,
            frames,
            truth[0],
            objects,
            short_side=short_side,
            context=context,
            topk=topk,
            temperature=temperature,
            radius_px=radius_px,
            device=device,
        )
        per_object = score_video(truth, predicted, objects)
        rows.append({"video": video.name, "frames": len(frames), "objects": per_object})
        j, f = (np.mean([o[k] for o in per_object]) for k in ("J", "F"))
        lines.update(i, item=video.name, detail=f"{len(frames)} frames, {len(objects)} objects, J {j:.3f}, F {f:.3f}")
    return summary(rows)


def table(results: list[dict], demo: bool) -> dict:
    """``results/propagation.json``: one row per model, the MoCo-v2 baseline first."""
    name = TITLE + (" -- DEMO: videos demo* are the synthetic world's, not DAVIS" if demo else "")
    keys = ("method", "model", "dataset", "J_mean", "F_mean", "JF_mean", "n_objects")
    return {"benchmark": name, "demo": demo, "rows": [{k: r[k] for k in keys} for r in ordered(results)]}


# --- demo videos ----------------------------------------------------------------------------


def demo_name(index: int) -> str:
    return f"demo{index:02d}"


def demo_clip(
    seed: int, index: int, *, width: int, height: int, world: synthetic.World = synthetic.World()
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Demo video ``index``: RGB frames and object ids of a fresh scene of ``world`` (its own
    namespace, never a pretraining video) over DEMO_SECONDS at DEMO_FPS from t = 0, when every
    object's centre is inside the frame (``synthetic.make_scene``). The objects are those
    covering MIN_DEMO_SHARE of the first frame, numbered 1, 2, ... far to near; the others are
    background."""
    scene = synthetic.make_scene(seeding.rng(seed, "demo-propagation", index), width, height, world)
    renders = [scene.render(i / DEMO_FPS) for i in range(round(DEMO_SECONDS * DEMO_FPS))]
    counts = np.bincount(renders[0]["instances"].ravel(), minlength=256)
    kept = [k for k in range(1, 256) if counts[k] >= MIN_DEMO_SHARE * width * height]
    renumber = np.zeros(256, np.uint8)
    renumber[kept] = np.arange(1, len(kept) + 1)
    return [r["rgb"] for r in renders], [renumber[r["instances"]] for r in renders]  # lookup table: instance -> id


def palette() -> list[int]:
    """The PASCAL VOC colour map DAVIS's PNGs use: label l's bits spread over R, G, B from the top bit down."""
    colours = []
    for label in range(256):
        r = g = b = 0
        for shift in range(8):
            r |= ((label >> (3 * shift)) & 1) << (7 - shift)
            g |= ((label >> (3 * shift + 1)) & 1) << (7 - shift)
            b |= ((label >> (3 * shift + 2)) & 1) << (7 - shift)
        colours += [r, g, b]
    return colours


def write_annotation(path: Path, ids: np.ndarray) -> None:
    """Object ids (H, W) uint8 as a palette PNG (values = ids), atomically."""
    image = Image.frombytes("P", ids.shape[::-1], np.ascontiguousarray(ids, np.uint8).tobytes())
    image.putpalette(palette())
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")


def write_demo_videos(
    root: str | Path, *, seed: int, count: int, short_side: int, world: synthetic.World = synthetic.World()
) -> None:
    """``count`` demo videos under ``root`` in DAVIS-2017's layout (JPEG frames, palette PNG
    annotations, ``ImageSets/2017/val.txt``), so that the benchmark reads them as it reads DAVIS."""
    root, (width, height) = Path(root), demo_size(short_side)
    lines = logs.Progress(log, "demo video", count)
    for i in range(count):
        name = demo_name(i)
        frames, ids = demo_clip(seed, i, width=width, height=height, world=world)
        for t, (rgb, mask) in enumerate(zip(frames, ids)):
            write_image(root / "JPEGImages" / "480p" / name / f"{t:05d}.jpg", rgb)
            write_annotation(root / "Annotations" / "480p" / name / f"{t:05d}.png", mask)
        lines.update(i + 1, item=name, detail=f"{len(frames)} frames, {int(ids[0].max())} objects")
    with atomic_path(root / "ImageSets" / "2017" / "val.txt") as tmp:
        tmp.write_text("".join(f"{demo_name(i)}\n" for i in range(count)))
