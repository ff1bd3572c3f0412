"""Section 4 / A.2's protocol pieces: panoptic -> semantic labels, IoU metrics, the dilated
MoCo-v2 baseline, the dataset readers and the linear probe."""

import shutil

import numpy as np
import pytest
import torch

from pico import datasets, metrics, model, panoptic, probe

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


def test_dilated_resnet_gives_a_quarter_resolution_map():
    net = model.dilated_encoder("resnet50", None).eval()  # torchvision dilates Bottleneck blocks only
    with torch.no_grad():
        out = net(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 2048, 16, 24)
    dilations = [m.dilation for m in net.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3)]
    assert max(dilations) == (8, 8)  # layer2 x2, layer3 x4, layer4 x8


@pytest.fixture(scope="module")
def demo_coco(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_coco")
    datasets.write_demo_coco(root, 0, 6, 3, 96, 64)
    return root


def test_the_coco_reader_takes_the_official_panoptic_layout(demo_coco):
    train = datasets.CocoPanoptic(demo_coco, "train")
    assert len(train) == 6 and train.names == ["things", "sky", "ground"]
    image, labels = train[0]
    assert image.shape == (64, 96, 3) and labels.shape == (64, 96)
    assert set(np.unique(labels)) <= {0, 1, 2} and (labels == 0).any()  # objects are visible
    assert (demo_coco / "annotations/panoptic_val2017.json").exists() and len(list((demo_coco / "val2017").glob("*.jpg"))) == 3


def test_a_missing_or_malformed_dataset_names_the_path(tmp_path, demo_coco):
    with pytest.raises(datasets.DatasetError, match=r"train2017: missing.*JPEG images"):
        datasets.CocoPanoptic(tmp_path, "train")
    broken = tmp_path / "broken"
    shutil.copytree(demo_coco, broken)
    (broken / "annotations/panoptic_val2017.json").write_text('{"images": []}')
    with pytest.raises(datasets.DatasetError, match="panoptic_val2017.json: not COCO panoptic annotations"):
        datasets.CocoPanoptic(broken, "val")


def test_the_probe_trains_only_its_classifier(demo_coco):
    net = model.DenseNet("resnet18", None, freeze_encoder=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = {"iterations": 3, "batch_size": 2, "lr": 0.1, "weight_decay": 0.0, "milestones": [2], "min_size_train": [64],
           "min_size_test": 64, "max_size": 200, "crop_size": 48, "device": "cpu"}
    train = datasets.CocoPanoptic(demo_coco, "train")
    linear = probe.LinearProbe(net, 128, train.n_classes)
    head_before = linear.classifier.weight.clone()
    probe.train(linear, train, cfg, seed=0)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert not torch.equal(head_before, linear.classifier.weight)
    scores = probe.evaluate(linear, datasets.CocoPanoptic(demo_coco, "val"), cfg)
    assert 0 <= scores["mIoU"] <= 100 and 0 <= scores["fIoU"] <= 100


def write_png(path, array):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_voc_reader_on_a_tiny_copy_of_its_layout(tmp_path):
    root = tmp_path / "VOC2012"
    with pytest.raises(datasets.DatasetError, match="train_aug.txt: missing"):
        datasets.voc(root, "train_aug")
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train_aug.txt").write_text("2007_000032\n2007_000039\n")
    for name, cls in (("2007_000032", 1), ("2007_000039", 15)):
        write_png(root / "JPEGImages" / f"{name}.jpg", np.full((20, 30, 3), 128, np.uint8))
        labels = np.zeros((20, 30), np.uint8)
        labels[5:10, 5:10], labels[0, :] = cls, 255
        write_png(root / "SegmentationClassAug" / f"{name}.png", labels)
    data = datasets.voc(root, "train_aug")
    assert len(data) == 2 and data.n_classes == 21
    image, labels = data[1]
    assert image.shape == (20, 30, 3) and set(np.unique(labels)) == {0, 15, 255}


def test_cityscapes_reader_maps_label_ids_to_train_ids(tmp_path):
    root = tmp_path / "cityscapes"
    with pytest.raises(datasets.DatasetError, match="leftImg8bit/val: missing"):
        datasets.cityscapes(root, "val")
    image = root / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    write_png(image, np.zeros((8, 16, 3), np.uint8))
    (root / "gtFine/val/frankfurt").mkdir(parents=True)
    with pytest.raises(datasets.DatasetError, match="_gtFine_labelIds.png: missing"):
        datasets.cityscapes(root, "val")
    ids = np.array([[7, 26, 0, 33]] * 8, np.uint8).repeat(4, axis=1)  # road, car, unlabeled, bicycle
    write_png(root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png", ids)
    data = datasets.cityscapes(root, "val")
    assert data.n_classes == 19
    _, labels = data[0]
    assert labels[0, ::4].tolist() == [0, 13, 255, 18]
