"""Section 4.1 / A.2.1: the linear probe. A frozen model's dense output -> 1x1 convolution ->
4x bilinear upsampling -> softmax, trained with cross-entropy (void pixels ignored) on random
absolute crops after resizing the short side, with random flips; evaluated by mIoU and fIoU
on whole validation images.

Models probed: a pretrained decoder (``model.pt`` of the pretraining stage: 128-d at 1/4) or
the MoCo-v2 baseline, its ResNet-50 dilated to output stride 4 (2048-d at 1/4).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from pico import augment, datasets, metrics, model, panoptic, seeding

log = logging.getLogger(__name__)


def pretrained_features(path: str | Path) -> nn.Module:
    """The dense network f of a pretraining run (its encoder rebuilt from the config it names)."""
    saved = torch.load(path, map_location="cpu", weights_only=True)
    m = saved["config"]["model"]
    net = model.DenseNet(m["arch"], m["encoder_checkpoint"], True, m["dim"])
    decoder = {k.removeprefix("net."): v for k, v in saved["decoder"].items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(decoder, strict=False)
    if unexpected or any(not k.startswith("backbone.body.") for k in missing):
        raise ValueError(f"{path}: decoder weights do not fit ({len(missing)} missing, {len(unexpected)} unexpected)")
    return net


class LinearProbe(nn.Module):
    """Frozen features + a 1x1 convolution, upsampled 4x to the input (logits)."""

    def __init__(self, features: nn.Module, channels: int, n_classes: int):
        super().__init__()
        self.features = features.requires_grad_(False).eval()
        self.classifier = nn.Conv2d(channels, n_classes, 1)

    def train(self, mode: bool = True) -> "LinearProbe":
        super().train(mode)
        self.features.eval()  # frozen, BatchNorm included
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.features(images)
        logits = F.interpolate(self.classifier(f), scale_factor=4, mode="bilinear", align_corners=False)
        return logits[..., : images.shape[-2], : images.shape[-1]]


def resize(image: np.ndarray, labels: np.ndarray, short: int, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Short side to ``short`` (long side at most ``max_size``); labels by nearest neighbour."""
    h, w = labels.shape
    scale = min(short / min(h, w), max_size / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - augment.MEAN) / augment.STD


