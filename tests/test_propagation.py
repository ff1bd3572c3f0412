"""The label-propagation benchmark (pico.evaluation.propagation): DAVIS's J and F on masks with
known answers, propagation with features whose answer is known, the tiling against a direct
computation, the DAVIS-2017 reader on folders written here, the demo videos, the table and the
workflow's plan."""

import json
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from PIL import Image

import pico.config
import pico.plan
from pico.evaluation import propagation
from pico.evaluation.readers import DatasetError
from pico.learn.model import STRIDE
from picotest import run_snakemake, scheduled


def square(size=64, top=10, left=10, side=20) -> np.ndarray:
    mask = np.zeros((size, size), bool)
    mask[top : top + side, left : left + side] = True
    return mask


# --- J and F --------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [1, 3, 7])
def test_j_of_a_square_shifted_by_k_pixels_is_its_overlap_over_its_union(k):
    truth, predicted = square(), square(left=10 + k)
    overlap = 20 * (20 - k)
    assert propagation.region_similarity(truth, predicted) == pytest.approx(overlap / (2 * 400 - overlap))


def test_an_empty_prediction_scores_zero_and_two_empty_masks_one():
    empty = np.zeros((64, 64), bool)
    assert propagation.region_similarity(square(), empty) == 0.0
    assert propagation.boundary_measure(square(), empty) == 0.0
    assert propagation.region_similarity(empty, empty) == 1.0  # DAVIS: an absent object, predicted absent
    assert propagation.boundary_measure(empty, empty) == 1.0


def test_a_boundary_within_the_tolerance_matches_one_beyond_it_does_not():
    assert propagation.boundary_tolerance((64, 64)) == 1  # ceil(0.008 x 90.5)
    one_off = square(left=11)
    assert propagation.boundary_measure(square(), one_off) == 1.0
    assert propagation.region_similarity(square(), one_off) < 1.0
    assert propagation.boundary_measure(square(), square(left=13)) < 0.8  # its sides 3 px off: unmatched


def test_the_tolerance_at_480p_and_the_disk():
    assert propagation.boundary_tolerance((480, 854)) == 8  # ceil(0.008 x 979.7)
    disk = propagation.disk(2)
    assert disk.shape == (5, 5) and disk.sum() == 13 and disk[0, 2] == 1 and disk[0, 1] == 0


def test_the_boundary_is_the_masks_edge_pixels_but_not_the_images_edge():
    edge = propagation.boundary(square(size=8, top=2, left=2, side=4))
    assert edge.sum() == 12 and not edge[3:5, 3:5].any()
    assert not propagation.boundary(np.ones((8, 8), bool)).any()  # a mask covering the frame has no boundary


def test_void_pixels_count_for_nothing():
    void = np.zeros((64, 64), bool)
    void[:, 30:] = True
    assert propagation.region_similarity(square(), square(left=20), void) == 200 / 400  # cols 30-39 are void
    grown = square() | void  # everything extra lies in the void
    assert propagation.region_similarity(square(), grown, void) == 1.0


def test_the_first_and_last_frames_are_not_scored_and_objects_are_averaged():
    truth = [np.where(square(), 1, 0).astype(np.uint8) + np.where(square(left=40), 2, 0).astype(np.uint8)] * 4
    predicted = [truth[0].copy() for _ in range(3)]  # frames 1, 2, 3
    predicted[2][:] = 0  # the last frame wrong: not scored
    predicted[1][predicted[1] == 2] = 0  # object 2 lost in frame 2
    rows = propagation.score_video(truth, predicted, [1, 2])
    assert rows == [{"object": 1, "J": 1.0, "F": 1.0}, {"object": 2, "J": 0.5, "F": 0.5}]
    got = propagation.summary([{"video": "a", "frames": 4, "objects": rows}])
    assert (got["J_mean"], got["F_mean"], got["JF_mean"], got["n_objects"]) == (0.75, 0.75, 0.75, 2)


# --- propagation ----------------------------------------------------------------------------


