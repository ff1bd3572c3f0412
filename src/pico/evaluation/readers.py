"""Benchmark datasets read from their official on-disk layouts (Section 4, A.2): COCO
panoptic and instances, Pascal VOC 2012 (train_aug), Cityscapes, NYU-depth v2 (ViRB's
release); the demo writes its own in the same layouts (``pico.evaluation.demo_data``). The
semantic readers yield (image RGB uint8 (H, W, 3), labels uint8 (H, W), 255 = void) and name
their classes.

COCO 2017 panoptic (what the linear probe uses), under ``root``:
``{split}2017/*.jpg``, ``annotations/panoptic_{split}2017.json`` and the PNGs in
``annotations/panoptic_{split}2017/``. Semantic labels follow ``pico.evaluation.panoptic``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import cv2
import numpy as np

from pico.evaluation import panoptic


class DatasetError(ValueError):
    """A missing or malformed dataset; the message names the path and what was expected."""


class LabelledImages:
    """Base of the readers: ``items`` (one per image) and class ``names``."""

    items: list
    names: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.names)

    def __len__(self) -> int:
        return len(self.items)


def read_image(path: Path, flags: int) -> np.ndarray:
    image = cv2.imread(str(path), flags)
    if image is None:
        raise DatasetError(f"{path}: unreadable image")
    return image


class CocoPanoptic(LabelledImages):
    """(image RGB uint8 (H, W, 3), semantic labels uint8 (H, W)) pairs of one split."""

    def __init__(self, root: str | Path, split: str):
        self.root = Path(root)
        images, annotations = self.root / f"{split}2017", self.root / "annotations" / f"panoptic_{split}2017.json"
        self.png_dir = self.root / "annotations" / f"panoptic_{split}2017"
        for path, what in (
            (images, "a folder of JPEG images"),
            (annotations, "the panoptic annotations JSON"),
            (self.png_dir, "a folder of panoptic PNGs"),
        ):
            if not path.exists():
                raise DatasetError(f"{path}: missing; COCO panoptic needs {what} there (official 2017 layout)")
        try:
            spec = json.loads(annotations.read_text())
            self.labels = panoptic.label_map(spec["categories"])
            self.names = panoptic.class_names(spec["categories"])
            files = {im["id"]: im["file_name"] for im in spec["images"]}
            self.items = [
                (images / files[a["image_id"]], self.png_dir / a["file_name"], a["segments_info"])
                for a in spec["annotations"]
            ]
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise DatasetError(f"{annotations}: not COCO panoptic annotations ({type(e).__name__}: {e})") from None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, png_path, segments = self.items[i]
        image, png = read_image(image_path, cv2.IMREAD_COLOR), read_image(png_path, cv2.IMREAD_COLOR)
        return image[:, :, ::-1].copy(), panoptic.semantic(png[:, :, ::-1], segments, self.labels)


class SegmentationFolder(LabelledImages):
    """(image, labels) pairs from a list of (image path, label PNG path); labels mapped through
    ``lut`` (256 entries, IGNORE for void) when given."""

    def __init__(self, pairs: list[tuple[Path, Path]], names: list[str], lut: np.ndarray | None = None):
        self.items, self.names, self.lut = pairs, names, lut

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.items[i]
        image, labels = read_image(image_path, cv2.IMREAD_COLOR), read_image(label_path, cv2.IMREAD_UNCHANGED)
        if labels.ndim != 2:
            raise DatasetError(f"{label_path}: expected a single-channel label PNG, got shape {labels.shape}")
        return image[:, :, ::-1].copy(), (self.lut[labels] if self.lut is not None else labels)


VOC_CLASSES = [
    "background",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]


def voc(root: str | Path, split: str) -> SegmentationFolder:
    """Pascal VOC 2012 with the augmented labels (A.2.3 trains on ``train_aug``), under ``root``:
    ``JPEGImages/*.jpg``, ``SegmentationClassAug/*.png`` (class indices, 255 = void) and
    ``ImageSets/Segmentation/{train_aug,val}.txt``."""
    root = Path(root)
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    for path, what in (
        (listing, "the image list"),
        (root / "JPEGImages", "the JPEG images"),
        (root / "SegmentationClassAug", "the augmented label PNGs (SBD + VOC)"),
    ):
        if not path.exists():
            raise DatasetError(f"{path}: missing; VOC 2012 (train_aug) needs {what} there")
    names = [line.split()[0] for line in listing.read_text().split("\n") if line.strip()]
    return SegmentationFolder(
        [(root / "JPEGImages" / f"{n}.jpg", root / "SegmentationClassAug" / f"{n}.png") for n in names], VOC_CLASSES
    )


#: Cityscapes labelIds -> trainIds of the 19 evaluated classes (cityscapesScripts' labels.py).
CITYSCAPES_TRAIN_IDS = {
    7: 0,
    8: 1,
    11: 2,
    12: 3,
    13: 4,
    17: 5,
    19: 6,
    20: 7,
    21: 8,
    22: 9,
    23: 10,
    24: 11,
    25: 12,
    26: 13,
    27: 14,
    28: 15,
    31: 16,
    32: 17,
    33: 18,
}
CITYSCAPES_CLASSES = [
    "road",
    "sidewalk",
    "building",
    "wall",
    "fence",
    "pole",
    "traffic light",
    "traffic sign",
    "vegetation",
    "terrain",
    "sky",
    "person",
    "rider",
    "car",
    "truck",
    "bus",
    "train",
    "motorcycle",
    "bicycle",
]


def cityscapes(root: str | Path, split: str) -> SegmentationFolder:
    """Cityscapes fine annotations under ``root``: ``leftImg8bit/{split}/{city}/*_leftImg8bit.png``
    and ``gtFine/{split}/{city}/*_gtFine_labelIds.png``, mapped to the 19 trainIds."""
    root = Path(root)
    images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
    for path, what in ((images, "the leftImg8bit images"), (labels, "the gtFine labelIds PNGs")):
        if not path.is_dir():
            raise DatasetError(f"{path}: missing; Cityscapes needs {what} there")
    pairs = []
    for image in sorted(images.glob("*/*_leftImg8bit.png")):
        label = labels / image.parent.name / image.name.replace("_leftImg8bit.png", "_gtFine_labelIds.png")
        if not label.exists():
            raise DatasetError(f"{label}: missing, the label of {image}")
        pairs.append((image, label))
    if not pairs:
        raise DatasetError(f"{images}: no */*_leftImg8bit.png images")
    lut = np.full(256, panoptic.IGNORE, np.uint8)
    for label_id, train_id in CITYSCAPES_TRAIN_IDS.items():
        lut[label_id] = train_id
    return SegmentationFolder(pairs, CITYSCAPES_CLASSES, lut)


