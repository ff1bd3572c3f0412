"""COCO panoptic annotations -> semantic labels as in Panoptic FPN (Kirillov et al. 2019) and
appendix A.2.1: every "thing" pixel gets one shared label, each "stuff" category its own.

Labels: 0 = things; 1..S = stuff categories in ascending category id; 255 = unlabelled (void,
ignored by the loss and the metrics). COCO 2017 has 53 stuff categories, so 54 classes.
"""

from __future__ import annotations

import numpy as np

IGNORE = 255


def rgb_to_id(png: np.ndarray) -> np.ndarray:
    """Segment ids of a panoptic PNG (H, W, 3) RGB: id = R + 256 G + 256² B (COCO's encoding)."""
    png = png.astype(np.int64)
    return png[..., 0] + 256 * png[..., 1] + 256 * 256 * png[..., 2]


def label_map(categories: list[dict]) -> dict[int, int]:
    """category id -> semantic label: things 0, stuff 1..S by ascending id."""
    stuff = sorted(c["id"] for c in categories if not c["isthing"])
    labels = {c["id"]: 0 for c in categories if c["isthing"]}
    labels.update({cid: i + 1 for i, cid in enumerate(stuff)})
    return labels


def class_names(categories: list[dict]) -> list[str]:
    """Names of the semantic labels 0..S."""
    stuff = sorted((c for c in categories if not c["isthing"]), key=lambda c: c["id"])
    return ["things"] + [c["name"] for c in stuff]


def semantic(png: np.ndarray, segments: list[dict], labels: dict[int, int]) -> np.ndarray:
    """Semantic label image (H, W) uint8 of one panoptic annotation (its PNG and segments_info)."""
    ids = rgb_to_id(png)
    out = np.full(ids.shape, IGNORE, np.uint8)
    if not segments:
        return out
    seg_ids = np.array([s["id"] for s in segments])
    seg_labels = np.array([labels[s["category_id"]] for s in segments], np.uint8)
    order = np.argsort(seg_ids)
    seg_ids, seg_labels = seg_ids[order], seg_labels[order]
    pos = np.clip(np.searchsorted(seg_ids, ids), 0, len(seg_ids) - 1)
    known = seg_ids[pos] == ids
    out[known] = seg_labels[pos[known]]
    return out
