"""Dense correspondence of frozen features (beyond the paper; docs/correspondence.md).

PiCO trains a pixel's embedding to match the same physical point in another frame (Eq. 1), so
the signature of what it learns is correspondence itself. For a pair of images with true
correspondences (``pico.evaluation.groundtruth``: stereo disparity or optical flow, a -> b), every scored
point p of image a is matched to the pixel of image b whose feature is most similar,

    m(p) = argmax_q  cos(f_a(p), f_b(q)),   cos(u, v) = u.v / (|u| |v|),

with f a model's frozen dense output (1/4 resolution) read at image positions by bilinear
interpolation, and scored against the truth t(p) at image resolution:

    pck_K = |{p : |m(p) - t(p)| <= K}| / n   (K = 1, 2, 4, 8 px),   epe = sum_p |m(p) - t(p)| / n.

At image resolution the argmax runs over every pixel of the bilinearly upsampled map
(``upsample``, computed without holding it); ``soft_argmax`` (around the best cell) and
``nearest`` (the best cell's centre) are the alternatives measured in the docs.

Pairs are resized to the short side the models see in pretraining before matching (truth
scaled with them); the demo's pairs (``pico.evaluation.demo_correspondence``) come from the
synthetic world's true motion, on scenes never used in pretraining, drawn with objects in view
at several temporal gaps, and are scored per region: on the points of image a that lie on an
object, on the background's, and on all.

Two reference rows need no pretraining: the zero-motion guess m(p) = p (``zero_motion``), the
floor, and the frozen encoder's own stride-4 features (``registry.encoder_c2``), what every
decoder starts from.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from pico import seeding
from pico.evaluation import groundtruth
from pico.evaluation.probe import normalized_tensor
from pico.evaluation.readers import DatasetError, read_image
from pico.evaluation.registry import ordered
from pico.learn.model import STRIDE

log = logging.getLogger(__name__)
THRESHOLDS = (1, 2, 4, 8)  # px, pck1..pck8
TITLE = "Dense correspondence of frozen features, nearest neighbour by cosine (beyond the paper)"
CHUNK = 1 << 24  # floats of similarities held at once while matching
#: The regions a pair is scored on: every scored point; with an object mask (the demo pairs)
#: also the points on an object of image a and the rest.
REGIONS = ("all", "object", "background")
#: The reference rows' methods, first in the table: the zero-motion guess, the frozen
#: encoder's own stride-4 features, the MoCo-v2 baseline.
REFERENCES = ("zero_motion", "encoder_c2", "moco_v2")


@dataclass(frozen=True)
class Pair:
    """Two RGB images (H, W, 3) uint8 and the flow a -> b (2, H, W) float32, NaN = unknown; a
    demo pair also has ``objects``, which pixels of image a show an object (H, W) bool, and its
    ``gap`` in frames at DEMO_FPS."""

    name: str
    image_a: np.ndarray
    image_b: np.ndarray
    flow: np.ndarray
    objects: np.ndarray | None = None
    gap: int | None = None


def load_pair(spec: dict) -> Pair:
    """A pair's files: ``image_a``, ``image_b``, its ``flow`` or ``disparity``, and for a demo
    pair (``demo_correspondence.demo_specs``) its ``objects`` mask (a PNG, object where > 127) and ``gap``."""
    image_a, image_b = (read_image(Path(spec[k]), cv2.IMREAD_COLOR)[:, :, ::-1].copy() for k in ("image_a", "image_b"))
    flow = groundtruth.read_truth(spec)
    truth = spec.get("flow") or spec.get("disparity")
    objects = read_image(Path(spec["objects"]), cv2.IMREAD_GRAYSCALE) > 127 if "objects" in spec else None
    if (
        image_a.shape != image_b.shape
        or flow.shape[1:] != image_a.shape[:2]
        or (objects is not None and objects.shape != image_a.shape[:2])
    ):
        raise DatasetError(
            f"{truth}: sizes disagree: image_a {image_a.shape[1::-1]}, image_b {image_b.shape[1::-1]}, "
            f"truth {flow.shape[:0:-1]}{'' if objects is None else f', objects {objects.shape[::-1]}'} "
            "(width, height); a pair's images and truth must be the same size"
        )
    return Pair(spec["name"], image_a, image_b, flow, objects, spec.get("gap"))


def resized(pair: Pair, short_side: int) -> Pair:
    """The pair with its short side ``short_side`` (area-averaged when shrinking). Pixel x' of
    the result is x = (x' + 1/2) / s - 1/2 of the original, and its truth is the original's at
    the nearest pixel, times s: t'(x') = x' + s u(round(x)); its object mask is the original's
    at the nearest pixel too."""
    h, w = pair.flow.shape[1:]
    scale = short_side / min(h, w)
    if scale == 1:
        return pair
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    sx, sy = size[0] / w, size[1] / h
    rows = np.clip(np.round((np.arange(size[1]) + 0.5) / sy - 0.5), 0, h - 1).astype(int)
    cols = np.clip(np.round((np.arange(size[0]) + 0.5) / sx - 0.5), 0, w - 1).astype(int)
    flow = (
        pair.flow[:, rows][:, :, cols] * np.array([sx, sy], np.float32)[:, None, None]
    )  # nearest-pixel truth, rescaled
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    image_a, image_b = (cv2.resize(im, size, interpolation=interpolation) for im in (pair.image_a, pair.image_b))
    objects = None if pair.objects is None else pair.objects[rows][:, cols]
    return replace(pair, image_a=image_a, image_b=image_b, flow=flow.astype(np.float32), objects=objects)


def labelled_points(pair: Pair, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` pixels of image a (uniformly drawn) whose truth is known and lands
    inside image b: positions (n, 2) in a and their true positions (n, 2) in b."""
    h, w = pair.flow.shape[1:]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    tx, ty = x + pair.flow[0], y + pair.flow[1]
    known = np.flatnonzero((tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1))  # NaN compares False: unknown
    keep = np.sort(rng.choice(known, size=min(count, known.size), replace=False))
    points = np.stack([x.ravel()[keep], y.ravel()[keep]], 1)
    return points, np.stack([tx.ravel()[keep], ty.ravel()[keep]], 1)