def training_sample(dataset, index: int, cfg: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Resize (short side drawn from ``min_size_train``), absolute crop (padded with void where
    the image is smaller), random flip."""
    image, labels = dataset[index]
    image, labels = resize(image, labels, int(rng.choice(cfg["min_size_train"])), cfg["max_size"])
    ch, cw = (cfg["crop_size"],) * 2 if isinstance(cfg["crop_size"], int) else cfg["crop_size"]  # Cityscapes: 512x1024
    h, w = labels.shape
    ph, pw = max(0, ch - h), max(0, cw - w)
    image = np.pad(image, ((0, ph), (0, pw), (0, 0)))
    labels = np.pad(labels, ((0, ph), (0, pw)), constant_values=panoptic.IGNORE)
    top, left = int(rng.integers(0, labels.shape[0] - ch + 1)), int(rng.integers(0, labels.shape[1] - cw + 1))
    image, labels = image[top : top + ch, left : left + cw], labels[top : top + ch, left : left + cw]
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    return to_tensor(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(labels)).long()


def device_for(cfg: dict) -> torch.device:
    return torch.device("cuda" if cfg["device"] != "cpu" and torch.cuda.is_available() else "cpu")


def train(probe: LinearProbe, dataset, cfg: dict, seed: int) -> LinearProbe:
    """SGD on the classifier only (momentum 0.9), step schedule at ``milestones`` (x0.1)."""
    device = device_for(cfg)
    probe.to(device)
    optimizer = torch.optim.SGD(probe.classifier.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"])
    probe.train()
    for i in range(cfg["iterations"]):
        rng = seeding.rng(seed, "probe", i)
        batch = [training_sample(dataset, int(k), cfg, rng) for k in rng.integers(0, len(dataset), cfg["batch_size"])]
        images, labels = torch.stack([b[0] for b in batch]).to(device), torch.stack([b[1] for b in batch]).to(device)
        lr = cfg["lr"] * 0.1 ** sum(i >= m for m in cfg["milestones"])
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = F.cross_entropy(probe(images), labels, ignore_index=panoptic.IGNORE)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if (i + 1) % max(1, cfg["iterations"] // 20) == 0 or i + 1 == cfg["iterations"]:
            log.info("probe: %d/%d loss %.4f lr %.4g", i + 1, cfg["iterations"], loss.item(), lr)
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"probe loss is {loss.item()} at iteration {i + 1}")
    return probe


@torch.no_grad()
def evaluate(probe: LinearProbe, dataset, cfg: dict) -> dict[str, float]:
    """mIoU and fIoU (percent) over the whole split, images resized to ``min_size_test``."""
    device = device_for(cfg)
    probe.to(device).eval()
    conf = np.zeros((dataset.n_classes, dataset.n_classes), np.int64)
    for i in range(len(dataset)):
        image, labels = resize(*dataset[i], cfg["min_size_test"], cfg["max_size"])
        prediction = probe(to_tensor(image)[None].to(device)).argmax(1)[0].cpu().numpy()
        conf += metrics.confusion(labels, prediction, dataset.n_classes)
    return metrics.iou(conf)


#: Benchmark name -> (reader of a root and split, train split, evaluation split).
SEMANTIC = {
    "coco_probe": (datasets.CocoPanoptic, "train", "val"),
    "voc": (datasets.voc, "train_aug", "val"),
    "cityscapes": (datasets.cityscapes, "train", "val"),
}


def run(features: nn.Module, channels: int, benchmark: str, root: str | Path, cfg: dict, seed: int) -> dict[str, float]:
    """Train the probe on the benchmark's training split at ``root``, evaluate on its val split."""
    read, train_split, val_split = SEMANTIC[benchmark]
    train_set, val_set = read(root, train_split), read(root, val_split)
    probe = train(LinearProbe(features, channels, train_set.n_classes), train_set, cfg, seed)
    return evaluate(probe, val_set, cfg)


def result(metrics_: dict, benchmark: str, model_name: str, model_path: str | None, cfg: dict, demo: bool, seconds: float) -> dict:
    """One benchmark result: metrics, the model (and its file's sha256), settings, time."""
    import hashlib

    parts = model_name.split("/")
    row = {"method": parts[0], "dataset": parts[1] if len(parts) > 1 else None}
    if len(parts) == 4:
        gamma, delta = parts[3].removeprefix("g").split("_d")
        row.update(sampling=parts[2], gamma=float(gamma), delta=float(delta))
    sha = model_path and hashlib.sha256(Path(model_path).read_bytes()).hexdigest()
    return {**row, **metrics_, "model": model_name, "checkpoint": model_path, "checkpoint_sha256": sha,
            "benchmark": benchmark, "demo": demo, "config": cfg, "seconds": round(seconds, 1)}


TITLES = {
    "coco_probe": "COCO semantic segmentation, linear probe (Table 1)",
    "voc": "Pascal VOC 2012 semantic segmentation, linear probe (Table 3)",
    "cityscapes": "Cityscapes semantic segmentation, linear probe (Table 3)",
}


def table(results: list[dict], benchmark: str, demo: bool) -> dict:
    """A results table: the MoCo-v2 baseline first, then every pretrained model; percent."""
    name = TITLES[benchmark] + (" -- DEMO: the synthetic world's benchmark, not COCO" if demo else "")
    keys = ("method", "dataset", "sampling", "gamma", "delta", "mIoU", "fIoU", "model")
    rows = sorted(results, key=lambda r: (r["method"] != "moco_v2", r["dataset"] or "", r["method"]))
    return {"benchmark": name, "demo": demo, "rows": [{k: r.get(k) for k in keys} for r in rows]}
