"""Benchmark datasets read from their official on-disk layouts (Section 4, A.2): COCO
panoptic, Pascal VOC 2012 (train_aug), Cityscapes; and the demo's own COCO-style benchmark
made by the synthetic world. Every reader yields (image RGB uint8 (H, W, 3), labels uint8
(H, W), 255 = void) and names its classes.

COCO 2017 panoptic (what the linear probe uses), under ``root``:
``{split}2017/*.jpg``, ``annotations/panoptic_{split}2017.json`` and the PNGs in
``annotations/panoptic_{split}2017/``. Semantic labels follow ``pico.panoptic``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from pico import panoptic, seeding, synthetic
from pico.io import atomic_path


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


def _read(path: Path, flags: int) -> np.ndarray:
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
        for path, what in ((images, "a folder of JPEG images"), (annotations, "the panoptic annotations JSON"),
                           (self.png_dir, "a folder of panoptic PNGs")):
            if not path.exists():
                raise DatasetError(f"{path}: missing; COCO panoptic needs {what} there (official 2017 layout)")
        try:
            spec = json.loads(annotations.read_text())
            self.labels = panoptic.label_map(spec["categories"])
            self.names = panoptic.class_names(spec["categories"])
            files = {im["id"]: im["file_name"] for im in spec["images"]}
            self.items = [(images / files[a["image_id"]], self.png_dir / a["file_name"], a["segments_info"]) for a in spec["annotations"]]
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise DatasetError(f"{annotations}: not COCO panoptic annotations ({type(e).__name__}: {e})") from None

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, png_path, segments = self.items[i]
        image, png = _read(image_path, cv2.IMREAD_COLOR), _read(png_path, cv2.IMREAD_COLOR)
        return image[:, :, ::-1].copy(), panoptic.semantic(png[:, :, ::-1], segments, self.labels)


def write_demo_coco(root: str | Path, seed: int, n_train: int, n_val: int, width: int, height: int) -> None:
    """The demo's segmentation benchmark in COCO's panoptic layout: frames of fresh synthetic
    scenes (never the pretraining videos), each visible object a "thing" segment of its class,
    sky and ground "stuff" segments. Also writes ``depth/{split}2017/*.npy`` (metres)."""
    root = Path(root)
    categories = [{"id": c, "name": synthetic.CLASSES[c], "isthing": int(c in synthetic.THINGS), "supercategory": "demo"}
                  for c in range(1, len(synthetic.CLASSES))]
    for split, count in (("train", n_train), ("val", n_val)):
        images, annotations = [], []
        for i in range(count):
            rng = seeding.rng(seed, "demo-benchmark", split, i)
            scene = synthetic.make_scene(rng, width, height)
            frame = scene.render(float(rng.uniform(0, 3)))
            ids, segments = _panoptic_segments(frame)
            name = f"{split}{i:06d}"
            _write_image(root / f"{split}2017" / f"{name}.jpg", frame["rgb"])
            _write_image(root / "annotations" / f"panoptic_{split}2017" / f"{name}.png",
                         np.stack([ids % 256, ids // 256 % 256, ids // 65536], -1).astype(np.uint8))
            (root / "depth" / f"{split}2017").mkdir(parents=True, exist_ok=True)
            with atomic_path(root / "depth" / f"{split}2017" / f"{name}.npy") as tmp:
                np.save(tmp, frame["depth"], allow_pickle=False)
            images.append({"id": i, "file_name": f"{name}.jpg", "width": width, "height": height})
            annotations.append({"image_id": i, "file_name": f"{name}.png", "segments_info": segments})
        spec = {"images": images, "annotations": annotations, "categories": categories}
        with atomic_path(root / "annotations" / f"panoptic_{split}2017.json") as tmp:
            tmp.write_text(json.dumps(spec))


def _panoptic_segments(frame: dict) -> tuple[np.ndarray, list[dict]]:
    """Segment ids (H, W) and segments_info: one segment per visible object, sky and ground."""
    ids = np.zeros(frame["labels"].shape, np.int64)
    segments = []
    for k in np.unique(frame["instances"]):
        mask = frame["instances"] == k if k else np.zeros_like(frame["instances"], bool)
        if k:
            segments.append({"id": int(k), "category_id": int(frame["labels"][mask][0]), "area": int(mask.sum()), "iscrowd": 0})
            ids[mask] = k
    for stuff, seg_id in ((synthetic.SKY, 1000), (synthetic.GROUND, 1001)):
        mask = (frame["instances"] == 0) & (frame["labels"] == stuff)
        if mask.any():
            segments.append({"id": seg_id, "category_id": stuff, "area": int(mask.sum()), "iscrowd": 0})
            ids[mask] = seg_id
    return ids, segments


def _write_image(path: Path, rgb: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        params = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix == ".jpg" else []  # PNGs are lossless
        if not cv2.imwrite(str(tmp), rgb[:, :, ::-1], params):
            raise OSError(f"could not write {path}")


class SegmentationFolder(LabelledImages):
    """(image, labels) pairs from a list of (image path, label PNG path); labels mapped through
    ``lut`` (256 entries, IGNORE for void) when given."""

    def __init__(self, pairs: list[tuple[Path, Path]], names: list[str], lut: np.ndarray | None = None):
        self.items, self.names, self.lut = pairs, names, lut

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        image_path, label_path = self.items[i]
        image, labels = _read(image_path, cv2.IMREAD_COLOR), _read(label_path, cv2.IMREAD_UNCHANGED)
        if labels.ndim != 2:
            raise DatasetError(f"{label_path}: expected a single-channel label PNG, got shape {labels.shape}")
        return image[:, :, ::-1].copy(), (self.lut[labels] if self.lut is not None else labels)


VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"]


def voc(root: str | Path, split: str) -> SegmentationFolder:
    """Pascal VOC 2012 with the augmented labels (A.2.3 trains on ``train_aug``), under ``root``:
    ``JPEGImages/*.jpg``, ``SegmentationClassAug/*.png`` (class indices, 255 = void) and
    ``ImageSets/Segmentation/{train_aug,val}.txt``."""
    root = Path(root)
    listing = root / "ImageSets" / "Segmentation" / f"{split}.txt"
    for path, what in ((listing, "the image list"), (root / "JPEGImages", "the JPEG images"),
                       (root / "SegmentationClassAug", "the augmented label PNGs (SBD + VOC)")):
        if not path.exists():
            raise DatasetError(f"{path}: missing; VOC 2012 (train_aug) needs {what} there")
    names = [line.split()[0] for line in listing.read_text().split("\n") if line.strip()]
    return SegmentationFolder([(root / "JPEGImages" / f"{n}.jpg", root / "SegmentationClassAug" / f"{n}.png") for n in names],
                              VOC_CLASSES)


#: Cityscapes labelIds -> trainIds of the 19 evaluated classes (cityscapesScripts' labels.py).
CITYSCAPES_TRAIN_IDS = {7: 0, 8: 1, 11: 2, 12: 3, 13: 4, 17: 5, 19: 6, 20: 7, 21: 8, 22: 9, 23: 10, 24: 11, 25: 12,
                        26: 13, 27: 14, 28: 15, 31: 16, 32: 17, 33: 18}
CITYSCAPES_CLASSES = ["road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
                      "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
                      "bicycle"]


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