def scored_points(pair: Pair, points: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The pair's ``labelled_points`` drawn by (seed, pair name): the same for every model and
    reference row. A pair without any is an error naming it."""
    a, truth = labelled_points(pair, points, seeding.rng(seed, "correspondence", pair.name))
    if not len(a):
        raise DatasetError(f"pair {pair.name}: no pixel of image_a has a known correspondence inside image_b")
    return a, truth


def regions(pair: Pair, points: np.ndarray) -> dict[str, np.ndarray]:
    """Which of the scored ``points`` (n, 2), pixel positions of image a, each region holds
    (n,) bool: ``all`` of them; where the pair has an object mask also ``object`` (the point's
    pixel shows an object) and ``background`` (it does not)."""
    every = np.ones(len(points), bool)
    if pair.objects is None:
        return {"all": every}
    on_object = pair.objects[points[:, 1].astype(int), points[:, 0].astype(int)]
    return {"all": every, "object": on_object, "background": ~on_object}


def region_scores(pair: Pair, points: np.ndarray, matched: np.ndarray, truth: np.ndarray) -> list[dict]:
    """The pair's ``scores`` per region (``regions``): one entry {pair, gap, region, pck1,
    pck2, pck4, pck8, epe, n} each; a region without a scored point has no entry."""
    return [
        {"pair": pair.name, "gap": pair.gap, "region": region, **scores(matched[inside], truth[inside])}
        for region, inside in regions(pair, points).items()
        if inside.any()
    ]


@torch.no_grad()
def dense_features(net: torch.nn.Module, image: np.ndarray, device: torch.device) -> torch.Tensor:
    """The frozen network's L2-normalised dense output (C, h, w) at 1/4 of ``image``."""
    return F.normalize(net(normalized_tensor(image)[None].to(device))[0], dim=0)


