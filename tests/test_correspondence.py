"""The dense-correspondence benchmark (pico.evaluation.correspondence, .groundtruth, .demo_correspondence): matching and
scoring on features with a known answer, the ground-truth readers on files written here by
independent code, the real Aloe stereo pair, the demo world's pairs and the workflow's plan."""

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from pico.data import synthetic
from pico.evaluation import correspondence, demo_correspondence, demo_data, groundtruth, registry
from pico.evaluation.readers import DatasetError
from pico.learn import model
from pico.learn.model import STRIDE
from picotest import run_snakemake, scheduled

ALOE = Path("/usr/share/doc/opencv-doc/examples/data")
H, W = 128, 171  # the demo's frame size
CELLS = (-(-H // STRIDE), -(-W // STRIDE))


def position_features(shift: tuple[float, float]) -> torch.Tensor:
    """A 1/4-resolution map whose cell at image position p holds phi(p - shift): random
    Fourier features of position (wavelengths >= ~40 px, so bilinear reads are near exact)."""
    freqs = np.random.default_rng(0).normal(0, 1 / 40, size=(64, 2))
    rows, cols = np.mgrid[0 : CELLS[0], 0 : CELLS[1]]
    x, y = correspondence.cell_centres(cols) - shift[0], correspondence.cell_centres(rows) - shift[1]
    phase = 2 * np.pi * (freqs[:, 0, None, None] * x + freqs[:, 1, None, None] * y)
    return F.normalize(torch.tensor(np.concatenate([np.cos(phase), np.sin(phase)]), dtype=torch.float32), dim=0)


def grid_points(step: int = 7) -> np.ndarray:
    return (
        np.stack(np.meshgrid(np.arange(10, W - 20, step), np.arange(10, H - 20, step)), -1)
        .reshape(-1, 2)
        .astype(np.float32)
    )


def matched(features_a, features_b, points, refinement="upsample"):
    queries = correspondence.sample(features_a, torch.from_numpy(points))
    return correspondence.match(queries, features_b, (W, H), refinement=refinement, temperature=0.2).numpy()


def test_features_that_encode_position_give_pck1_of_one_on_a_known_subcell_shift():
    shift = (5.3, -2.7)  # not a multiple of the 4-px cell
    points = grid_points()
    truth = points + np.array(shift, np.float32)
    got = correspondence.scores(matched(position_features((0, 0)), position_features(shift), points), truth)
    assert got["pck1"] == 1.0 and got["epe"] < 0.75 and got["n"] == len(points)
    # without refinement a cell's centre is up to 2.1 px off: pck1 is the share of lucky cells
    nearest = correspondence.scores(
        matched(position_features((0, 0)), position_features(shift), points, "nearest"), truth
    )
    assert nearest["pck1"] < 0.5 and nearest["pck4"] == 1.0


def chance(truth: np.ndarray, k: float) -> float:
    """pck_k of a match drawn uniformly among image b's pixels, independently of the truth:
    the mean share of b's pixels within k px of each true position."""
    y, x = np.mgrid[0:H, 0:W]
    return float(np.mean([(np.hypot(x - tx, y - ty) <= k).mean() for tx, ty in truth]))


def test_random_features_score_at_chance():
    rng = np.random.default_rng(1)
    n = 6000
    points = np.stack([rng.uniform(0, W - 1, n), rng.uniform(0, H - 1, n)], 1).astype(np.float32)
    truth = np.stack([rng.uniform(0, W - 1, n), rng.uniform(0, H - 1, n)], 1).astype(np.float32)

    def random_map():
        generator = torch.Generator().manual_seed(int(rng.integers(1 << 30)))
        return F.normalize(torch.randn(128, *CELLS, generator=generator), dim=0)

    got = correspondence.scores(matched(random_map(), random_map(), points), truth)
    for k in (4, 8):
        p = chance(truth[:1500], k)  # ~0.2 % and ~0.8 %
        sigma = np.sqrt(p * (1 - p) / n)
        assert abs(got[f"pck{k}"] - p) < 5 * sigma + 0.1 * p, (k, got[f"pck{k}"], p)
    assert got["epe"] > 40


def test_scores_count_within_k_inclusive_and_the_mean_error():
    truth = np.zeros((4, 2))
    got = correspondence.scores(np.array([[0, 0], [1, 0], [3, 4], [0, 9]], float), truth)
    assert got == {"pck1": 0.5, "pck2": 0.5, "pck4": 0.5, "pck8": 0.75, "epe": 15 / 4, "n": 4}


# --- ground truth written by independent code ---------------------------------------------


def write_flo(path: Path, u: np.ndarray, v: np.ndarray, magic: float = 202021.25) -> None:
    h, w = u.shape
    values = [c for a, b in zip(u.ravel(), v.ravel()) for c in (a, b)]
    path.write_bytes(struct.pack("<fii", magic, w, h) + struct.pack(f"<{len(values)}f", *values))


def write_png16(path: Path, values: np.ndarray) -> None:
    """A 16-bit greyscale PNG, chunk by chunk (the PNG specification, no imaging library)."""
    h, w = values.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\0" + struct.pack(f">{w}H", *row) for row in values.tolist())
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 0, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def write_pfm(path: Path, values: np.ndarray, little: bool) -> None:
    h, w = values.shape
    bottom_up = [float(x) for row in values[::-1] for x in row]
    path.write_bytes(
        f"Pf\n{w} {h}\n{-1.0 if little else 1.0}\n".encode()
        + struct.pack(("<" if little else ">") + f"{len(bottom_up)}f", *bottom_up)
    )


DISPARITY = np.array([[1.5, 0.0, 7.25], [np.inf, -2.0, 40.0]], np.float32)  # 0, inf and < 0: unknown
KNOWN = np.array([[1.5, np.nan, 7.25], [np.nan, np.nan, 40.0]], np.float32)


def test_flo_reader_on_a_middlebury_file_with_unknown_vectors(tmp_path):
    u = np.array([[0.5, 1e10, -3.0], [2.0, np.nan, 4.5]], np.float32)
    v = np.array([[1.0, 0.0, 2e9], [-1.25, 0.0, np.inf]], np.float32)
    write_flo(tmp_path / "f.flo", u, v)
    flow = groundtruth.read_flo(tmp_path / "f.flo")
    assert flow.shape == (2, 2, 3) and flow.dtype == np.float32
    expected = np.array(
        [[[0.5, np.nan, np.nan], [2.0, np.nan, np.nan]], [[1.0, np.nan, np.nan], [-1.25, np.nan, np.nan]]]
    )
    np.testing.assert_array_equal(flow, expected)


def test_flo_writer_round_trips_through_the_reader(tmp_path):
    flow = np.random.default_rng(0).normal(size=(2, 5, 7)).astype(np.float32)
    flow[:, 1, 2] = np.nan
    groundtruth.write_flo(flow, tmp_path / "w.flo")
    np.testing.assert_array_equal(groundtruth.read_flo(tmp_path / "w.flo"), flow)


@pytest.mark.parametrize("fmt", ["npy", "npz", "npz-named", "pfm-little", "pfm-big"])
def test_disparity_readers_mark_non_finite_and_non_positive_unknown(tmp_path, fmt):
    path = tmp_path / f"d.{fmt.split('-')[0]}"
    if fmt == "npy":
        np.save(path, DISPARITY)
    elif fmt == "npz":
        np.savez(path, DISPARITY)
    elif fmt == "npz-named":
        np.savez(path, disparity=DISPARITY, other=np.zeros(3))
    else:
        write_pfm(path, DISPARITY, little=fmt == "pfm-little")
    np.testing.assert_array_equal(groundtruth.read_disparity(path), KNOWN)


def test_16_bit_png_disparity_is_scaled_and_zero_is_unknown(tmp_path):
    write_png16(tmp_path / "d.png", np.array([[256, 0, 65535], [1, 512, 0]]))
    disparity = groundtruth.read_disparity(tmp_path / "d.png", scale=1 / 256)
    np.testing.assert_array_equal(disparity, np.array([[1, np.nan, 65535 / 256], [1 / 256, 2, np.nan]], np.float32))


def test_disparity_is_a_leftward_flow():
    flow = groundtruth.disparity_flow(KNOWN)
    np.testing.assert_array_equal(flow[0], -KNOWN)
    np.testing.assert_array_equal(np.isnan(flow[1]), np.isnan(KNOWN))


@pytest.mark.parametrize(
    "damage",
    [
        "truncated flo",
        "wrong magic",
        "bad pfm type",
        "bad pfm size",
        "truncated pfm",
        "three-channel png",
        "npz of two arrays",
        "unknown suffix",
    ],
)
def test_a_damaged_file_is_an_error_naming_it(tmp_path, damage):
    u = np.ones((3, 4), np.float32)
    if "flo" in damage or "magic" in damage:
        path = tmp_path / "bad.flo"
        write_flo(path, u, u, magic=202021.25 if "truncated" in damage else 1.0)
        if "truncated" in damage:
            path.write_bytes(path.read_bytes()[:-4])
        read = groundtruth.read_flo
    else:
        path = tmp_path / {"pfm": "bad.pfm", "png": "bad.png", "npz": "bad.npz"}.get(
            damage.split()[-1].replace("arrays", "npz"), "bad.tiff"
        )
        if "pfm" in damage:
            write_pfm(path, u, little=True)
            raw = path.read_bytes()
            path.write_bytes(
                {
                    "bad pfm type": raw.replace(b"Pf", b"PX", 1),
                    "bad pfm size": raw.replace(b"4 3", b"4 x", 1),
                    "truncated pfm": raw[:-1],
                }[damage]
            )
        elif "png" in damage:
            import cv2

            cv2.imwrite(str(path), np.zeros((3, 4, 3), np.uint8))
        elif "npz" in damage:
            np.savez(path, a=u, b=u)
        else:
            path.write_bytes(b"\0" * 16)
        read = groundtruth.read_disparity
    with pytest.raises(DatasetError, match=str(path)):
        read(path)


# --- pairs ---------------------------------------------------------------------------------


def test_resizing_a_pair_scales_its_truth():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
    flow = np.stack([np.full((64, 96), 8.0), np.full((64, 96), -4.0)]).astype(np.float32)
    flow[:, :, :10] = np.nan  # pixel x' of the half-size pair is pixel round(2 x' + 1/2): x' <= 4 unknown
    small = correspondence.resized(correspondence.Pair("p", image, image, flow), 32)
    assert small.image_a.shape == (32, 48, 3) and small.flow.shape == (2, 32, 48)
    np.testing.assert_allclose(small.flow[:, :, 6:], np.array([4.0, -2.0])[:, None, None] + np.zeros((2, 32, 42)))
    assert np.isnan(small.flow[:, :, :5]).all()


def test_labelled_points_are_known_and_land_inside_image_b():
    flow = np.zeros((2, 10, 12), np.float32)
    flow[0] = -5.0  # leftward: the first 5 columns leave the image
    flow[:, 7] = np.nan
    pair = correspondence.Pair("p", np.zeros((10, 12, 3), np.uint8), np.zeros((10, 12, 3), np.uint8), flow)
    a, b = correspondence.labelled_points(pair, 1000, np.random.default_rng(0))
    assert len(a) == 7 * 9 and (a[:, 0] >= 5).all() and (a[:, 1] != 7).all()
    np.testing.assert_array_equal(b, a - np.array([5, 0]))
    assert len(correspondence.labelled_points(pair, 10, np.random.default_rng(0))[0]) == 10


def test_a_point_is_labelled_only_where_it_stays_visible():
    """Background moving 2 px right; an object (instance 1) on columns 4-5 at t moves 3 px
    right and covers columns 7-8 at t + dt: background landing there is occluded."""
    instances = np.zeros((3, 12), np.uint8)
    instances[:, 4:6] = 1
    flow = np.stack([np.full((3, 12), 2.0), np.zeros((3, 12))]).astype(np.float32)
    flow[0][:, 4:6] = 3.0
    later = np.zeros((3, 12), np.uint8)
    later[:, 7:9] = 1
    visible = demo_correspondence.visible_flow({"flow": flow, "instances": instances}, {"instances": later})
    known = np.isfinite(visible).all(0)
    assert (known == known[:1]).all()  # every row alike
    # background 0-3 -> 2-5 and 7-9 -> 9-11 visible; object 4-5 -> 7-8 visible; background
    # 6 -> 8 covered by the object; 10, 11 -> 12, 13 outside the image
    assert known[0].tolist() == [True] * 6 + [False] + [True] * 3 + [False] * 2
    np.testing.assert_array_equal(visible[:, known], flow[:, known])


def test_demo_pairs_are_deterministic_with_motion_and_occlusions(tmp_path):
    (pair,) = demo_correspondence.demo_pairs(0, 3, gaps=[15], width=342, height=256)  # 15 frames: 0.5 s
    (again,) = demo_correspondence.demo_pairs(0, 3, gaps=[15], width=342, height=256)
    np.testing.assert_array_equal(pair.image_a, again.image_a)
    np.testing.assert_array_equal(pair.flow, again.flow)
    np.testing.assert_array_equal(pair.objects, again.objects)
    assert (pair.name, pair.gap) == ("demo03_gap15", 15)
    small = correspondence.resized(pair, 128)
    assert small.image_a.shape == (128, 171, 3)
    known = np.isfinite(small.flow[0])
    assert 0.5 < known.mean() < 1.0  # occluded and leaving points unlabelled, most labelled
    a, b = correspondence.labelled_points(small, 2000, np.random.default_rng(0))

    def colour(image, p):
        return image[np.round(p[:, 1]).astype(int), np.round(p[:, 0]).astype(int)].astype(float)

    assert np.median(np.abs(colour(small.image_a, a) - colour(small.image_b, b)).mean(1)) < 12  # the same content
    assert np.percentile(np.hypot(*(b - a).T), 90) > 3.0  # moving objects: several pixels, not sub-pixel


def test_demo_pairs_move_as_fast_as_their_world():
    fast = synthetic.World(speed=(0.6, 0.6), pan=(0.3, 0.3))
    motion = [
        np.nanmedian(np.hypot(*demo_correspondence.demo_pairs(0, i, gaps=[15], width=342, height=256, world=w)[0].flow))
        for w in (synthetic.World(), fast)
        for i in range(4)
    ]
    # the default world moves 0-0.08 (pan) and 0.08-0.25 (objects) short sides per second
    assert max(motion[:4]) < 0.25 * 256 * 0.5 < 0.3 * 256 * 0.5 * 0.9 < min(motion[4:])


MINI_WORLD = synthetic.World(  # config/mini.yaml's: objects leave the frame within a second or two
    speed=(0.35, 0.8), pan=(0.1, 0.35), growth=(-0.4, 0.4), spin=(-1.5, 1.5), deformation=0.25
)


@pytest.mark.parametrize("world", [synthetic.World(), MINI_WORLD], ids=["demo", "mini"])
def test_demo_pairs_have_object_points_at_every_gap(world):
    """Each scene is drawn where, at every gap, objects still visible in image b cover at
    least MIN_OBJECT_SHARE of image a, so every gap has object points to score."""
    gaps = [3, 6, 12]
    for index in range(3):
        pairs = demo_correspondence.demo_pairs(0, index, gaps=gaps, width=342, height=256, world=world)
        assert [p.gap for p in pairs] == gaps and [p.name for p in pairs] == [
            f"demo{index:02d}_gap{g:02d}" for g in gaps
        ]
        assert all(np.array_equal(p.image_a, pairs[0].image_a) for p in pairs)  # one scene at one time t
        for pair in pairs:
            assert demo_correspondence.labelled_object_share(pair) >= demo_data.MIN_OBJECT_SHARE
            small = correspondence.resized(pair, 128)
            points, _ = correspondence.scored_points(small, 2000, seed=0)
            regions = correspondence.regions(small, points)
            assert regions["object"].mean() >= 0.08 and (regions["object"] ^ regions["background"]).all()


def write_pair(root: Path, flow: np.ndarray, objects: np.ndarray, gap: int) -> dict:
    """A demo-layout pair under ``root`` (blank images, the truth, image a's object mask)."""
    spec = demo_correspondence.demo_spec(root, 0, gap)
    image = np.zeros((*objects.shape, 3), np.uint8)
    demo_data.write_image(Path(spec["image_a"]), image)
    demo_data.write_image(Path(spec["image_b"]), image)
    groundtruth.write_flo(flow, spec["flow"])
    demo_data.write_mask(Path(spec["objects"]), objects)
    return spec


def test_zero_motion_scores_the_true_motion_per_region(tmp_path):
    """6 x 12 pixels: an object on columns 0-2 moving (1.5, 2) px (error 2.5), background
    moving (6, 0) px (error 6). Known and inside image b: object rows 0-3 (12 points),
    background columns 3-5 (18 points)."""
    objects = np.zeros((6, 12), bool)
    objects[:, :3] = True
    flow = np.where(objects, np.array([1.5, 2.0])[:, None, None], np.array([6.0, 0.0])[:, None, None])
    spec = write_pair(tmp_path, flow.astype(np.float32), objects, gap=3)
    rows = correspondence.zero_motion([spec], short_side=6, points=1000, seed=0)

    def entry(region, pck4, epe, n):
        scored = {"pck1": 0.0, "pck2": 0.0, "pck4": pck4, "pck8": 1.0, "epe": pytest.approx(epe), "n": n}
        return {"pair": "demo00_gap03", "gap": 3, "region": region, **scored}

    assert rows == [
        entry("all", 12 / 30, (12 * 2.5 + 18 * 6) / 30, 30),
        entry("object", 1.0, 2.5, 12),
        entry("background", 0.0, 6.0, 18),
    ]
    result = {"model": "zero_motion", "pairs": rows}
    assert correspondence.pck(result, region="all", gap=3) == pytest.approx(0.4)
    assert correspondence.pck(result, region="background", gap=3, pixels=8) == 1.0


def test_pck_weights_each_entry_by_its_points_within_a_region_and_gap():
    def entry(pair, gap, region, pck4, n):
        return {"pair": pair, "gap": gap, "region": region, "pck4": pck4, "n": n}

    result = {
        "model": "m",
        "pairs": [
            entry("demo00_gap03", 3, "object", 0.5, 100),
            entry("demo01_gap03", 3, "object", 1.0, 300),
            entry("demo00_gap06", 6, "object", 0.0, 100),
            entry("demo00_gap03", 3, "all", 0.1, 1000),
            entry("aloe", None, "all", 0.2, 50),
        ],
    }
    assert correspondence.pck(result, region="object", gap=3) == pytest.approx((50 + 300) / 400)
    assert correspondence.pck(result, region="all", gap=None) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="no scored background points at gap 3"):
        correspondence.pck(result, region="background", gap=3)


def test_a_pair_without_an_object_mask_is_scored_on_all_its_points_alone():
    flow = np.zeros((2, 8, 8), np.float32)
    pair = correspondence.Pair("p", np.zeros((8, 8, 3), np.uint8), np.zeros((8, 8, 3), np.uint8), flow)
    points, truth = correspondence.scored_points(pair, 10, seed=0)
    (entry,) = correspondence.region_scores(pair, points, points, truth)
    assert (entry["pair"], entry["gap"], entry["region"], entry["n"], entry["pck1"]) == ("p", None, "all", 10, 1.0)


def test_the_encoder_row_is_the_stride_4_stage_of_the_encoder_the_decoders_sit_on():
    torch.manual_seed(7)  # as probe.pretrained_features seeds a model with pretrain.seed
    decoder_net = model.DenseNet("resnet18", None, freeze_encoder=True)
    c2 = registry.encoder_c2("resnet18", None, seed=7)
    body = decoder_net.backbone.body.state_dict()
    own = {
        **{f"conv1.{k}": v for k, v in c2[0].state_dict().items()},
        **{f"bn1.{k}": v for k, v in c2[1].state_dict().items()},
    }
    own |= {f"layer1.{k}": v for k, v in c2[4].state_dict().items()}
    assert all(torch.equal(body[k], v) for k, v in own.items())
    with torch.no_grad():
        assert c2(torch.zeros(1, 3, H, W)).shape == (1, 64, *CELLS)  # 1/4 of the image, rounded up
    assert not c2.training


# --- real material ---------------------------------------------------------------------------


class ColourPatches(nn.Module):
    """A trivial dense feature: each 4 x 4 cell's mean colour and its 8 neighbours', minus
    their mean (normalised cross-correlation of 12 x 12 patches)."""

    def forward(self, images):
        cells = F.avg_pool2d(images, STRIDE, ceil_mode=True)
        patches = F.unfold(cells, 3, padding=1).reshape(len(images), -1, *cells.shape[-2:])
        return patches - patches.mean(1, keepdim=True)


def aloe() -> dict:
    if not (ALOE / "aloeGT.png").exists():
        reason = f"{ALOE}/aloe*: Debian's opencv-doc is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the Aloe test: {reason}")
        pytest.skip(reason)
    return {
        "name": "aloe",
        "image_a": str(ALOE / "aloeL.jpg"),
        "image_b": str(ALOE / "aloeR.jpg"),
        "disparity": str(ALOE / "aloeGT.png"),
        "disparity_scale": 1.0,
    }


