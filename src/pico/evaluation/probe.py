"""Section 4.1 / A.2.1: the linear probe. A frozen model's dense output -> 1x1 convolution ->
4x bilinear upsampling -> softmax, trained with cross-entropy (void pixels ignored) on random
absolute crops after resizing the short side, with random flips; evaluated by mIoU and fIoU
on whole validation images. Depth (Section 4.2, A.2.4): the same 1x1 convolution without the
softmax, trained with L1 on 224 x 224 images and depth maps, flips only; scored by RMSE.

Models probed: a pretrained decoder (``model.pt`` of the pretraining stage: 128-d at 1/4) or
the MoCo-v2 baseline, its ResNet-50 dilated to output stride 4 (2048-d at 1/4).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from pico import logs, seeding
from pico.evaluation import metrics, panoptic, readers
from pico.learn import augment, model
from pico.learn.resume import Resumable, Steps, ignoring_preemption
from pico.store import checkpoint

log = logging.getLogger(__name__)


def pretrained_features(path: str | Path) -> nn.Module:
    """The dense network f of a pretraining run (its encoder rebuilt from the config it names,
    from the same file: its sha256 must be the one recorded when pretraining ended)."""
    saved = checkpoint.load(path)  # verified: a damaged model.pt is an error naming it
    m = saved["config"]["model"]
    encoder = m["encoder_checkpoint"]
    if encoder and checkpoint.sha256(encoder) != saved["encoder"]["sha256"]:
        raise ValueError(
            f"{path}: pretrained on another {encoder} (its sha256 has changed since); rerun the pretraining"
        )
    # seeded as pretrain.build seeds it, so a random-init encoder (no checkpoint) is the one trained on
    torch.manual_seed(saved["config"]["pretrain"]["seed"])
    net = model.DenseNet(m["arch"], encoder, True, m["dim"])
    decoder = {k.removeprefix("net."): v for k, v in saved["decoder"].items() if k.startswith("net.")}
    missing, unexpected = net.load_state_dict(decoder, strict=False)
    if unexpected or model.learned(dict.fromkeys(missing), frozen=True):  # only the encoder may be missing
        raise ValueError(f"{path}: decoder weights do not fit ({len(missing)} missing, {len(unexpected)} unexpected)")
    return net


class LinearProbe(nn.Module):
    """Frozen features + a 1x1 convolution, upsampled 4x to the input (logits): detectron2's
    ``SemSegFPNHead`` predictor on frozen features, initialised as it is (``model.msra_fill``)."""

    def __init__(self, features: nn.Module, channels: int, n_classes: int):
        super().__init__()
        self.features = features.requires_grad_(False).eval()
        self.classifier = model.msra_fill(nn.Conv2d(channels, n_classes, 1))

    def train(self, mode: bool = True) -> LinearProbe:
        super().train(mode)
        self.features.eval()  # frozen, BatchNorm included
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            f = self.features(images)
        logits = F.interpolate(self.classifier(f), scale_factor=4, mode="bilinear", align_corners=False)
        return logits[..., : images.shape[-2], : images.shape[-1]]


#: How labels and depth are resized: the nearest pixel to where the image's bilinear resize
#: samples, x = (x' + 1/2) / s - 1/2 (pixel centres aligned). cv2.INTER_NEAREST takes pixel
#: floor(x' / s) instead, up to a pixel off its image: labels would sit beside their objects.
NEAREST = cv2.INTER_NEAREST_EXACT


def resize(image: np.ndarray, labels: np.ndarray, short: int, max_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Short side to ``short`` (long side at most ``max_size``); labels by the nearest pixel,
    centre-aligned with the image (``NEAREST``)."""
    h, w = labels.shape
    scale = min(short / min(h, w), max_size / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), cv2.resize(labels, size, interpolation=NEAREST)


def normalized_tensor(image: np.ndarray) -> torch.Tensor:
    """RGB uint8 (H, W, 3) -> float (3, H, W) normalised by ImageNet's mean and std, as the
    encoders saw in pretraining (``pico.learn.augment``)."""
    return (torch.from_numpy(image).permute(2, 0, 1).float() / 255 - augment.MEAN) / augment.STD