def sample(features: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Features (n, C) at image positions (n, 2), bilinear, L2-normalised again. Pixel x (its
    centre x + 1/2) is at (x + 1/2) / STRIDE of the map's [0, w] extent, as ``upsampled`` reads
    it (align_corners=False)."""
    _, h, w = features.shape
    grid = (points + 0.5) / (STRIDE * points.new_tensor([w, h])) * 2 - 1  # pixels -> [-1, 1] across the map
    out = F.grid_sample(features[None], grid[None, None], mode="bilinear", padding_mode="border", align_corners=False)
    return F.normalize(out[0, :, 0].T, dim=1)


def cell_centres(cells: torch.Tensor) -> torch.Tensor:
    """The image position of feature cells (..., 2) (column, row): pixel STRIDE c + (STRIDE - 1) / 2."""
    return cells * STRIDE + (STRIDE - 1) / 2


def best_cells(queries: torch.Tensor, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each query's most similar cell (n, 2) (column, row) and the similarities (n, h, w)."""
    channels, h, w = features.shape
    similarity = (queries @ features.reshape(channels, -1)).reshape(-1, h, w)  # cosines: both sides are unit vectors
    best = similarity.flatten(1).argmax(1)
    return torch.stack([best % w, best // w], 1), similarity


def upsampled(maps: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps (n, h, w) bilinearly upsampled x STRIDE and cropped to ``size`` (width, height), as
    the linear probe upsamples: pixel x reads the map at x / STRIDE (``sample``'s convention)."""
    up = F.interpolate(maps[:, None], scale_factor=STRIDE, mode="bilinear", align_corners=False)[:, 0]
    return up[:, : size[1], : size[0]]


def upsampled_norm(features: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """|U f_b| (H, W): the length of the bilinearly upsampled feature at every pixel, summed
    over channel chunks (U f_b itself, C x H x W, is never held)."""
    per_chunk = max(1, CHUNK // (STRIDE**2 * features[0].numel()))
    return sum((upsampled(c, size) ** 2).sum(0) for c in features.split(per_chunk)).sqrt()


def upsample_argmax(similarity: torch.Tensor, norm: torch.Tensor) -> torch.Tensor:
    """argmax_q cos(query, U f_b(q)) over every pixel q of image b, f_b bilinearly upsampled (U).
    U is linear and the query a unit vector, so cos(query, U f_b(q)) = U(query . f_b)(q) / |U f_b(q)|:
    the cell similarities upsampled, divided by the upsampled features' length."""
    height, width = norm.shape
    best = (upsampled(similarity, (width, height)) / norm).flatten(1).argmax(1)
    return torch.stack([best % width, best // width], 1).float()


def soft_argmax(similarity: torch.Tensor, cells: torch.Tensor, temperature: float) -> torch.Tensor:
    """The softmax-weighted mean position of the 3 x 3 cells around the best one,
    sum_c w_c x_c with w_c = exp(cos_c / T) / sum_c' exp(cos_c' / T) (cells off the map weigh 0)."""
    _, h, w = similarity.shape
    offsets = torch.tensor([(dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)], device=cells.device)
    around = cells[:, None, :] + offsets  # (n, 9, 2) (column, row)
    on_map = (around[..., 0] >= 0) & (around[..., 0] < w) & (around[..., 1] >= 0) & (around[..., 1] < h)
    index = around[..., 1].clamp(0, h - 1) * w + around[..., 0].clamp(0, w - 1)
    logits = similarity.flatten(1).gather(1, index).masked_fill(~on_map, -torch.inf) / temperature
    return (logits.softmax(1)[..., None] * cell_centres(around.float())).sum(1)


def match(
    queries: torch.Tensor, features: torch.Tensor, size: tuple[int, int], *, refinement: str, temperature: float | None
) -> torch.Tensor:
    """m(p) for each query (n, C): its image position (n, 2) in image b of ``size`` (width,
    height), whose normalised features are ``features`` (C, h, w); queries in chunks.
    ``refinement``: upsample, soft_argmax or nearest, the config's
    ``benchmarks.correspondence.refinement`` (the schema lists them and checks it)."""
    _, h, w = features.shape
    norm = upsampled_norm(features, size) if refinement == "upsample" else None
    out = []
    for chunk in queries.split(max(1, CHUNK // (STRIDE**2 * h * w))):
        cells, similarity = best_cells(chunk, features)
        if refinement == "upsample":
            out.append(upsample_argmax(similarity, norm))
        elif refinement == "soft_argmax":
            out.append(soft_argmax(similarity, cells, temperature))
        else:
            out.append(cell_centres(cells.float()))
    return torch.cat(out)


def scores(matched: np.ndarray, truth: np.ndarray) -> dict:
    """pck_K = share of |m(p) - t(p)| <= K px (K in THRESHOLDS), epe = mean |m(p) - t(p)|, n."""
    error = np.hypot(*(matched - truth).T)
    return {
        **{f"pck{k}": float((error <= k).mean()) for k in THRESHOLDS},
        "epe": float(error.mean()),
        "n": int(error.size),
    }


def score_pair(
    net: torch.nn.Module,
    pair: Pair,
    *,
    points: int,
    refinement: str,
    temperature: float | None,
    seed: int,
    device: torch.device,
) -> list[dict]:
    """A model's scores on one pair, per region (``region_scores``), on its ``scored_points``."""
    a, truth = scored_points(pair, points, seed)
    queries = sample(dense_features(net, pair.image_a, device), torch.from_numpy(a).to(device))
    features_b = dense_features(net, pair.image_b, device)
    size = pair.image_b.shape[1::-1]
    matched = match(queries, features_b, size, refinement=refinement, temperature=temperature)
    return region_scores(pair, a, matched.cpu().numpy(), truth)


def evaluate(
    net: torch.nn.Module,
    specs: list[dict],
    *,
    short_side: int,
    points: int,
    refinement: str,
    temperature: float | None,
    seed: int,
    device: torch.device,
) -> list[dict]:
    """A model's entries (``region_scores``) on every pair of ``specs``, each resized to ``short_side``."""
    net, rows = net.eval().to(device), []
    for spec in specs:
        entries = score_pair(
            net,
            resized(load_pair(spec), short_side),
            points=points,
            refinement=refinement,
            temperature=temperature,
            seed=seed,
            device=device,
        )
        log.info("%s", "\n".join(map(str, entries)))
        rows += entries
    return rows


def zero_motion(specs: list[dict], *, short_side: int, points: int, seed: int) -> list[dict]:
    """The zero-motion guess's entries on every pair of ``specs``: m(p) = p, each point matched
    to itself, scored on the points the models are scored on. Its error is the true motion
    |t(p) - p|, so it is the floor a feature must beat: a pair whose motion is a slow pan
    scores high without any matching."""
    rows = []
    for spec in specs:
        pair = resized(load_pair(spec), short_side)
        a, truth = scored_points(pair, points, seed)
        rows += region_scores(pair, a, a, truth)
    return rows


ANY_GAP = "any"  # pck over every entry of a region, configured and demo pairs at every gap


def pck(result: dict, *, region: str, gap: int | str | None, pixels: int = 4) -> float:
    """A per-model correspondence result's share of points within ``pixels`` px over its
    entries of ``region`` (one of REGIONS) and ``gap`` (frames; None: the configured, non-demo
    pairs; ANY_GAP: all of them): each entry's pck{pixels} weighted by its points n,
    sum_e n_e pck_e / sum_e n_e."""
    entries = [e for e in result["pairs"] if e["region"] == region and gap in (ANY_GAP, e["gap"])]
    total = sum(e["n"] for e in entries)
    if not total:
        raise ValueError(f"correspondence result of {result.get('model')}: no scored {region} points at gap {gap}")
    return sum(e[f"pck{pixels}"] * e["n"] for e in entries) / total


def table_order(results: list[dict]) -> list[dict]:
    """Per-model results in the table's order: the reference rows (REFERENCES: zero motion,
    the frozen encoder, MoCo-v2), then the pretrained models in the probe tables' order."""
    rank = {method: k for k, method in enumerate(REFERENCES)}
    return sorted(ordered(results), key=lambda r: rank.get(r["method"], len(REFERENCES)))


def table(results: list[dict], demo: bool) -> dict:
    """``results/correspondence.json``: one row per model x entry of its result (pair, gap,
    region), the reference rows first (``table_order``)."""
    name = TITLE + (" -- DEMO: pairs demo* are the synthetic world's, not real images" if demo else "")
    keys = ("pair", "gap", "region", "pck1", "pck2", "pck4", "pck8", "epe", "n")
    rows = [
        {"method": r["method"], "model": r["model"], **{k: p[k] for k in keys}}
        for r in table_order(results)
        for p in r["pairs"]
    ]
    return {"benchmark": name, "demo": demo, "rows": rows}
