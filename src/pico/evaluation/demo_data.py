"""The demo's benchmark data: fresh scenes of the synthetic world (never the pretraining
videos) written in the official layouts that ``pico.evaluation.readers`` reads: COCO 2017
panoptic and instances (the linear probe, Mask R-CNN) and NYU-depth v2 as ViRB releases it.

Every demo image (and every demo correspondence pair, ``pico.evaluation.demo_correspondence``) is
drawn with objects in view (``in_view``): in a fast world a scene's objects leave its frame
within a second or two, and a frame of background alone measures nothing about objects.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np

from pico import seeding
from pico.data import synthetic
from pico.store.files import atomic_path, write_json

log = logging.getLogger(__name__)
T = TypeVar("T")

#: The share of a demo frame's pixels its objects must cover for the frame to be drawn.
MIN_OBJECT_SHARE = 0.1
#: Times drawn per scene, and scenes drawn, before ``in_view`` settles for its best draw.
TIMES_PER_SCENE, SCENES = 16, 8
#: Demo frames are drawn at t ~ U(0, DURATION) s of a scene.
DURATION = 3.0


def in_view(
    rng: np.random.Generator,
    width: int,
    height: int,
    world: synthetic.World,
    view: Callable[[synthetic.Scene, float], tuple[float, T]],
) -> T:
    """What ``view(scene, t)`` makes of the first draw whose object share (its first value) is
    at least MIN_OBJECT_SHARE: scenes of ``world`` drawn from ``rng`` in turn, each with up to
    TIMES_PER_SCENE times t ~ U(0, DURATION) s, up to SCENES scenes. The first draw is the
    scene and time drawn before this rule existed. If no draw qualifies, the one of the largest
    share (logged)."""
    best = (-1.0, None)
    for _ in range(SCENES):
        scene = synthetic.make_scene(rng, width, height, world)
        for _ in range(TIMES_PER_SCENE):
            share, made = view(scene, float(rng.uniform(0, DURATION)))
            if share >= MIN_OBJECT_SHARE:
                return made
            best = max(best, (share, made), key=lambda b: b[0])
    log.warning(
        "no draw has objects on %.0f %% of its frame; the best has %.1f %%", 100 * MIN_OBJECT_SHARE, 100 * best[0]
    )
    return best[1]


def demo_size(short_side: int) -> tuple[int, int]:
    """(width, height) a demo correspondence pair or propagation video is rendered at: 4:3 at
    twice the models' short side, so that it is resized down to what the models see, as the
    demo's 320 x 240 videos are above their 128-pixel frames and DAVIS's 480p frames above the
    short side they are resized to."""
    return 2 * round(4 * short_side / 3), 2 * short_side


def object_share(frame: dict) -> float:
    """The share of a rendered frame's pixels that show an object (instance > 0)."""
    return float((frame["instances"] > 0).mean())


def _demo_frames(seed: int, split: str, count: int, width: int, height: int, world: synthetic.World):
    """(name, frame) of fresh synthetic scenes of ``world`` (never the pretraining videos), one
    per image, each with objects on at least MIN_OBJECT_SHARE of it (``in_view``)."""

    def frame_at(scene: synthetic.Scene, t: float) -> tuple[float, dict]:
        frame = scene.render(t)
        return object_share(frame), frame

    for i in range(count):
        rng = seeding.rng(seed, "demo-benchmark", split, i)
        yield f"{split}{i:06d}", in_view(rng, width, height, world, frame_at)


def write_demo_coco(
    root: str | Path,
    seed: int,
    n_train: int,
    n_val: int,
    width: int,
    height: int,
    *,
    world: synthetic.World = synthetic.World(),
) -> None:
    """The demo's COCO: frames of the synthetic world in COCO's official layout, with panoptic
    annotations (a segment per visible object, of its class; sky and ground) for the linear
    probe and instance annotations (RLE masks, boxes) of the objects for Mask R-CNN.

    The panoptic categories are all ``isthing`` 0: the paper's panoptic -> semantic rule
    (``pico.evaluation.panoptic``: things share one label, each stuff category its own) then
    keeps the world's four object classes apart, so the probe must tell a disc from a ring.
    The instances file lists the same four categories (ids 1-4, same names) for Mask R-CNN."""
    root = Path(root)
    categories = [
        {"id": c, "name": synthetic.CLASSES[c], "isthing": 0, "supercategory": "demo"}
        for c in range(1, len(synthetic.CLASSES))
    ]
    objects = [{"id": c, "name": synthetic.CLASSES[c], "supercategory": "demo"} for c in synthetic.THINGS]
    for split, count in (("train", n_train), ("val", n_val)):
        images, annotations, instances = [], [], []
        for i, (name, frame) in enumerate(_demo_frames(seed, split, count, width, height, world)):
            ids, segments = _panoptic_segments(frame)
            write_image(root / f"{split}2017" / f"{name}.jpg", frame["rgb"])
            write_image(
                root / "annotations" / f"panoptic_{split}2017" / f"{name}.png",
                np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8),
            )
            images.append({"id": i, "file_name": f"{name}.jpg", "width": width, "height": height})
            annotations.append({"image_id": i, "file_name": f"{name}.png", "segments_info": segments})
            instances += [
                {**a, "id": len(instances) + k + 1, "image_id": i}
                for k, a in enumerate(_instance_annotations(ids, segments))
            ]
        spec = {"images": images, "annotations": annotations, "categories": categories}
        things = {"images": images, "annotations": instances, "categories": objects}
        for kind, content in (("panoptic", spec), ("instances", things)):
            write_json(content, root / "annotations" / f"{kind}_{split}2017.json", indent=None)