def test_aloe_disparity_is_in_pixels_with_zero_unknown():
    """aloeGT.png is Middlebury's 8-bit map of the full-size Aloe (OpenCV's ximgproc readGT:
    value = disparity in px, 0 = none): warping the right image by d reproduces the left."""
    import cv2

    pair = correspondence.load_pair(aloe())
    assert pair.image_a.shape == (1110, 1282, 3)
    known = np.isfinite(pair.flow[0])
    assert 0.9 < known.mean() < 1.0
    y, x = np.mgrid[0:1110, 0:1282].astype(np.float32)
    errors = {}
    for scale in (0.5, 1.0, 2.0):
        warped = cv2.remap(pair.image_b, x + scale * pair.flow[0], y, cv2.INTER_LINEAR).astype(float)
        errors[scale] = np.nanmean(np.where(known, np.abs(warped - pair.image_a).mean(-1), np.nan))
    assert errors[1.0] < 0.5 * min(errors[0.5], errors[2.0]), errors


def test_aloe_with_colour_patches_scores_far_above_chance():
    (row,) = correspondence.evaluate(
        ColourPatches(),
        [aloe()],
        short_side=128,
        points=2000,
        refinement="upsample",
        temperature=None,
        seed=0,
        device=torch.device("cpu"),
    )
    assert row["pair"] == "aloe" and row["n"] == 2000 and (row["gap"], row["region"]) == (None, "all")
    assert 0.15 < row["pck4"] < 0.9 and row["pck1"] <= row["pck2"] <= row["pck4"] <= row["pck8"]  # chance: ~0.3 %


