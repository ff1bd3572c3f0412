"""The demo's benchmark data: fresh scenes of the synthetic world (never the pretraining
videos) written in the official layouts that ``pico.evaluation.readers`` reads: COCO 2017
panoptic and instances (the linear probe, Mask R-CNN) and NYU-depth v2 as ViRB releases it."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pico import seeding
from pico.data import synthetic
from pico.store.files import atomic_path


def _demo_frames(seed: int, split: str, count: int, width: int, height: int, world: synthetic.World):
    """(name, frame) of fresh synthetic scenes of ``world`` (never the pretraining videos), one per image."""
    for i in range(count):
        rng = seeding.rng(seed, "demo-benchmark", split, i)
        scene = synthetic.make_scene(rng, width, height, world)
        yield f"{split}{i:06d}", scene.render(float(rng.uniform(0, 3)))


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
    annotations (each visible object a "thing" segment of its class, sky and ground "stuff")
    for the linear probe and instance annotations (RLE masks, boxes) for Mask R-CNN."""
    root = Path(root)
    categories = [
        {"id": c, "name": synthetic.CLASSES[c], "isthing": int(c in synthetic.THINGS), "supercategory": "demo"}
        for c in range(1, len(synthetic.CLASSES))
    ]
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
        things = {"images": images, "annotations": instances, "categories": [c for c in categories if c["isthing"]]}
        for kind, content in (("panoptic", spec), ("instances", things)):
            with atomic_path(root / "annotations" / f"{kind}_{split}2017.json") as tmp:
                tmp.write_text(json.dumps(content))


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


def rule_arguments(params) -> tuple[tuple, dict]:
    """(args, kwargs) after the output folder for ``write_demo_coco`` / ``write_demo_nyu`` from
    the demo rules' params: the config's ``seed``, ``benchmarks.demo`` (``demo``: train and
    val/test counts, image size) and ``synthetic.world`` (``world``)."""
    demo = params.demo
    args = (params.seed, demo["train"], demo["val"], demo["width"], demo["height"])
    return args, {"world": synthetic.World.from_settings(params.world)}


#: The writer of each demo benchmark's data, by the rules' ``kind`` param.
WRITERS = {"coco": write_demo_coco, "nyu": write_demo_nyu}
