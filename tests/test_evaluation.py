"""Section 4 / A.2's protocol pieces: panoptic -> semantic labels, IoU metrics, the dilated
MoCo-v2 baseline, the dataset readers, the linear probes (semantic and depth), Mask R-CNN on a
frozen FPN with COCOeval, checkpoint/resume and the detectron2 export."""

import json
import os
import re
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

from pico.evaluation import demo_data, mask_rcnn, metrics, panoptic, probe, readers, registry
from pico.learn import augment, model
from pico.learn.resume import Resumable
from pico.store import files
from picotest import run_snakemake, scheduled

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


def test_a_class_predicted_but_absent_from_the_ground_truth_does_not_lower_miou():
    """detectron2's SemSegEvaluator: the mean runs over classes with ground-truth pixels."""
    conf = np.array([[3, 0, 1], [0, 2, 0], [0, 0, 0]])  # rows: truth; class 2 only predicted (once)
    # IoU: class 0 = 3 / (4 + 3 - 3) = .75; class 1 = 2 / 2 = 1; class 2: none (no ground truth)
    result = metrics.iou(conf)
    assert result["mIoU"] == pytest.approx(100 * (0.75 + 1) / 2)  # not (.75 + 1 + 0) / 3
    assert result["fIoU"] == pytest.approx(100 * (4 / 6 * 0.75 + 2 / 6 * 1))
    # the stray pixel predicted as class 1 instead lowers class 1's IoU: it counts only as a miss of class 0
    assert metrics.iou(np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))["mIoU"] == pytest.approx(100 * (0.75 + 2 / 3) / 2)


def test_fiou_weights_each_class_by_its_share_of_ground_truth_pixels():
    conf = np.array([[90, 10], [5, 5]])  # class 0: 100 true pixels, class 1: 10
    iou0, iou1 = 90 / (100 + 95 - 90), 5 / (10 + 15 - 5)
    result = metrics.iou(conf)
    assert result["fIoU"] == pytest.approx(100 * (100 / 110 * iou0 + 10 / 110 * iou1))
    assert result["mIoU"] == pytest.approx(100 * (iou0 + iou1) / 2)
    with pytest.raises(ValueError, match="no ground-truth pixel"):
        metrics.iou(np.zeros((3, 3), np.int64))


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
    demo_data.write_demo_coco(root, 0, 6, 3, 96, 64)
    return root