def pad_to(image: torch.Tensor, labels: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """detectron2's batching (``ImageList.from_tensors``): a normalised image padded at the
    bottom and right to ``size`` with 0, i.e. the mean colour, its labels with void."""
    pad = (0, size[1] - labels.shape[1], 0, size[0] - labels.shape[0])  # F.pad: (left, right, top, bottom)
    return F.pad(image, pad, value=0.0), F.pad(labels, pad, value=panoptic.IGNORE)


def training_sample(dataset, index: int, cfg: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A.2.1's augmentation as detectron2's ``DatasetMapper`` applies it: resize (short side
    drawn from ``min_size_train``), absolute crop (clipped to the image where it is smaller),
    random flip, normalise, then ``pad_to`` the crop size (mean colour, void labels)."""
    image, labels = dataset[index]
    image, labels = resize(image, labels, int(rng.choice(cfg["min_size_train"])), cfg["max_size"])
    ch, cw = (cfg["crop_size"],) * 2 if isinstance(cfg["crop_size"], int) else cfg["crop_size"]  # Cityscapes: 512x1024
    h, w = labels.shape
    top, left = int(rng.integers(0, max(0, h - ch) + 1)), int(rng.integers(0, max(0, w - cw) + 1))
    image, labels = image[top : top + ch, left : left + cw], labels[top : top + ch, left : left + cw]
    if rng.random() < 0.5:
        image, labels = image[:, ::-1], labels[:, ::-1]
    labels = torch.from_numpy(np.ascontiguousarray(labels)).long()
    return pad_to(normalized_tensor(np.ascontiguousarray(image)), labels, (ch, cw))


def square(image: np.ndarray, depth: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """A.2.4: image and depth resized to ``side`` x ``side`` for training and testing (depth by
    the nearest pixel, centre-aligned with the image (``NEAREST``), so missing measurements stay 0)."""
    size = (side, side)
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR), cv2.resize(depth, size, interpolation=NEAREST)


def depth_sample(dataset, index: int, cfg: dict, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A.2.4: ``square`` image and depth, then a random flip; no other augmentation."""
    image, depth = square(*dataset[index], cfg["size"])
    if rng.random() < 0.5:
        image, depth = image[:, ::-1], depth[:, ::-1]
    return normalized_tensor(np.ascontiguousarray(image)), torch.from_numpy(np.ascontiguousarray(depth))[None]


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Softmax cross-entropy, void pixels ignored (A.2.1)."""
    return F.cross_entropy(logits, labels, ignore_index=panoptic.IGNORE)


def depth_loss(prediction: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    """L1 between the linear output (no softmax) and the measured depth (Section 4.2)."""
    valid = depth > 0
    return (prediction - depth).abs()[valid].mean() if valid.any() else prediction.sum() * 0.0


def device_for(cfg: dict) -> torch.device:
    return torch.device("cuda" if cfg["device"] != "cpu" and torch.cuda.is_available() else "cpu")


def learning_rate(cfg: dict, iteration: int) -> float:
    """detectron2's WarmupMultiStepLR: ``lr`` x 0.1 at each milestone passed, after a linear
    warm-up from ``lr`` x 0.001 over ``warmup_iterations``."""
    warm = min(1.0, (iteration + 1) / cfg["warmup_iterations"]) if cfg["warmup_iterations"] else 1.0
    return cfg["lr"] * 0.1 ** sum(iteration >= m for m in cfg["milestones"]) * (0.001 + 0.999 * warm)


class _Batches(Dataset):
    """Iteration i's whole batch as one item, ``make(i)``."""

    def __init__(self, make: Callable[[int], object]):
        self.make = make

    def __getitem__(self, i: int):
        return self.make(i)


def _as_built(batch):
    return batch


def batches(make: Callable[[int], object], steps: Steps, workers: int) -> DataLoader:
    """``make(i)`` for each iteration of ``steps`` in order, built by ``workers`` processes
    (forked) ahead of the training step; each batch is a function of its iteration alone, so
    the result does not depend on ``workers``. The workers ignore SLURM's pre-emption signals
    (``pico.learn.resume.ignoring_preemption``): the main process checkpoints and stops them."""
    return DataLoader(
        _Batches(make),
        batch_size=None,
        sampler=range(steps.start, steps.total),
        num_workers=workers,
        collate_fn=_as_built,
        worker_init_fn=ignoring_preemption(),
        persistent_workers=False,
    )


def train(
    probe: LinearProbe, dataset, cfg: dict, seed: int, task: Task, resume: Resumable | None = None
) -> LinearProbe:
    """SGD on the 1x1 convolution only (momentum 0.9), warm-up and step schedule; batches are a
    function of (seed, iteration), so ``resume`` continues a stopped run exactly."""
    device = device_for(cfg)
    probe.to(device)
    optimizer = torch.optim.SGD(
        probe.classifier.parameters(), lr=cfg["lr"], momentum=0.9, weight_decay=cfg["weight_decay"]
    )

    def make(i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = seeding.rng(seed, "probe", i)
        batch = [task.sample(dataset, int(k), cfg, rng) for k in rng.integers(0, len(dataset), cfg["batch_size"])]
        return torch.stack([b[0] for b in batch]), torch.stack([b[1] for b in batch])

    probe.train()
    steps = (resume or Resumable()).iterations(cfg["iterations"], classifier=probe.classifier, optimizer=optimizer)
    lines = logs.Progress(log, "probe", cfg["iterations"], start=steps.start)
    for i, (inputs, targets) in zip(steps, batches(make, steps, cfg["workers"])):
        inputs, targets = inputs.to(device), targets.to(device)
        lr = learning_rate(cfg, i)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = task.loss(probe(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        lines.update(i + 1, detail=f"loss {loss.item():.4f} lr {lr:.4g}")
        if not math.isfinite(loss.item()):
            raise FloatingPointError(f"probe loss is {loss.item()} at iteration {i + 1}")
    return probe


@torch.no_grad()
def evaluate(probe: LinearProbe, dataset, cfg: dict) -> dict[str, float]:
    """mIoU and fIoU (percent, ``metrics.iou``: over the classes present in the split's ground
    truth) over the whole split: images resized to ``min_size_test``, the logits upsampled
    (bilinear) to the original labels' size, as detectron2's semantic segmentation evaluation
    scores them."""
    device = device_for(cfg)
    probe.to(device).eval()
    conf = np.zeros((dataset.n_classes, dataset.n_classes), np.int64)
    for i in range(len(dataset)):
        image, labels = dataset[i]
        small, _ = resize(image, labels, cfg["min_size_test"], cfg["max_size"])
        logits = F.interpolate(
            probe(normalized_tensor(small)[None].to(device)), size=labels.shape, mode="bilinear", align_corners=False
        )
        conf += metrics.confusion(labels, logits.argmax(1)[0].cpu().numpy(), dataset.n_classes)
    try:
        return metrics.iou(conf)
    except ValueError as e:
        raise readers.DatasetError(f"{dataset.items[0][1].parent}: {e}") from e


@torch.no_grad()
def evaluate_depth(probe: LinearProbe, dataset, cfg: dict) -> dict[str, float]:
    """RMSE over measured pixels at ``size`` x ``size`` (A.2.4), per image then averaged (the
    usual NYU protocol), in the depth maps' units x ``depth_scale``."""
    device = device_for(cfg)
    probe.to(device).eval()
    errors = []
    for i in range(len(dataset)):
        image, depth = square(*dataset[i], cfg["size"])
        prediction = probe(normalized_tensor(image)[None].to(device))[0, 0].cpu().numpy()
        valid = depth > 0
        if valid.any():
            errors.append(metrics.rmse(prediction[valid], depth[valid]))
    if not errors:
        raise readers.DatasetError(f"{dataset.items[0][1].parent}: no depth map has a measured pixel")
    return {"RMSE": float(np.mean(errors))}


@dataclass(frozen=True)
class Task:
    """How a linear probe learns and is scored: its training sample, loss and evaluation."""

    sample: Callable
    loss: Callable
    evaluate: Callable


SEGMENTATION = Task(training_sample, segmentation_loss, evaluate)
DEPTH = Task(depth_sample, depth_loss, evaluate_depth)

#: Benchmark name -> (reader of (root, split, cfg), train split, evaluation split, task).
LINEAR = {
    "coco_probe": (lambda root, split, cfg: readers.CocoPanoptic(root, split), "train", "val", SEGMENTATION),
    "voc": (lambda root, split, cfg: readers.voc(root, split), "train_aug", "val", SEGMENTATION),
    "cityscapes": (lambda root, split, cfg: readers.cityscapes(root, split), "train", "val", SEGMENTATION),
    "nyu_depth": (lambda root, split, cfg: readers.NyuDepth(root, split, cfg["depth_scale"]), "train", "test", DEPTH),
}


def run(
    features: nn.Module,
    channels: int,
    benchmark: str,
    root: str | Path,
    *,
    cfg: dict,
    seed: int,
    resume: Resumable | None = None,
) -> dict[str, float]:
    """Train the probe on the benchmark's training split at ``root``, evaluate on its other split."""
    read, train_split, eval_split, task = LINEAR[benchmark]
    train_set, eval_set = read(root, train_split, cfg), read(root, eval_split, cfg)
    torch.manual_seed(seed)  # the classifier's initialisation
    probe = train(LinearProbe(features, channels, train_set.n_classes), train_set, cfg, seed, task, resume)
    return task.evaluate(probe, eval_set, cfg)
