"""Section 4's metrics: mean and frequency-weighted IoU from a confusion matrix, in percent;
RMSE for depth."""

from __future__ import annotations

import numpy as np


def confusion(target: np.ndarray, prediction: np.ndarray, n_classes: int, ignore: int = 255) -> np.ndarray:
    """(n, n) counts, rows = ground truth, columns = prediction; ``ignore`` pixels skipped."""
    valid = target != ignore
    index = n_classes * target[valid].astype(np.int64) + prediction[valid].astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou(conf: np.ndarray) -> dict[str, float]:
    """mIoU: mean IoU over the classes present in the ground truth or the prediction;
    fIoU: IoU weighted by each class's share of ground-truth pixels. Both in percent."""
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    present = union > 0
    per_class = np.where(present, tp / np.maximum(union, 1), 0.0)
    frequency = conf.sum(1) / max(conf.sum(), 1)
    return {"mIoU": float(100 * per_class[present].mean()), "fIoU": float(100 * (frequency * per_class).sum())}


def rmse(prediction: np.ndarray, target: np.ndarray) -> float:
    """Root mean squared error (Table 3's depth metric)."""
    return float(np.sqrt(np.mean((prediction.astype(np.float64) - target) ** 2)))