# --- results and the workflow ------------------------------------------------------------------


def test_the_table_has_one_row_per_model_and_entry_the_references_first():
    scored = {"pck1": 0.1, "pck2": 0.2, "pck4": 0.3, "pck8": 0.4, "epe": 5.0, "n": 9}
    entries = [("aloe", None, "all"), ("demo00_gap03", 3, "all"), ("demo00_gap03", 3, "object")]
    results = [
        {
            "method": m,
            "dataset": d,
            "model": name,
            "seconds": 1,
            "pairs": [{"pair": p, "gap": g, "region": r, **scored} for p, g, r in entries],
        }
        for m, d, name in (
            ("pico", "demo", "pico/demo/anchor/g0_d4"),
            ("moco_v2", None, "moco_v2"),
            ("encoder_c2", None, "encoder_c2"),
            ("zero_motion", None, "zero_motion"),
        )
    ]
    table = correspondence.table(results, demo=True)
    assert set(table) == {"benchmark", "demo", "rows"} and table["demo"] is True and "DEMO" in table["benchmark"]
    assert [(r["model"], r["pair"], r["gap"], r["region"]) for r in table["rows"]] == [
        (model, *entry)
        for model in ("zero_motion", "encoder_c2", "moco_v2", "pico/demo/anchor/g0_d4")
        for entry in entries
    ]
    assert all(
        list(r) == ["method", "model", "pair", "gap", "region", "pck1", "pck2", "pck4", "pck8", "epe", "n"]
        for r in table["rows"]
    )