class PositionFeatures(nn.Module):
    """A network whose feature at cell (y, x) of frame t is the one-hot of content position
    (y, x - shift * t): the world moves ``shift`` cells right a frame (0: a static video). Each
    call is the next frame."""

    def __init__(self, shift: int = 0, frames: int = 8):
        super().__init__()
        self.shift, self.frames, self.t = shift, frames, 0

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        h, w = -(-image.shape[2] // STRIDE), -(-image.shape[3] // STRIDE)
        width = w + self.shift * self.frames  # content positions that enter from the left stay distinct
        y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        index = y * width + x - self.shift * self.t + self.shift * self.frames
        self.t += 1
        return F.one_hot(index, h * width).permute(2, 0, 1).float()[None]


def moving_masks(frames: int, shift_px: int) -> list[np.ndarray]:
    """Two objects on a 48 x 96 frame, aligned to the 4-px cells, moving ``shift_px`` right a
    frame; never within the 3-cell radius of column 0, where unseen content enters. Bands the
    frame's height: bilinear upsampling from cells rounds a corner off by a pixel."""
    out = []
    for t in range(frames):
        ids = np.zeros((48, 96), np.uint8)
        ids[:, 20 + shift_px * t : 32 + shift_px * t] = 1
        ids[:, 36 + shift_px * t : 48 + shift_px * t] = 2
        out.append(ids)
    return out


@pytest.mark.parametrize("shift", [0, 1])
def test_features_that_know_the_motion_propagate_the_masks_exactly(shift):
    """Static (shift 0) and a world moving one cell a frame: every scored frame's masks are right."""
    truth = moving_masks(6, STRIDE * shift)
    frames = [np.zeros((48, 96, 3), np.uint8)] * 6  # the features ignore the pixels
    predicted = propagation.segment(
        PositionFeatures(shift, 6),
        frames,
        truth[0],
        [1, 2],
        short_side=48,
        context=2,
        topk=5,
        temperature=0.07,
        radius_px=12,
        device=torch.device("cpu"),
    )
    assert len(predicted) == 5
    assert propagation.score_video(truth, predicted, [1, 2]) == [
        {"object": 1, "J": 1.0, "F": 1.0},
        {"object": 2, "J": 1.0, "F": 1.0},
    ]


def direct_propagation(query, keys, labels, *, topk, temperature, radius):
    """The same y_t computed the plain way: every query against every key, no tiles."""
    frames, channels, h, w = keys.shape
    affinity = torch.einsum("cq,tck->qtk", query.flatten(1), keys.flatten(2))
    y, x = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    far = (y.reshape(-1, 1) - y.reshape(1, -1)) ** 2 + (x.reshape(-1, 1) - x.reshape(1, -1)) ** 2 > radius**2
    top, index = affinity.masked_fill(far[:, None], -torch.inf).flatten(1).topk(topk, dim=1)
    values = labels.permute(0, 2, 3, 1).reshape(-1, labels.shape[1])
    return ((top / temperature).softmax(1)[..., None] * values[index]).sum(1).T.reshape(-1, h, w)


@pytest.mark.parametrize("chunk", [1 << 10, 1 << 24])
def test_tiles_give_the_direct_computation(monkeypatch, chunk):
    monkeypatch.setattr(propagation, "CHUNK", chunk)  # 2 x 2 tiles or the whole map in one
    generator = torch.Generator().manual_seed(0)
    keys = F.normalize(torch.randn(3, 16, 13, 11, generator=generator), dim=1)
    query = F.normalize(torch.randn(16, 13, 11, generator=generator), dim=0)
    labels = torch.rand(3, 4, 13, 11, generator=generator)
    settings = {"topk": 7, "temperature": 0.1, "radius": 3.5}
    got = propagation.propagate_frame(query, keys, labels, **settings)
    torch.testing.assert_close(got, direct_propagation(query, keys, labels, **settings))


def test_a_tiles_affinities_fit_the_chunk_at_480p():
    """480p at stride 4 (120 x 214 cells), context 20 + the first frame, 96 px = 24 cells."""
    side = propagation.tile_side(21, 24)
    assert side >= 1 and side**2 * 21 * (side + 2 * 24) ** 2 <= propagation.CHUNK


@pytest.mark.parametrize(
    "settings, key, words",
    [
        ({"topk": 0}, "benchmarks.propagation.topk", "less than the minimum of 1"),
        ({"temperature": 0}, "benchmarks.propagation.temperature", "less than or equal to the minimum of 0"),
        ({"radius_px": -4}, "benchmarks.propagation.radius_px", "less than or equal to the minimum of 0"),
        ({"short_side": 8}, "benchmarks.propagation.short_side", "less than the minimum of 16"),
        ({"root": "no/such/DAVIS"}, "benchmarks.propagation.root", "does not exist"),
        ({"contxt": 20}, "benchmarks.propagation", "contxt"),
    ],
)
def test_bad_settings_are_rejected_naming_the_key(settings, key, words, repo):
    config = {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"propagation": settings}}
    with pytest.raises(pico.config.ConfigError) as error:
        pico.config.validate(config, repo / "workflow/schemas/config.schema.yaml")
    assert f"{key}: " in str(error.value) and words in str(error.value)


