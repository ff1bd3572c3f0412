"""Section 4's metrics: mean and frequency-weighted IoU from a confusion matrix, in percent;
RMSE for depth."""

from __future__ import annotations

import numpy as np


def confusion(target: np.ndarray, prediction: np.ndarray, n_classes: int, ignore: int = 255) -> np.ndarray:
    """(n, n) counts, rows = ground truth, columns = prediction; ``ignore`` pixels skipped."""
    valid = target != ignore
    # each (ground truth, prediction) pair as one flat index, so one bincount counts them all
    index = n_classes * target[valid].astype(np.int64) + prediction[valid].astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou(conf: np.ndarray) -> dict[str, float]:
    """detectron2's ``SemSegEvaluator`` (COCO-Stuff's definition), in percent, over the classes
    present in the ground truth, C = {c : G_c > 0} with G_c = sum_j conf[c, j] (ground-truth
    pixels of c) and P_c = sum_i conf[i, c] (pixels predicted c):

        IoU_c = conf[c, c] / (G_c + P_c - conf[c, c]),
        mIoU = (1 / |C|) sum_{c in C} IoU_c,    fIoU = sum_{c in C} (G_c / sum_k G_k) IoU_c.

    A class predicted but absent from the ground truth has no IoU of its own (its pixels count
    only as misses of the classes they belong to)."""
    tp = np.diag(conf).astype(np.float64)
    gt, predicted = conf.sum(1).astype(np.float64), conf.sum(0).astype(np.float64)
    present = gt > 0
    if not present.any():
        raise ValueError("no ground-truth pixel (every pixel void): mIoU is undefined")
    per_class = tp[present] / (gt + predicted - tp)[present]  # the union is >= G_c > 0 on C
    weight = gt[present] / gt.sum()
    return {"mIoU": float(100 * per_class.mean()), "fIoU": float(100 * (weight * per_class).sum())}


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error (Table 3's depth metric)."""
    return float(np.sqrt(np.mean((prediction.astype(np.float64) - target) ** 2)))