def _instance_annotations(ids: np.ndarray, segments: list[dict]) -> list[dict]:
    """COCO instance annotations (RLE mask, xywh box, area) of the "thing" segments."""
    from pycocotools import mask as rle

    out = []
    for seg in segments:
        if seg["category_id"] not in synthetic.THINGS:
            continue
        encoded = rle.encode(np.asfortranarray(ids == seg["id"], dtype=np.uint8))
        out.append(
            {
                "category_id": seg["category_id"],
                "iscrowd": 0,
                "area": int(rle.area(encoded)),
                "bbox": [float(v) for v in rle.toBbox(encoded)],
                "segmentation": {"size": encoded["size"], "counts": encoded["counts"].decode()},
            }
        )
    return out


def write_demo_nyu(
    root: str | Path,
    seed: int,
    n_train: int,
    n_test: int,
    width: int,
    height: int,
    *,
    world: synthetic.World = synthetic.World(),
) -> None:
    """The demo's NYU-depth v2 in the ViRB release's layout (see ``NyuDepth``): frames of the
    synthetic world and their depth as 16-bit PNGs in millimetres (``depth_scale`` 0.001)."""
    root = Path(root)
    for split, count in (("train", n_train), ("test", n_test)):
        for name, frame in _demo_frames(seed, f"nyu-{split}", count, width, height, world):
            write_image(root / split / "images" / f"{name}.png", frame["rgb"])
            with atomic_path(root / split / "depths" / f"{name}.png") as tmp:
                if not cv2.imwrite(str(tmp), np.round(frame["depth"] * 1000).astype(np.uint16)):
                    raise OSError(f"could not write {root / split / 'depths' / name}.png")


def _panoptic_segments(frame: dict) -> tuple[np.ndarray, list[dict]]:
    """Segment ids (H, W) and segments_info: one segment per visible object, sky and ground."""
    ids = np.zeros(frame["labels"].shape, np.int64)
    segments = []
    for k in np.unique(frame["instances"]):
        mask = frame["instances"] == k if k else np.zeros_like(frame["instances"], bool)
        if k:
            segments.append(
                {"id": int(k), "category_id": int(frame["labels"][mask][0]), "area": int(mask.sum()), "iscrowd": 0}
            )
            ids[mask] = k
    for stuff, seg_id in ((synthetic.SKY, 1000), (synthetic.GROUND, 1001)):
        mask = (frame["instances"] == 0) & (frame["labels"] == stuff)
        if mask.any():
            segments.append({"id": seg_id, "category_id": stuff, "area": int(mask.sum()), "iscrowd": 0})
            ids[mask] = seg_id
    return ids, segments


def write_image(path: Path, rgb: np.ndarray) -> None:
    """An RGB image, atomically: JPEG at quality 95 for ``.jpg``, else lossless (PNG)."""
    with atomic_path(path) as tmp:
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []  # PNGs are lossless
        if not cv2.imwrite(str(tmp), rgb[:, :, ::-1], params):
            raise OSError(f"could not write {path}")


def write_mask(path: Path, mask: np.ndarray) -> None:
    """A boolean mask (H, W) as a lossless 8-bit PNG, atomically: 255 where True, 0 elsewhere."""
    with atomic_path(path) as tmp:
        if not cv2.imwrite(str(tmp), np.where(mask, 255, 0).astype(np.uint8)):
            raise OSError(f"could not write {path}")


def rule_arguments(*, seed: int, demo: dict, world: dict) -> tuple[tuple, dict]:
    """(args, kwargs) after the output folder for ``write_demo_coco`` / ``write_demo_nyu`` from
    the demo rules' params: the config's ``seed``, ``benchmarks.demo`` (``demo``: train and
    val/test counts, image size) and ``synthetic.world`` (``world``)."""
    args = (seed, demo["train"], demo["val"], demo["width"], demo["height"])
    return args, {"world": synthetic.World.from_settings(world)}


#: The writer of each demo benchmark's data, by the rules' ``kind`` param.
WRITERS = {"coco": write_demo_coco, "nyu": write_demo_nyu}