def test_the_radius_scales_with_the_short_side_unless_set():
    config = {"frames": {"short_side": 128}, "benchmarks": {"propagation": {"root": None, "radius_px": None}}}
    config["benchmarks"]["propagation"].update(short_side=None, demo_videos=4, device="cpu")
    assert pico.plan.propagation_settings(config)["radius_px"] == pytest.approx(25.6)
    config["benchmarks"]["propagation"].update(short_side=480)
    assert pico.plan.propagation_settings(config)["radius_px"] == 96
    config["benchmarks"]["propagation"].update(radius_px=40)
    assert pico.plan.propagation_settings(config)["radius_px"] == 40


# --- DAVIS-2017 on disk ---------------------------------------------------------------------


def write_davis(root, videos=("bear", "car"), frames=3):
    """A tiny DAVIS-2017 tree, written with PIL and OpenCV directly (not the module's writer)."""
    (root / "ImageSets/2017").mkdir(parents=True)
    (root / "ImageSets/2017/val.txt").write_text("".join(f"{v}\n" for v in videos))
    for n, video in enumerate(videos, 1):
        (root / "JPEGImages/480p" / video).mkdir(parents=True)
        (root / "Annotations/480p" / video).mkdir(parents=True)
        for t in range(frames):
            cv2.imwrite(str(root / f"JPEGImages/480p/{video}/{t:05d}.jpg"), np.full((24, 32, 3), 40 * t, np.uint8))
            ids = np.zeros((24, 32), np.uint8)
            ids[4:12, 4 + t : 12 + t] = n
            ids[0, 0] = 255
            png = Image.fromarray(ids).convert("P")
            png.putpalette([v for i in range(256) for v in (i, 255 - i, 0)])
            png.save(root / f"Annotations/480p/{video}/{t:05d}.png")


def test_the_davis_reader_reads_ids_not_colours(tmp_path):
    write_davis(tmp_path)
    videos = propagation.davis_videos(tmp_path)
    assert [v.name for v in videos] == ["bear", "car"] and len(videos[1].frames) == 3
    frames, ids = propagation.load(videos[1])
    assert frames[0].shape == (24, 32, 3) and ids[2].dtype == np.uint8
    assert sorted(np.unique(ids[2])) == [0, 2, 255] and ids[2][4, 6] == 2 and ids[2][4, 5] == 0
    assert propagation.first_frame_objects(ids[0], videos[1].annotations[0]) == [2]


def rgb_annotation(root):
    path = root / "Annotations/480p/car/00001.png"
    Image.new("RGB", (32, 24)).save(path)
    return path, "a RGB image"


def garbage_annotation(root):
    path = root / "Annotations/480p/car/00002.png"
    path.write_bytes(b"not a png")
    return path, "unreadable PNG"


def missing_annotation(root):
    path = root / "Annotations/480p/bear/00001.png"
    path.unlink()
    return path, "missing"


def missing_listing(root):
    path = root / "ImageSets/2017/val.txt"
    path.unlink()
    return path, "missing"


def wrong_size_annotation(root):
    path = root / "Annotations/480p/car/00000.png"
    Image.new("P", (16, 24)).save(path)
    return path, "must be its frame's size"


def empty_first_frame(root):
    path = root / "Annotations/480p/car/00000.png"
    Image.new("P", (32, 24)).save(path)
    return path, "no object"


@pytest.mark.parametrize(
    "damage",
    [rgb_annotation, garbage_annotation, missing_annotation, missing_listing, wrong_size_annotation, empty_first_frame],
)
def test_a_malformed_dataset_is_an_error_naming_the_file(tmp_path, damage):
    write_davis(tmp_path)
    path, reason = damage(tmp_path)
    with pytest.raises(DatasetError) as error:
        for video in propagation.davis_videos(tmp_path):
            frames, ids = propagation.load(video)
            propagation.first_frame_objects(ids[0], video.annotations[0])
    assert str(path) in str(error.value) and reason in str(error.value)


# --- demo videos, the table, the workflow ---------------------------------------------------


def test_demo_videos_are_davis_folders_of_tracked_objects(tmp_path):
    propagation.write_demo_videos(tmp_path / "a", seed=0, count=2, short_side=32)
    (video, other) = propagation.davis_videos(tmp_path / "a")
    frames, ids = propagation.load(video)
    assert video.name == "demo00" and len(frames) == 30 and frames[0].shape == (64, 86, 3)
    objects = propagation.first_frame_objects(ids[0], video.annotations[0])
    assert objects == list(range(1, len(objects) + 1))  # numbered 1, 2, ...
    assert any((a != b).any() for a, b in zip(ids, ids[1:]))  # the objects move
    rgb, truth = propagation.demo_clip(0, 0, width=86, height=64)
    assert all((a == b).all() for a, b in zip(ids, truth))  # the PNGs hold the true ids
    assert not all((a == b).all() for a, b in zip(ids, propagation.load(other)[1]))