def test_the_demo_plans_one_job_per_model_and_the_demo_pairs(tmp_path, repo):
    out = run_snakemake(tmp_path, "correspondence", "-n", "--configfile", str(repo / "config/config.yaml"))
    jobs = scheduled(out.stdout)
    assert {k: v for k, v in jobs.items() if "correspondence" in k} == {
        "demo_correspondence": 1,
        "correspondence_model": 3,
        "correspondence_moco_v2": 1,
        "correspondence_zero_motion": 1,
        "correspondence_encoder_c2": 1,
        "correspondence_table": 1,
        "correspondence_report": 1,
        "correspondence": 1,
    }


def test_a_configured_pairs_files_are_inputs_and_a_missing_one_is_named(tmp_path, repo):
    import yaml

    config = yaml.safe_load((repo / "config/config.yaml").read_text())
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(b"")
    pair = {
        "name": "stereo",
        "image_a": str(tmp_path / "a.png"),
        "image_b": str(tmp_path / "b.png"),
        "disparity": str(tmp_path / "d.pfm"),
    }
    config["benchmarks"]["correspondence"] = {"pairs": [pair], "demo_pairs": 0}
    out = run_snakemake(tmp_path / "run", "correspondence_moco_v2", "-n", config=config, check=False)
    assert out.returncode != 0 and str(tmp_path / "d.pfm") in out.stdout + out.stderr
    (tmp_path / "d.pfm").write_bytes(b"")
    out = run_snakemake(tmp_path / "run", "results/benchmarks/correspondence/moco_v2.json", "-n", config=config)
    assert scheduled(out.stdout)["correspondence_moco_v2"] == 1 and str(tmp_path / "d.pfm") in out.stdout