class CocoInstances(LabelledImages):
    """COCO 2017 instances for Mask R-CNN (A.2.2) under ``root``: ``{split}2017/*.jpg`` and
    ``annotations/instances_{split}2017.json``. Items are image ids; ``target(i)`` gives
    detectron2's training view: crowd regions dropped, boxes xyxy, masks decoded, labels
    1..K (0 is the background) in ascending category id."""

    def __init__(self, root: str | Path, split: str):
        from pycocotools.coco import COCO

        self.root = Path(root)
        self.images, self.annotations = (
            self.root / f"{split}2017",
            self.root / "annotations" / f"instances_{split}2017.json",
        )
        for path, what in ((self.images, "a folder of JPEG images"), (self.annotations, "the instances JSON")):
            if not path.exists():
                raise DatasetError(f"{path}: missing; COCO instances need {what} there (official 2017 layout)")
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
                self.coco = COCO(str(self.annotations))
            categories = sorted(self.coco.getCatIds())
            self.names = ["background"] + [self.coco.cats[c]["name"] for c in categories]
            self.label_of = {c: k + 1 for k, c in enumerate(categories)}
            self.category_of = {k: c for c, k in self.label_of.items()}
            self.items = sorted(self.coco.getImgIds())
        except (KeyError, TypeError, ValueError, AssertionError) as e:
            raise DatasetError(f"{self.annotations}: not COCO instance annotations ({type(e).__name__}: {e})") from None

    def annotated(self) -> list[int]:
        """Indices of the images with at least one non-crowd object (the ones trained on)."""
        usable = [
            i
            for i, image_id in enumerate(self.items)
            if any(not a.get("iscrowd") for a in self.coco.imgToAnns[image_id])
        ]
        if not usable:
            raise DatasetError(f"{self.annotations}: no image has a non-crowd object to train on")
        return usable

    def image(self, i: int) -> np.ndarray:
        info = self.coco.imgs[self.items[i]]
        return read_image(self.images / info["file_name"], cv2.IMREAD_COLOR)[:, :, ::-1].copy()

    def target(self, i: int) -> dict[str, np.ndarray]:
        """boxes (N, 4) xyxy float32, labels (N,) int64, masks (N, H, W) uint8; crowds dropped."""
        info = self.coco.imgs[self.items[i]]
        anns = [
            a
            for a in self.coco.imgToAnns[self.items[i]]
            if not a.get("iscrowd") and a["bbox"][2] > 0 and a["bbox"][3] > 0
        ]
        boxes = np.array([[x, y, x + w, y + h] for x, y, w, h in (a["bbox"] for a in anns)], np.float32).reshape(-1, 4)
        masks = (
            np.stack([self.coco.annToMask(a) for a in anns])
            if anns
            else np.zeros((0, info["height"], info["width"]), np.uint8)
        )
        return {
            "boxes": boxes,
            "labels": np.array([self.label_of[a["category_id"]] for a in anns], np.int64),
            "masks": masks,
        }


class NyuDepth(LabelledImages):
    """NYU-depth v2 as released with ViRB (Kotar et al. 2021; A.2.4) under ``root``:
    ``{train,test}/images/*.png`` and ``{train,test}/depths/*.png`` (or ``*.tiff``), image and
    depth paired in sorted order as ViRB pairs them. Yields (image RGB uint8 (H, W, 3), depth
    float32 (H, W) = file value x ``depth_scale``; 0 = no measurement)."""

    names = ["depth"]

    def __init__(self, root: str | Path, split: str, depth_scale: float = 1.0):
        root = Path(root) / split
        images = sorted((root / "images").glob("*.png"))
        depths = sorted(p for p in (root / "depths").glob("*") if p.suffix in (".png", ".tiff", ".tif"))
        for path, found, what in (
            (root / "images", images, "PNG images"),
            (root / "depths", depths, "depth PNG or TIFF files"),
        ):
            if not found:
                raise DatasetError(f"{path}: missing or empty; NYU-depth v2 (ViRB release) needs {what} there")
        if len(images) != len(depths):
            raise DatasetError(f"{root}: {len(images)} images but {len(depths)} depth maps; they pair one to one")
        self.items, self.depth_scale = list(zip(images, depths)), depth_scale

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, depth_path = self.items[i]
        depth = read_image(depth_path, cv2.IMREAD_UNCHANGED)
        if depth.ndim != 2:
            raise DatasetError(f"{depth_path}: expected a single-channel depth map, got shape {depth.shape}")
        image = read_image(image_path, cv2.IMREAD_COLOR)[:, :, ::-1].copy()
        return image, (depth * self.depth_scale).astype(np.float32)