def test_the_table_has_one_row_per_model_moco_v2_first():
    scores = {"J_mean": 0.5, "F_mean": 0.7, "JF_mean": 0.6, "n_objects": 17, "videos": []}
    results = [
        {"method": m, "dataset": d, "model": name, "seconds": 1, **scores}
        for m, d, name in (("pico", "demo", "pico/demo/anchor/g0_d4"), ("moco_v2", None, "moco_v2"))
    ]
    table = propagation.table(results, demo=True)
    assert list(table) == ["benchmark", "demo", "rows"] and table["demo"] is True and "DEMO" in table["benchmark"]
    assert [r["model"] for r in table["rows"]] == ["moco_v2", "pico/demo/anchor/g0_d4"]
    assert all(
        list(r) == ["method", "model", "dataset", "J_mean", "F_mean", "JF_mean", "n_objects"] for r in table["rows"]
    )
    assert json.loads(json.dumps(table)) == table


def test_the_demo_plans_one_job_per_model_and_the_baseline_and_all_includes_it(tmp_path, repo):
    out = run_snakemake(tmp_path, "all", "-n", "--configfile", str(repo / "config/config.yaml"))
    jobs = scheduled(out.stdout)
    assert {k: v for k, v in jobs.items() if "propagation" in k} == {
        "demo_propagation": 1,
        "propagation_model": 3,
        "propagation_moco_v2": 1,
        "propagation_table": 1,
        "propagation_report": 1,
    }


def test_a_davis_root_replaces_the_demo_and_a_missing_one_is_named(tmp_path, repo):
    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config["benchmarks"]["propagation"] = {"root": str(tmp_path / "DAVIS"), "device": "cpu"}
    out = run_snakemake(tmp_path / "run", "propagation_moco_v2", "-n", config=config, check=False)
    assert out.returncode != 0 and "benchmarks.propagation.root" in out.stdout + out.stderr
    write_davis(tmp_path / "DAVIS")
    out = run_snakemake(tmp_path / "run", "results/benchmarks/propagation/moco_v2.json", "-n", config=config)
    assert scheduled(out.stdout) == {"propagation_moco_v2": 1} and str(tmp_path / "DAVIS") in out.stdout


@pytest.mark.slow
def test_a_demo_run_of_the_baseline_writes_its_result(tmp_path, repo):
    """The baseline on one demo video at a 32-pixel short side, end to end through the reader."""
    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    config["benchmarks"]["propagation"] = {"demo_videos": 1, "short_side": 32, "device": "cpu"}
    run_snakemake(tmp_path, "results/benchmarks/propagation/moco_v2.json", config=config)
    result = json.loads((tmp_path / "results/benchmarks/propagation/moco_v2.json").read_text())
    assert result["model"] == "moco_v2" and result["demo"] is True and result["benchmark"] == "propagation"
    assert result["config"]["radius_px"] == pytest.approx(6.4) and result["config"]["short_side"] == 32
    (video,) = result["videos"]
    assert video["video"] == "demo00" and len(video["objects"]) == result["n_objects"] >= 1
    assert 0 <= result["J_mean"] <= 1 and 0 <= result["F_mean"] <= 1
    assert result["JF_mean"] == pytest.approx((result["J_mean"] + result["F_mean"]) / 2)
    assert math.isfinite(result["seconds"])


def test_demo_produces_the_propagation_table(demo):
    """The contract of results/propagation.json, from the demo's whole run."""
    table = json.loads((demo / "results/propagation.json").read_text())
    assert list(table) == ["benchmark", "demo", "rows"] and table["demo"] is True and "DEMO" in table["benchmark"]
    assert [r["method"] for r in table["rows"]] == ["moco_v2", "pico", "static_frame", "static_video"]
    assert [r["dataset"] for r in table["rows"]] == [None, "demo", "demo", "demo"]
    for row in table["rows"]:
        assert list(row) == ["method", "model", "dataset", "J_mean", "F_mean", "JF_mean", "n_objects"]
        assert 0 <= row["J_mean"] <= 1 and 0 <= row["F_mean"] <= 1 and row["n_objects"] == table["rows"][0]["n_objects"]
    assert (demo / "results/tables/propagation.html").stat().st_size > 0
