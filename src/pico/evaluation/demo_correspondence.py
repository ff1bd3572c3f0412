"""The demo's correspondence pairs (beyond the paper; docs/correspondence.md): pairs of frames
of fresh scenes of the synthetic world, never used in pretraining, with their true motion, as
files that ``pico.evaluation.correspondence`` scores (rule ``demo_correspondence``).

Each scene is drawn with objects in view (``demo_data.in_view``) and rendered at one time t and
at t + gap frames for several gaps; a point is labelled only where it stays visible
(``visible_flow``), and image a's object pixels are kept as a mask, so that a pair is scored per
region: on the points that lie on an object, on the background's, and on all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pico import seeding
from pico.config import DEMO_FPS
from pico.data import synthetic
from pico.evaluation import demo_data, groundtruth
from pico.evaluation.correspondence import Pair


def visible_flow(now: dict, later: dict) -> np.ndarray:
    """The true flow of ``now`` (a ``Scene.render`` with ``dt``) where its point stays visible:
    inside the image at t + dt, on the object (or background) it was on at t; NaN elsewhere."""
    flow, instances = now["flow"], now["instances"]
    h, w = instances.shape
    y, x = np.mgrid[0:h, 0:w]
    tx, ty = x + flow[0], y + flow[1]
    inside = (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)
    col, row = np.clip(np.round(tx), 0, w - 1).astype(int), np.clip(np.round(ty), 0, h - 1).astype(int)
    seen = later["instances"][row, col] == instances  # the destination pixel shows the same object
    return np.where(inside & seen, flow, np.nan).astype(np.float32)


def demo_pair_at(scene: synthetic.Scene, t: float, gap: int, name: str) -> Pair:
    """The pair of ``scene`` at t and t + ``gap`` frames at DEMO_FPS: its visible true motion
    (``visible_flow``) and which pixels of image a show an object."""
    dt = gap / DEMO_FPS
    now, later = scene.render(t, dt), scene.render(t + dt)
    return Pair(name, now["rgb"], later["rgb"], visible_flow(now, later), now["instances"] > 0, gap)


def labelled_object_share(pair: Pair) -> float:
    """The share of image a's pixels that show an object and have a known truth (still
    visible in image b): the object points a pair can score, as a share of the frame."""
    return float((pair.objects & np.isfinite(pair.flow[0])).mean())


def demo_pairs(
    seed: int, index: int, *, gaps: list[int], width: int, height: int, world: synthetic.World = synthetic.World()
) -> list[Pair]:
    """Demo pairs ``index``, one per gap of ``gaps`` (frames at DEMO_FPS), of one fresh scene of
    ``world`` (its own id namespace, never a pretraining video) at one time t: image a at t,
    image b at t + gap. Scene and t are drawn with objects in view (``demo_data.in_view``): at
    every gap, the object pixels of image a still visible in image b
    (``labelled_object_share``) cover at least ``demo_data.MIN_OBJECT_SHARE`` of the frame."""

    def pairs_at(scene: synthetic.Scene, t: float) -> tuple[float, list[Pair]]:
        pairs = [demo_pair_at(scene, t, gap, demo_name(index, gap)) for gap in gaps]
        return min(labelled_object_share(p) for p in pairs), pairs

    return demo_data.in_view(seeding.rng(seed, "demo-correspondence", index), width, height, world, pairs_at)


def demo_name(index: int, gap: int) -> str:
    """Demo pair ``index`` at ``gap`` frames: ``demo{index:02d}_gap{gap:02d}``."""
    return f"demo{index:02d}_gap{gap:02d}"


def demo_spec(root: str | Path, index: int, gap: int) -> dict:
    """The spec of demo pair ``index`` at ``gap`` frames as ``write_demo_pairs`` writes it
    under ``root``: its images, truth, the object mask of image a, and the gap."""
    name = demo_name(index, gap)
    return {
        "name": name,
        "image_a": f"{root}/{name}_a.png",
        "image_b": f"{root}/{name}_b.png",
        "flow": f"{root}/{name}.flo",
        "objects": f"{root}/{name}_objects.png",
        "gap": gap,
    }


def demo_specs(root: str | Path, count: int, gaps: list[int]) -> list[dict]:
    """The specs of every demo pair under ``root``: ``count`` scenes, each at every gap of ``gaps``."""
    return [demo_spec(root, i, gap) for i in range(count) for gap in gaps]


def write_demo_pairs(
    root: str | Path,
    *,
    seed: int,
    count: int,
    gaps: list[int],
    short_side: int,
    world: synthetic.World = synthetic.World(),
) -> None:
    """``count`` scenes of ``world`` at every gap of ``gaps`` (``demo_pairs``) as files under
    ``root``: PNG images, Middlebury .flo truth and a PNG mask of image a's object pixels."""
    Path(root).mkdir(parents=True, exist_ok=True)  # the folder is the output, even with no pairs
    width, height = demo_data.demo_size(short_side)
    for i in range(count):
        for pair in demo_pairs(seed, i, gaps=gaps, width=width, height=height, world=world):
            spec = demo_spec(root, i, pair.gap)
            demo_data.write_image(Path(spec["image_a"]), pair.image_a)
            demo_data.write_image(Path(spec["image_b"]), pair.image_b)
            groundtruth.write_flo(pair.flow, spec["flow"])
            demo_data.write_mask(Path(spec["objects"]), pair.objects)
