"""Section 4.2 / A.2.2: COCO object detection and instance segmentation with Mask R-CNN on the
pretrained backbone + FPN, both frozen: only the proposal generator (RPN) and the ROI heads
learn. detectron2's FPN 1x defaults (the paper's basis), rebuilt on torchvision's Mask R-CNN:
SGD, momentum 0.9, linear warm-up, step schedule, short side drawn from ``min_size_train``,
horizontal flips; AP, AP50 and AP75 of boxes and masks from pycocotools' COCOeval.

detectron2 itself does not install from the package index here; ``detectron2_state`` renames
a backbone + FPN to detectron2's checkpoint names for users who run it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import math
import re

import numpy as np
import torch
import torch.nn as nn
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.backbone_utils import BackboneWithFPN

from pico import logs, seeding
from pico.evaluation import readers
from pico.evaluation.probe import batches, device_for, learning_rate
from pico.learn.resume import Resumable

log = logging.getLogger(__name__)

METRICS = ("AP_bb", "AP50_bb", "AP75_bb", "AP_mk", "AP50_mk", "AP75_mk")


class FrozenFPNMaskRCNN(MaskRCNN):
    """torchvision's Mask R-CNN whose backbone + FPN never change: no gradients and always in
    eval mode (BatchNorm statistics frozen too). Proposals kept after NMS and ROIs sampled per
    image from the config (detectron2's FPN defaults: 1000, 1000, 512)."""

    def __init__(self, backbone: BackboneWithFPN, n_classes: int, cfg: dict):
        super().__init__(
            backbone,
            num_classes=n_classes,
            min_size=tuple(cfg["min_size_train"]),
            max_size=cfg["max_size"],
            rpn_post_nms_top_n_train=cfg["proposals_train"],
            rpn_post_nms_top_n_test=cfg["proposals_test"],
            box_batch_size_per_image=cfg["rois_per_image"],
        )
        self.backbone.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenFPNMaskRCNN:
        super().train(mode)
        self.backbone.eval()
        return self


def image_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) in [0, 1]; the detector normalises itself."""
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255


def training_sample(dataset: readers.CocoInstances, index: int, rng: np.random.Generator) -> tuple[torch.Tensor, dict]:
    """One image and its targets, flipped horizontally with probability 1/2."""
    image, target = dataset.image(index), dataset.target(index)
    boxes, masks = target["boxes"], target["masks"]
    if rng.random() < 0.5:
        width = image.shape[1]
        image, masks = image[:, ::-1], masks[:, :, ::-1]
        boxes = np.stack([width - boxes[:, 2], boxes[:, 1], width - boxes[:, 0], boxes[:, 3]], axis=1)
    return image_tensor(np.ascontiguousarray(image)), {
        "boxes": torch.from_numpy(np.ascontiguousarray(boxes, np.float32)),
        "labels": torch.from_numpy(target["labels"]),
        "masks": torch.from_numpy(np.ascontiguousarray(masks)),
    }


def train(
    detector: FrozenFPNMaskRCNN, dataset: readers.CocoInstances, cfg: dict, seed: int, resume: Resumable | None = None
) -> FrozenFPNMaskRCNN:
    """SGD on the RPN and ROI heads; images without a (non-crowd) object are skipped, as
    detectron2 does. Iteration i's batch and random draws depend on (seed, i) only."""
    device = device_for(cfg)
    detector.to(device)
    params = [p for p in detector.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
    usable = dataset.annotated()

    def make(i: int) -> tuple[int, list]:
        rng = seeding.rng(seed, "maskrcnn", i)
        torch_seed = int(rng.integers(2**62))  # the detector's own draws: sizes, RPN/ROI sampling
        return torch_seed, [
            training_sample(dataset, usable[int(k)], rng) for k in rng.integers(0, len(usable), cfg["batch_size"])
        ]

    detector.train()
    steps = (resume or Resumable()).iterations(cfg["iterations"], detector=detector, optimizer=optimizer)
    lines = logs.Progress(log, "maskrcnn", cfg["iterations"], start=steps.start)
    for i, (torch_seed, batch) in zip(steps, batches(make, steps, cfg["workers"])):
        torch.manual_seed(torch_seed)
        lr = learning_rate(cfg, i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        losses = detector([b[0].to(device) for b in batch], [{k: v.to(device) for k, v in b[1].items()} for b in batch])
        loss = sum(losses.values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"Mask R-CNN loss is {loss.item()} at iteration {i + 1}")
        lines.update(i + 1, detail=functools.partial(_loss_line, loss, losses, lr))
    return detector


def _loss_line(loss: torch.Tensor, losses: dict[str, torch.Tensor], lr: float) -> str:
    """A training step's progress detail: the loss, each of its terms and the learning rate
    (read back from the device only for a line that is logged, ``pico.logs.Progress``)."""
    parts = " ".join(f"{k.removeprefix('loss_')} {v.item():.3f}" for k, v in losses.items())
    return f"loss {loss.item():.4f} ({parts}) lr {lr:.4g}"


@torch.no_grad()
def detections(detector: FrozenFPNMaskRCNN, dataset: readers.CocoInstances, cfg: dict) -> tuple[list[dict], list[dict]]:
    """COCO-format box and mask results over the split (short side ``min_size_test``)."""
    from pycocotools import mask as rle

    device = device_for(cfg)
    detector.to(device).eval()
    detector.transform.min_size = (cfg["min_size_test"],)
    boxes, masks, lines = [], [], logs.Progress(log, "maskrcnn evaluation", len(dataset))
    for i, image_id in enumerate(dataset.items):
        out = detector([image_tensor(dataset.image(i)).to(device)])[0]
        for box, label, score, mask in zip(
            out["boxes"].cpu().numpy(), out["labels"].tolist(), out["scores"].tolist(), out["masks"][:, 0].cpu().numpy()
        ):
            common = {"image_id": image_id, "category_id": dataset.category_of[label], "score": score}
            x0, y0, x1, y1 = (float(v) for v in box)
            boxes.append({**common, "bbox": [x0, y0, x1 - x0, y1 - y0]})
            encoded = rle.encode(np.asfortranarray(mask > 0.5, dtype=np.uint8))
            masks.append({**common, "segmentation": {"size": encoded["size"], "counts": encoded["counts"].decode()}})
        lines.update(i + 1, item=f"image {image_id}")
    return boxes, masks


def coco_ap(gt, boxes: list[dict], masks: list[dict]) -> dict[str, float]:
    """AP, AP50, AP75 in percent of boxes (``_bb``) and masks (``_mk``) through COCOeval; 0
    where nothing was detected."""
    from pycocotools.cocoeval import COCOeval

    scores = dict.fromkeys(METRICS, 0.0)
    for results, iou_type, suffix in ((boxes, "bbox", "bb"), (masks, "segm", "mk")):
        if not results:
            log.warning("no %s detections: AP 0", iou_type)
            continue
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            evaluation = COCOeval(gt, gt.loadRes(results), iou_type)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        log.info("COCOeval %s:\n%s", iou_type, printed.getvalue())
        for name, value in zip(("AP", "AP50", "AP75"), evaluation.stats[:3]):
            scores[f"{name}_{suffix}"] = 100 * float(value)
    return scores


def run(backbone: BackboneWithFPN, root, cfg: dict, seed: int, resume: Resumable | None = None) -> dict[str, float]:
    """Train Mask R-CNN's heads on COCO train2017 at ``root`` on the frozen ``backbone``;
    box and mask AP on val2017."""
    train_set, val_set = readers.CocoInstances(root, "train"), readers.CocoInstances(root, "val")
    torch.manual_seed(seed)  # the heads' initialisation
    detector = train(FrozenFPNMaskRCNN(backbone, train_set.n_classes, cfg), train_set, cfg, seed, resume)
    return coco_ap(val_set.coco, *detections(detector, val_set, cfg))


def _detectron2_name(name: str) -> str | None:
    """torchvision's BackboneWithFPN parameter name -> detectron2's (build_resnet_fpn_backbone),
    None for what detectron2 does not keep (BatchNorm's batch counter)."""
    if name.endswith("num_batches_tracked"):
        return None
    rules = [
        (r"^body\.conv1\.", "backbone.bottom_up.stem.conv1."),
        (r"^body\.bn1\.", "backbone.bottom_up.stem.conv1.norm."),
        (r"^body\.layer(\d)\.(\d+)\.conv(\d)\.", lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}."),
        (
            r"^body\.layer(\d)\.(\d+)\.bn(\d)\.",
            lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.conv{m[3]}.norm.",
        ),
        (
            r"^body\.layer(\d)\.(\d+)\.downsample\.0\.",
            lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.",
        ),
        (
            r"^body\.layer(\d)\.(\d+)\.downsample\.1\.",
            lambda m: f"backbone.bottom_up.res{int(m[1]) + 1}.{m[2]}.shortcut.norm.",
        ),
        (r"^fpn\.inner_blocks\.(\d)\.0\.", lambda m: f"backbone.fpn_lateral{int(m[1]) + 2}."),
        (r"^fpn\.layer_blocks\.(\d)\.0\.", lambda m: f"backbone.fpn_output{int(m[1]) + 2}."),
    ]
    for pattern, replacement in rules:
        renamed, n = re.subn(pattern, replacement, name)
        if n:
            return renamed
    raise KeyError(f"no detectron2 name for backbone parameter {name!r}")


def detectron2_state(backbone: nn.Module) -> dict:
    """A checkpoint detectron2's DetectionCheckpointer loads into a ResNet-FPN Mask R-CNN
    (``{"model": weights}``): set MODEL.RESNETS.STRIDE_IN_1X1 False (torchvision strides in
    the 3x3), INPUT.FORMAT "RGB", PIXEL_MEAN [123.675, 116.28, 103.53], PIXEL_STD
    [58.395, 57.12, 57.375] and freeze the whole backbone (MODEL.BACKBONE.FREEZE_AT 5 + FPN)."""
    weights = {}
    for name, tensor in backbone.state_dict().items():
        renamed = _detectron2_name(name)
        if renamed:
            weights[renamed] = tensor.detach().cpu().clone()
    return {"model": weights}