@pytest.fixture(scope="module")
def demo_nyu(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo_nyu")
    demo_data.write_demo_nyu(root, 0, 6, 3, 64, 48)
    return root


DEMO_CLASSES = ["things", "disc", "box", "triangle", "ring", "sky", "ground"]


def test_the_coco_reader_takes_the_official_panoptic_layout(demo_coco):
    train = readers.CocoPanoptic(demo_coco, "train")
    assert len(train) == 6 and train.names == DEMO_CLASSES
    image, labels = train[0]
    assert image.shape == (64, 96, 3) and labels.shape == (64, 96)
    assert set(np.unique(labels)) <= set(range(1, 7)) and np.isin(labels, (1, 2, 3, 4)).any()  # objects are visible
    assert (demo_coco / "annotations/panoptic_val2017.json").exists() and len(
        list((demo_coco / "val2017").glob("*.jpg"))
    ) == 3


def test_the_demo_probe_tells_the_worlds_classes_apart_on_images_with_objects(demo_coco):
    """The paper's panoptic -> semantic rule (things share label 0) on the demo's COCO, whose
    panoptic categories are all isthing 0: each object class keeps its own label (label 0 stays
    empty), and every image shows objects on at least MIN_OBJECT_SHARE of it."""
    seen = set()
    for split in ("train", "val"):
        data = readers.CocoPanoptic(demo_coco, split)
        for i in range(len(data)):
            _, labels = data[i]
            seen |= set(np.unique(labels).tolist())
            assert np.isin(labels, (1, 2, 3, 4)).mean() >= demo_data.MIN_OBJECT_SHARE, (split, i)
    assert seen == {1, 2, 3, 4, 5, 6}  # disc, box, triangle, ring, sky, ground: 6 classes, none merged
    instances = readers.CocoInstances(demo_coco, "train")
    assert instances.names == ["background", "disc", "box", "triangle", "ring"]  # the same four, for Mask R-CNN
    assert all(instances.label_of[c] == c for c in (1, 2, 3, 4))


@pytest.mark.parametrize(
    "reader, kind, damage, what",
    [
        (readers.CocoPanoptic, "panoptic", '{"images": []}', "COCO panoptic annotations"),
        (readers.CocoInstances, "instances", '{"images": [', "COCO instance annotations"),
    ],
)
def test_a_missing_or_malformed_coco_names_the_path(tmp_path, demo_coco, reader, kind, damage, what):
    with pytest.raises(readers.DatasetError, match=r"train2017: missing.*JPEG images"):
        reader(tmp_path, "train")
    broken = tmp_path / "broken"
    shutil.copytree(demo_coco, broken)
    (broken / f"annotations/{kind}_val2017.json").write_text(damage)
    with pytest.raises(readers.DatasetError, match=f"{kind}_val2017.json: not {what}"):
        reader(broken, "val")


PROBE = {
    "iterations": 4,
    "batch_size": 2,
    "lr": 0.1,
    "weight_decay": 0.0,
    "milestones": [3],
    "warmup_iterations": 0,
    "workers": 0,
    "min_size_train": [64],
    "min_size_test": 64,
    "max_size": 200,
    "crop_size": 48,
    "device": "cpu",
    "checkpoint_every": 2,
}


def test_the_probe_trains_only_its_classifier(demo_coco):
    net = model.DenseNet("resnet18", None, freeze_encoder=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = {**PROBE, "iterations": 3, "milestones": [2]}
    train = readers.CocoPanoptic(demo_coco, "train")
    linear = probe.LinearProbe(net, 128, train.n_classes)
    head_before = linear.classifier.weight.clone()
    probe.train(linear, train, cfg, 0, probe.SEGMENTATION)
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BatchNorm statistics
    assert not torch.equal(head_before, linear.classifier.weight)
    scores = probe.evaluate(linear, readers.CocoPanoptic(demo_coco, "val"), cfg)
    assert 0 <= scores["mIoU"] <= 100 and 0 <= scores["fIoU"] <= 100


def test_probe_crops_are_padded_with_the_mean_colour_and_void_labels():
    """detectron2 clips the crop to the image and pads the normalised batch with 0 (the mean
    colour) and the labels with the ignore value, at the bottom and right."""
    mean = np.round(255 * augment.MEAN.flatten().numpy()).astype(np.uint8)
    assert probe.normalized_tensor(np.broadcast_to(mean, (2, 2, 3)).copy()).abs().max() < 0.01  # 0 = the mean colour
    short = (np.full((20, 30, 3), 200, np.uint8), np.ones((20, 30), np.uint8))  # smaller than the crop both ways
    wide = (np.full((20, 60, 3), 200, np.uint8), np.ones((20, 60), np.uint8))  # wider: cropped; lower: padded
    cfg = {"min_size_train": [20], "max_size": 1000, "crop_size": [32, 48]}
    for seed in range(6):  # both flips
        for index in (0, 1):
            image, labels = probe.training_sample([short, wide], index, cfg, np.random.default_rng(seed))
            assert image.shape == (3, 32, 48) and labels.shape == (32, 48)
            width = 30 if index == 0 else 48
            inside = np.zeros((32, 48), bool)
            inside[:20, :width] = True
            assert (image[:, ~inside] == 0).all() and (labels[~inside] == panoptic.IGNORE).all()
            assert (image[:, inside] > 0.5).all() and (labels[inside] == 1).all()


def edge_scene(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels 0-3 of a vertical edge and a horizontal one, and the image that paints them:
    red 255 right of the vertical edge, green 255 below the horizontal one, else 0."""
    y, x = np.mgrid[0:h, 0:w]
    right, below = x >= int(0.37 * w), y >= int(0.61 * h)
    image = np.stack([255 * right, 255 * below, np.zeros_like(x)], -1).astype(np.uint8)
    return image, (right + 2 * below).astype(np.uint8)


def labels_painted(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where a resized ``edge_scene`` image is pure (each channel 0 or 255, no blend across an
    edge) and the labels its colours say there."""
    pure = np.isin(image[..., 0], (0, 255)) & np.isin(image[..., 1], (0, 255))
    return pure, (image[..., 0] == 255) + 2 * (image[..., 1] == 255)


@pytest.mark.parametrize("h, w, short", [(30, 45, 10), (128, 171, 37), (120, 160, 128)])
def test_resized_labels_and_depth_sit_where_their_image_does(h, w, short):
    """Labels (``probe.resize``) and depth (``probe.square``) are resized centre-aligned with
    the bilinearly resized image: wherever the image is pure, they say what it shows.
    cv2.INTER_NEAREST puts an edge up to a pixel off on the 3x and 3.5x reductions."""
    image, labels = edge_scene(h, w)
    small, small_labels = probe.resize(image, labels, short, 10_000)
    pure, painted = labels_painted(small)
    assert pure.mean() > 0.8 and (small_labels[pure] == painted[pure]).all()
    square, depth = probe.square(image, labels.astype(np.float32), short)
    pure, painted = labels_painted(square)
    assert (depth[pure] == painted[pure]).all()


def write_png(path, array):
    import cv2

    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), array)


def test_voc_reader_on_a_tiny_copy_of_its_layout(tmp_path):
    root = tmp_path / "VOC2012"
    with pytest.raises(readers.DatasetError, match="train_aug.txt: missing"):
        readers.voc(root, "train_aug")
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train_aug.txt").write_text("2007_000032\n2007_000039\n")
    for name, cls in (("2007_000032", 1), ("2007_000039", 15)):
        write_png(root / "JPEGImages" / f"{name}.jpg", np.full((20, 30, 3), 128, np.uint8))
        labels = np.zeros((20, 30), np.uint8)
        labels[5:10, 5:10], labels[0, :] = cls, 255
        write_png(root / "SegmentationClassAug" / f"{name}.png", labels)
    data = readers.voc(root, "train_aug")
    assert len(data) == 2 and data.n_classes == 21
    image, labels = data[1]
    assert image.shape == (20, 30, 3) and set(np.unique(labels)) == {0, 15, 255}


def test_an_evaluation_split_without_a_labelled_pixel_is_an_error_naming_its_labels(tmp_path):
    root = tmp_path / "VOC2012"
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/val.txt").write_text("2007_000033\n")
    write_png(root / "JPEGImages/2007_000033.jpg", np.full((16, 24, 3), 128, np.uint8))
    write_png(root / "SegmentationClassAug/2007_000033.png", np.full((16, 24), 255, np.uint8))  # all void
    linear = probe.LinearProbe(torch.nn.AvgPool2d(4), 3, 21)  # any features at 1/4
    cfg = {"min_size_test": 16, "max_size": 100, "device": "cpu"}
    with pytest.raises(readers.DatasetError, match="SegmentationClassAug: no ground-truth pixel"):
        probe.evaluate(linear, readers.voc(root, "val"), cfg)


def test_cityscapes_reader_maps_label_ids_to_train_ids(tmp_path):
    root = tmp_path / "cityscapes"
    with pytest.raises(readers.DatasetError, match="leftImg8bit/val: missing"):
        readers.cityscapes(root, "val")
    image = root / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
    write_png(image, np.zeros((8, 16, 3), np.uint8))
    (root / "gtFine/val/frankfurt").mkdir(parents=True)
    with pytest.raises(readers.DatasetError, match="_gtFine_labelIds.png: missing"):
        readers.cityscapes(root, "val")
    ids = np.array([[7, 26, 0, 33]] * 8, np.uint8).repeat(4, axis=1)  # road, car, unlabeled, bicycle
    write_png(root / "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_labelIds.png", ids)
    data = readers.cityscapes(root, "val")
    assert data.n_classes == 19
    _, labels = data[0]
    assert labels[0, ::4].tolist() == [0, 13, 255, 18]


def test_a_preempted_probe_resumes_exactly_where_it_stopped(demo_coco, tmp_path):
    train = readers.CocoPanoptic(demo_coco, "train")

    def probe_after(resume, stop_at=None):
        torch.manual_seed(0)
        linear = probe.LinearProbe(model.DenseNet("resnet18", None, True), 128, train.n_classes)
        calls = []

        def sample(*args):  # SLURM's SIGTERM arrives during iteration ``stop_at``
            calls.append(1)
            if len(calls) == 2 * stop_at if stop_at else False:
                os.kill(os.getpid(), signal.SIGTERM)
            return probe.training_sample(*args)

        task = probe.Task(sample, probe.segmentation_loss, probe.evaluate)
        probe.train(linear, train, PROBE, 0, task, resume)
        return linear.classifier.weight.detach().clone(), len(calls)  # calls: 2 samples per step run

    straight, samples = probe_after(None)
    assert samples == 2 * PROBE["iterations"]
    path = tmp_path / "checkpoint.pt"
    with pytest.raises(SystemExit, match="pre-empted by SIGTERM at iteration 1"):
        probe_after(Resumable(path, "settings", PROBE["checkpoint_every"]), stop_at=1)
    assert path.exists() and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handlers given back
    weights, samples = probe_after(Resumable(path, "settings", 2))
    assert torch.equal(weights, straight) and samples == 2 * (PROBE["iterations"] - 1)  # resumed after step 1
    weights, samples = probe_after(Resumable(path, "settings", 2))
    assert torch.equal(weights, straight) and samples == 0  # saved after the last step: nothing to redo
    # a checkpoint of other settings is not resumed from: the run starts over
    weights, samples = probe_after(Resumable(path, "other settings", 2))
    assert torch.equal(weights, straight) and samples == 2 * PROBE["iterations"]


def test_loader_workers_change_nothing_but_speed(demo_coco):
    """Batches are built ahead by forked workers; each is a function of its iteration alone."""
    train = readers.CocoPanoptic(demo_coco, "train")
    weights = []
    for workers in (0, 2):
        torch.manual_seed(0)
        linear = probe.LinearProbe(model.DenseNet("resnet18", None, True), 128, train.n_classes)
        probe.train(linear, train, {**PROBE, "workers": workers}, 0, probe.SEGMENTATION)
        weights.append(linear.classifier.weight.detach().clone())
    assert torch.equal(*weights)


def test_the_nyu_reader_takes_the_virb_layout(tmp_path, demo_nyu):
    data = readers.NyuDepth(demo_nyu, "train", depth_scale=0.001)
    image, depth = data[0]
    assert len(data) == 6 and image.shape == (48, 64, 3) and depth.dtype == np.float32
    assert 1.0 < depth.min() and depth.max() <= 50.0  # metres: objects, ground, sky at 50 m
    root = tmp_path / "nyu"
    with pytest.raises(readers.DatasetError, match=r"test/images: missing or empty.*ViRB"):
        readers.NyuDepth(root, "test")
    write_png(root / "test/images/0001.png", np.zeros((6, 8, 3), np.uint8))
    write_png(root / "test/images/0002.png", np.zeros((6, 8, 3), np.uint8))
    write_png(root / "test/depths/0001.png", np.full((6, 8), 1500, np.uint16))
    with pytest.raises(readers.DatasetError, match="2 images but 1 depth maps"):
        readers.NyuDepth(root, "test")
    import cv2

    assert cv2.imwrite(str(root / "test/depths/0002.tiff"), np.full((6, 8), 2.5, np.float32))
    data = readers.NyuDepth(root, "test")
    assert data[0][1][0, 0] == 1500 and data[1][1][0, 0] == pytest.approx(2.5)
    write_png(root / "test/depths/0001.png", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(readers.DatasetError, match="0001.png: expected a single-channel depth map"):
        data[0]


def test_the_depth_probe_learns_l1_on_measured_pixels_and_scores_rmse(demo_nyu):
    prediction = torch.tensor([[[[1.0, 2.0], [3.0, 9.0]]]])
    depth = torch.tensor([[[[2.0, 2.0], [1.0, 0.0]]]])  # 0: not measured
    assert probe.depth_loss(prediction, depth).item() == pytest.approx((1 + 0 + 2) / 3)
    assert metrics.rmse(np.array([1.0, 2.0, 3.0]), np.array([2.0, 2.0, 1.0])) == pytest.approx(np.sqrt(5 / 3))
    net = model.DenseNet("resnet18", None, freeze_encoder=True)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    cfg = {
        "iterations": 3,
        "batch_size": 2,
        "lr": 0.001,
        "weight_decay": 0.0,
        "milestones": [2],
        "warmup_iterations": 0,
        "workers": 0,
        "size": 32,
        "device": "cpu",
        "depth_scale": 0.001,
        "checkpoint_every": 10,
    }
    scores = probe.run(net, 128, "nyu_depth", demo_nyu, cfg=cfg, seed=0)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert set(scores) == {"RMSE"} and 0 < scores["RMSE"] < 50


def test_cocoeval_scores_perfect_and_shifted_detections(demo_coco):
    val = readers.CocoInstances(demo_coco, "val")
    assert val.names == ["background", "disc", "box", "triangle", "ring"] and len(val) == 3
    anns = [a for a in val.coco.dataset["annotations"]]
    perfect = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "bbox": a["bbox"]} for a in anns
    ]
    masks = [
        {"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0, "segmentation": a["segmentation"]}
        for a in anns
    ]
    assert mask_rcnn.coco_ap(val.coco, perfect, masks) == pytest.approx(dict.fromkeys(mask_rcnn.METRICS, 100.0))
    shifted = [{**d, "bbox": [d["bbox"][0] + d["bbox"][2] / 3, *d["bbox"][1:]]} for d in perfect]  # IoU 0.5
    scores = mask_rcnn.coco_ap(val.coco, shifted, [])
    assert scores["AP75_bb"] == 0 and 0 < scores["AP_bb"] < scores["AP50_bb"] <= 100 and scores["AP_mk"] == 0


def test_coco_instances_reader_gives_torchvision_targets(demo_coco):
    train = readers.CocoInstances(demo_coco, "train")
    target = train.target(0)
    n = len(target["labels"])
    assert n > 0 and target["boxes"].shape == (n, 4) and target["masks"].shape == (n, 64, 96)
    x0, y0, x1, y1 = target["boxes"][0]
    ys, xs = np.nonzero(target["masks"][0])
    assert (x0, y0, x1 - 1, y1 - 1) == pytest.approx((xs.min(), ys.min(), xs.max(), ys.max()), abs=1)
    assert set(target["labels"]) <= {1, 2, 3, 4}


def test_detectron2s_warmup_and_step_schedule():
    cfg = {"lr": 0.02, "milestones": [6, 8], "warmup_iterations": 4}
    lrs = [probe.learning_rate(cfg, i) for i in range(9)]
    warm = [0.02 * (0.001 + 0.999 * k / 4) for k in (1, 2, 3, 4)]
    assert lrs == pytest.approx([*warm, 0.02, 0.02, 0.002, 0.002, 0.0002])
    assert probe.learning_rate({**cfg, "warmup_iterations": 0}, 0) == 0.02


def test_mask_rcnn_trains_its_heads_only_on_a_frozen_fpn(demo_coco):
    net = model.DenseNet("resnet18", None, freeze_encoder=True)
    frozen = {k: v.clone() for k, v in net.backbone.state_dict().items()}
    cfg = {
        "iterations": 2,
        "batch_size": 2,
        "lr": 0.005,
        "weight_decay": 1e-4,
        "milestones": [1],
        "warmup_iterations": 1,
        "workers": 0,
        "min_size_train": [64],
        "min_size_test": 64,
        "max_size": 128,
        "proposals_train": 50,
        "proposals_test": 50,
        "rois_per_image": 32,
        "device": "cpu",
    }
    train = readers.CocoInstances(demo_coco, "train")
    torch.manual_seed(0)
    detector = mask_rcnn.FrozenFPNMaskRCNN(net.backbone, train.n_classes, cfg)
    heads = {k: v.clone() for k, v in detector.roi_heads.state_dict().items()}
    mask_rcnn.train(detector, train, cfg, 0)
    assert all(torch.equal(frozen[k], v) for k, v in net.backbone.state_dict().items())  # BatchNorm statistics too
    assert any(not torch.equal(heads[k], v) for k, v in detector.roi_heads.state_dict().items())
    assert detector.training and not detector.backbone.training


def test_detectron2_export_renames_every_backbone_and_fpn_weight():
    backbone = model.backbone("resnet50", None, freeze=True)
    state = backbone.state_dict()
    exported = mask_rcnn.detectron2_state(backbone)["model"]
    assert len(exported) == sum(not k.endswith("num_batches_tracked") for k in state)
    assert {k.split(".")[2] for k in exported if k.startswith("backbone.bottom_up.")} == {
        "stem",
        "res2",
        "res3",
        "res4",
        "res5",
    }
    assert {k.split(".")[1] for k in exported if "fpn" in k} == {
        f"fpn_{kind}{i}" for kind in ("lateral", "output") for i in (2, 3, 4, 5)
    }
    assert torch.equal(
        exported["backbone.bottom_up.res3.0.shortcut.norm.running_var"], state["body.layer2.0.downsample.1.running_var"]
    )
    assert torch.equal(exported["backbone.bottom_up.res5.2.conv3.weight"], state["body.layer4.2.conv3.weight"])
    assert torch.equal(exported["backbone.fpn_output2.bias"], state["fpn.layer_blocks.0.0.bias"])


def test_the_demo_yields_every_benchmark_table(demo):
    tables = {
        name: json.loads((demo / f"results/{name}.json").read_text())
        for name in ("coco_probe", "coco_maskrcnn", "nyu_depth")
    }
    for name, table in tables.items():
        assert table["demo"] and "DEMO" in table["benchmark"]
        methods = [r["method"] for r in table["rows"]]
        assert set(methods) >= {"pico", "static_video", "static_frame"}
        assert ("moco_v2" in methods) == (name != "coco_maskrcnn")
        assert all(isinstance(r[m], float) for r in table["rows"] for m in registry.METRICS[name])
    row = json.loads((demo / "results/benchmarks/coco_maskrcnn/pico/demo/anchor/g0_d4.json").read_text())
    assert row["checkpoint_sha256"] and "device" not in row["config"]


def test_detectron2_export_and_runtime_settings_through_snakemake(demo):
    run_snakemake(demo, "detectron2")
    saved = torch.load(
        demo / "results/models/pico/demo/anchor/g0_d4/detectron2.pth", weights_only=True
    )  # plain torch.load
    assert "backbone.bottom_up.stem.conv1.weight" in saved["model"] and "backbone.fpn_lateral5.bias" in saved["model"]
    # where and how often a benchmark checkpoints change no result: nothing reruns
    runtime = {
        "benchmarks": {"probe": {"device": "auto", "checkpoint_every": 7, "workers": 3}, "maskrcnn": {"device": "auto"}}
    }
    out = run_snakemake(demo, "benchmarks", "-n", config=runtime)
    assert scheduled(out.stdout) == {}, out.stdout


def test_a_damaged_benchmark_result_is_an_error_naming_it_when_a_table_reads_it(tmp_path):
    """The table scripts read every result through ``pico.store.files.read_json`` (and write
    every one through ``write_json``)."""
    path = tmp_path / "moco_v2.json"
    path.write_text('{"method": "moco_v2", "mIoU": 1')  # cut short
    with pytest.raises(ValueError, match=re.escape(f"{path}: not readable JSON")):
        files.read_json(path)
    scripts = (Path(__file__).parents[1] / "workflow/scripts").glob("*.py")
    assert not [s.name for s in scripts if re.search(r"json\.(load|dump)", s.read_text())]  # no other JSON I/O


def test_write_json_writes_the_bytes_each_writer_wrote_before(tmp_path):
    """Results are indented by 2 (the default), health summaries by 1, the availability report
    also key-sorted, the demo COCO annotations on one line; never a trailing newline."""
    data = {"b": 1.5, "a": [2, None]}
    for options in ({}, {"indent": 1}, {"indent": 1, "sort_keys": True}, {"indent": None}):
        files.write_json(data, tmp_path / "out.json", **options)
        assert (tmp_path / "out.json").read_text() == json.dumps(data, **{"indent": 2, **options})
