"""Section 4 / A.2's protocol pieces: panoptic -> semantic labels, IoU metrics, the dilated
MoCo-v2 baseline."""

import numpy as np
import pytest
import torch

from pico import metrics, model, panoptic

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 3, "name": "car", "isthing": 1},
    {"id": 184, "name": "tree-merged", "isthing": 0},
    {"id": 149, "name": "road", "isthing": 0},
]


def encode(ids: np.ndarray) -> np.ndarray:
    """Segment ids -> COCO's RGB panoptic encoding."""
    return np.stack([ids % 256, ids // 256 % 256, ids // 65536], axis=-1).astype(np.uint8)


def test_panoptic_to_semantic_on_a_hand_made_annotation():
    ids = np.array([[0, 300, 300], [70000, 300, 5], [5, 5, 9]])  # 0: void; 9: no segment info
    segments = [{"id": 300, "category_id": 1}, {"id": 70000, "category_id": 3}, {"id": 5, "category_id": 149}]
    png = encode(ids)
    assert (panoptic.rgb_to_id(png) == ids).all()
    labels = panoptic.label_map(CATEGORIES)
    assert labels == {1: 0, 3: 0, 149: 1, 184: 2}  # things share 0; stuff by ascending id
    assert panoptic.class_names(CATEGORIES) == ["things", "road", "tree-merged"]
    expected = np.array([[255, 0, 0], [0, 0, 1], [1, 1, 255]], np.uint8)
    np.testing.assert_array_equal(panoptic.semantic(png, segments, labels), expected)


def test_miou_and_fiou_against_a_hand_computed_confusion_matrix():
    target = np.array([0, 0, 0, 0, 1, 1, 2, 2, 255, 255])
    prediction = np.array([0, 0, 0, 1, 1, 2, 2, 2, 0, 1])
    conf = metrics.confusion(target, prediction, 3)
    np.testing.assert_array_equal(conf, [[3, 1, 0], [0, 1, 1], [0, 0, 2]])
    # IoU: class 0 = 3 / (3 + 1) = .75; class 1 = 1 / (1 + 1 + 1) = 1/3; class 2 = 2 / (2 + 1) = 2/3
    result = metrics.iou(conf)
    assert result["mIoU"] == pytest.approx(100 * (0.75 + 1 / 3 + 2 / 3) / 3)
    assert result["fIoU"] == pytest.approx(100 * (0.5 * 0.75 + 0.25 / 3 + 0.25 * 2 / 3))


def test_classes_absent_everywhere_do_not_count_in_the_mean():
    conf = metrics.confusion(np.array([0, 0, 1]), np.array([0, 0, 1]), 4)
    assert metrics.iou(conf) == {"mIoU": 100.0, "fIoU": 100.0}


def test_depth_rmse():
    assert metrics.rmse(np.array([1.0, 2.0, np.nan]), np.array([1.0, 4.0, 9.0])) == pytest.approx(np.sqrt(2))


def test_dilated_resnet_gives_a_quarter_resolution_map():
    net = model.dilated_encoder("resnet50", None).eval()  # torchvision dilates Bottleneck blocks only
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 2048, 16, 24)
    dilations = [m.dilation for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert max(dilations) == (8, 8)  # layer2 x2, layer3 x4, layer4 x8
