"""Section 3.2: flow forward and backward (OpenCV's CPU backends, RAFT) and the JPEG flow codec."""

import dataclasses
import io
import json
import os

import cv2
import numpy as np
import pytest
import torch
from torchvision.models.optical_flow import raft_small

from pico.data import flow, synthetic, weights
from pico.flow_backends import BACKENDS
from pico.store import flowstore, framestore, zipstore
from picotest import run_snakemake

SHIFT = (2.5, -1.25)  # px, subpixel in both directions


@pytest.fixture(scope="module")
def translated():
    """A textured image and its copy translated by SHIFT (bicubic): known flow everywhere."""
    rng = np.random.default_rng(0)
    image = np.clip(synthetic._colorize(synthetic._noise(rng, 160, 208, octaves=7, roughness=0.75), rng), 0, 255)
    image = image.astype(np.uint8)
    moved = cv2.warpAffine(
        image,
        np.float32([[1, 0, SHIFT[0]], [0, 1, SHIFT[1]]]),
        (208, 160),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    return np.stack([image, moved])


def textured(image: np.ndarray, margin: int = 16) -> np.ndarray:
    """Interior pixels with above-median gradient magnitude."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    grad = np.hypot(cv2.Sobel(gray, cv2.CV_32F, 1, 0), cv2.Sobel(gray, cv2.CV_32F, 0, 1))
    mask = np.zeros(gray.shape, bool)
    mask[margin:-margin, margin:-margin] = True
    return mask & (grad > np.median(grad[mask]))


def test_dis_recovers_a_known_translation_within_a_tenth_of_a_pixel(translated):
    fwd, bwd = flow.DIS("fine")(translated)
    assert fwd.shape == bwd.shape == (1, 2, 160, 208) and fwd.dtype == np.float32
    mask = textured(translated[0])
    epe = np.hypot(fwd[0, 0] - SHIFT[0], fwd[0, 1] - SHIFT[1])
    assert epe[mask].mean() < 0.1, epe[mask].mean()
    back = np.hypot(bwd[0, 0] + SHIFT[0], bwd[0, 1] + SHIFT[1])
    assert back[mask].mean() < 0.1, back[mask].mean()


@pytest.mark.parametrize(
    "cfg, bound",
    [
        ({"backend": "dis", "dis_preset": "fine", "dis_refine": 5}, 0.1),  # measured 0.042 px
        ({"backend": "deepflow"}, 0.1),  # 0.026
        ({"backend": "rlof"}, 0.1),  # 0.034
        ({"backend": "tvl1"}, 0.2),  # 0.132
    ],
    ids=lambda v: v.get("backend") if isinstance(v, dict) else str(v),
)
def test_opencv_backends_recover_a_known_translation(translated, cfg, bound):
    """Each CPU backend on the textured pair shifted by SHIFT: mean end-point error of both
    directions on textured pixels against the true flow."""
    fwd, bwd = flow.estimator(cfg)(translated)
    assert fwd.shape == bwd.shape == (1, 2, 160, 208) and fwd.dtype == bwd.dtype == np.float32
    mask = textured(translated[0])
    for field, sign in ((fwd, 1), (bwd, -1)):
        epe = np.hypot(field[0, 0] - sign * SHIFT[0], field[0, 1] - sign * SHIFT[1])[mask].mean()
        assert epe < bound, (cfg, sign, epe)


def test_contrib_backends_name_the_missing_package(monkeypatch):
    monkeypatch.delattr(cv2, "optflow", raising=False)
    with pytest.raises(RuntimeError, match="flow.backend deepflow: needs .*opencv-contrib-python-headless"):
        flow.estimator({"backend": "deepflow"})


def test_forward_and_backward_flow_are_consistent_on_the_synthetic_world():
    """|w + w_hat(x + w)| is small where nothing is occluded (Section 3.2's test, Eq. 3)."""
    vid = synthetic.make_video(3, "fb", 1.0, 30, 208, 160, cut=False)
    scene, _ = vid.at(0.0)
    frames = np.stack([scene.render(t)["rgb"] for t in (0.0, 1 / 30)])
    truth = scene.render(0.0, dt=1 / 30)["flow"]
    fwd, bwd = flow.DIS("fine")(frames)
    h, w = truth.shape[1:]
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    mx, my = x + fwd[0, 0], y + fwd[0, 1]
    back = np.stack([cv2.remap(bwd[0, c], mx, my, cv2.INTER_LINEAR) for c in range(2)])
    mask = textured(frames[0]) & (np.hypot(*(fwd[0] - truth)) < 0.5)  # well-estimated, unoccluded
    assert mask.mean() > 0.25
    assert np.hypot(*(fwd[0] + back))[mask].mean() < 0.2
    assert np.hypot(*(fwd[0] - truth))[textured(frames[0])].mean() < 0.3  # and close to the truth


DIS_CFG = {
    "backend": "dis",
    "dis_preset": "fine",
    "dis_refine": 0,
    "weights": "default",
    "codec": {"scheme": "tiled", "quality": 90, "bound": 20, "step": 1 / 32},
}


def frames_shard(folder, n: int = 3) -> list[dict]:
    """A shard's rows: ``n`` snippets of 3 frames of the synthetic world, 64x48."""
    folder.mkdir()
    rows = []
    for i in range(n):
        scene, _ = synthetic.make_video(i, f"v{i}", 1.0, 30, 64, 48, cut=False).at(0.0)
        path = folder / f"v{i}.frames.zip"
        framestore.write(path, [scene.render(t / 30)["rgb"] for t in range(3)], {"video": f"v{i}", "fps": 30})
        rows.append({"video": f"v{i}", "status": "ok", "frames": str(path)})
    return rows


def counting(monkeypatch, *, stop_at: int | None = None) -> list[int]:
    """Count the snippets the flow stage estimates; raise on the ``stop_at``-th (a pre-emption)."""
    calls, real = [], flow.estimator

    def estimator(cfg):
        estimate = real(cfg)

        def run(frames):
            calls.append(len(frames))
            if len(calls) == stop_at:
                raise RuntimeError("pre-empted")
            return estimate(frames)

        return run

    monkeypatch.setattr(flow, "estimator", estimator)
    return calls


def test_a_stopped_flow_shard_resumes_keeping_the_snippets_it_finished(tmp_path, monkeypatch):
    rows = frames_shard(tmp_path / "frames")
    whole = flow.run_shard(rows, DIS_CFG, tmp_path / "whole")
    out = tmp_path / "out"
    counting(monkeypatch, stop_at=3)
    with pytest.raises(RuntimeError, match="pre-empted"):
        flow.run_shard(rows, DIS_CFG, out)
    kept = sorted(p.name for p in flow.partial_dir(out).iterdir())
    assert not out.exists() and kept == ["v0.flow.zip", "v0.flow.zip.json", "v1.flow.zip", "v1.flow.zip.json"]
    calls = counting(monkeypatch)
    resumed = flow.run_shard(rows, DIS_CFG, out)
    assert len(calls) == 1 and not flow.partial_dir(out).exists()  # v2 alone was computed
    for a, b in zip(whole, resumed):
        assert (a["flow_bytes"], a["flow_epe"]) == (b["flow_bytes"], b["flow_epe"]) and b["flow"] == str(
            out / a["video"]
        ) + ".flow.zip"
        assert (out / f"{a['video']}.flow.zip").read_bytes() == (
            tmp_path / "whole" / f"{a['video']}.flow.zip"
        ).read_bytes()


def test_a_resumed_shard_computes_again_what_its_inputs_or_settings_changed(tmp_path, monkeypatch):
    rows = frames_shard(tmp_path / "frames")
    out = tmp_path / "out"
    counting(monkeypatch, stop_at=3)
    with pytest.raises(RuntimeError):
        flow.run_shard(rows, DIS_CFG, out)
    stat = (tmp_path / "frames/v0.frames.zip").stat()
    os.utime(tmp_path / "frames/v0.frames.zip", ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # rebuilt frames
    calls = counting(monkeypatch)
    flow.run_shard(rows, DIS_CFG, out)
    assert len(calls) == 2  # v0 again (its frames changed) and v2 (never done); v1 kept
    other = tmp_path / "other"
    counting(monkeypatch, stop_at=3)
    with pytest.raises(RuntimeError):
        flow.run_shard(rows, DIS_CFG, other)
    calls = counting(monkeypatch)
    flow.run_shard(rows, {**DIS_CFG, "dis_preset": "medium"}, other)
    assert len(calls) == 3 and sorted(p.name for p in other.iterdir()) == ["v0.flow.zip", "v1.flow.zip", "v2.flow.zip"]


@pytest.fixture(scope="module")
def raft_weights(tmp_path_factory):
    """Random RAFT-small weights in a local file: the weight-loading path, no network."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), path)
    return path


def test_raft_runs_end_to_end_on_cpu_from_local_weights(raft_weights):
    frames = np.random.default_rng(0).integers(0, 255, (3, 130, 140, 3), dtype=np.uint8)  # not multiples of 8
    model = flow.RAFT("raft_small", str(raft_weights), iters=2, device="cpu", precision="bf16", batch_size=3)
    fwd, bwd = model(frames)
    assert fwd.shape == bwd.shape == (2, 2, 130, 140) and fwd.dtype == np.float32
    assert np.isfinite(fwd).all() and np.isfinite(bwd).all()
    again, _ = flow.RAFT("raft_small", str(raft_weights), iters=2, device="cpu", batch_size=1)(frames)
    np.testing.assert_allclose(fwd, again, atol=1e-3)  # batching does not change the result


def test_raft_weights_must_match_exactly(tmp_path, raft_weights):
    with pytest.raises(FileNotFoundError, match="flow.weights"):
        flow.load_raft("raft_small", str(tmp_path / "missing.pth"))
    with pytest.raises(ValueError, match="not raft weights"):
        flow.load_raft("raft", str(raft_weights))  # small weights for the large model


@pytest.mark.parametrize("scheme, bound", [("tiled", 0.1), ("frame_range", 0.1), ("fixed", 2 * 20 / 255)])
def test_codec_round_trip_is_within_its_documented_bound(tmp_path, scheme, bound):
    """Smooth random flows inside the bound, quality 90: mean added EPE <= 0.1 px with tiled
    and frame_range; within one quantisation step (2 * bound / 255) with fixed."""
    rng = np.random.default_rng(1)
    fields = np.stack(
        [
            cv2.resize(rng.normal(0, 4, (6, 8)).astype(np.float32), (96, 64), interpolation=cv2.INTER_CUBIC)
            for _ in range(2 * 3 * 2)
        ]
    ).reshape(2, 3, 2, 64, 96)
    path = tmp_path / f"{scheme}.flow.zip"
    stored = flowstore.write(path, fields[0], fields[1], {"video": "v"}, scheme=scheme, bound=20, quality=90)
    assert stored.bytes < fields[0].size * 2 * 2 / 8  # under 1/8 of float16, both directions
    with flowstore.FlowStore(path) as store:
        fwd, bwd = store.read()
        assert store.meta["scheme"] == scheme and len(store) == 3
        np.testing.assert_array_equal(store.field("bwd", 2), bwd[2])
    for got, want in ((fwd, fields[0]), (bwd, fields[1])):
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.hypot(*(got - want).transpose(1, 0, 2, 3)).mean() <= bound
    # the error write() reports (the flow manifest's flow_epe) is the one a reader gets
    epe = np.hypot(*(np.stack([fwd, bwd]) - fields).transpose(2, 0, 1, 3, 4)).mean()
    assert 0 < stored.epe == pytest.approx(epe, rel=1e-5)


def test_fixed_scheme_clips_beyond_the_bound_and_frame_range_does_not(tmp_path):
    field = np.zeros((1, 2, 16, 16), np.float32)
    field[0, 0, :, 8:] = 35.0  # beyond the bound of 20
    for scheme, expected in (("fixed", 20.0), ("frame_range", 35.0)):
        flowstore.write(tmp_path / "f.flow.zip", field, field, {}, scheme=scheme, bound=20, quality=100)
        with flowstore.FlowStore(tmp_path / "f.flow.zip") as store:
            assert store.field("fwd", 0)[0, 4, 12] == pytest.approx(expected, abs=0.15)


def large_motion(n: int, height: int = 128, width: int = 192) -> np.ndarray:
    """``n`` smooth flow fields (n, 2, H, W) spanning over 100 px, about as steep as DIS's on
    real large motion (0.3-0.5 px/px): a zoom-like ramp of +-60 px with a wave, and a square
    moving 40 px against it (a motion boundary); field k shifted by k px."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    across, down = 2 * x / (width - 1) - 1, 2 * y / (height - 1) - 1
    ramp = np.stack([60 * across + 8 * np.sin(y / 20), 30 * down - 20 * across])
    fields = np.stack([ramp + k for k in range(n)])
    fields[:, :, 40:88, 64:112] += 40
    return fields


def test_tiled_codec_holds_the_goal_on_large_motion_where_frame_range_cannot(tmp_path):
    """Section 3.2's goal, <= 0.1 px mean added EPE at <= 1/8 of float16's bytes, on fields that
    span 100+ px: 8 bits per field cannot hold it (frame_range, even at quality 100), a fine
    step per 16x16 tile does at the default quality."""
    fwd = large_motion(2)
    bwd = -fwd
    assert (fwd.max(axis=(2, 3)) - fwd.min(axis=(2, 3))).min() > 100
    epe, size = {}, {}
    for scheme, quality in (("tiled", 90), ("frame_range", 100)):
        path = tmp_path / f"{scheme}.flow.zip"
        stored = flowstore.write(path, fwd, bwd, {}, scheme=scheme, bound=20, quality=quality)
        with flowstore.FlowStore(path) as store:
            decoded = np.stack(store.read())
        epe[scheme] = np.hypot(*(decoded - np.stack([fwd, bwd])).transpose(2, 0, 1, 3, 4))
        assert stored.epe == pytest.approx(epe[scheme].mean(), rel=1e-5)
        size[scheme] = stored.bytes / (fwd.size * 2 * 2)  # both directions against float16
    assert epe["tiled"].mean() <= 0.1 < epe["frame_range"].mean(), {k: v.mean() for k, v in epe.items()}
    assert np.percentile(epe["tiled"], 95) <= 0.2 and size["tiled"] <= 1 / 8, size


def test_tiled_ranges_give_each_tile_its_own_step(tmp_path):
    """Per 16x16 tile, the stored [lo, hi] (float16) covers the tile's values with step
    max(tile range / 255, min(field's frame_range step, ``step``)): 1/32 px in a smooth tile of
    a 70 px field, the tile's own range / 255 across its motion boundary, the field's finer step
    throughout a 2.5 px one; the decoded field is exactly what codes and ranges give."""
    y, x = np.mgrid[0:128, 0:192].astype(np.float32)
    field = np.stack([0.05 * x - 4, 0.02 * y])
    field[0, 40:88, 64:112] += 60
    path = tmp_path / "t.flow.zip"
    flowstore.write(path, field[None], field[None], {}, scheme="tiled", bound=20, quality=90, step=1 / 32)
    with flowstore.FlowStore(path) as store:
        assert store.meta["tile"] == flowstore.TILE == 16 and store.ranges.shape == (1, 2, 2, 8, 12, 2)
        codes, ranges, tile = store.quantized("fwd", 0)
        decoded = store.field("fwd", 0)
    tiles = field.reshape(2, 8, 16, 12, 16)
    lo, hi = ranges[..., 0], ranges[..., 1]
    assert (lo <= tiles.min(axis=(2, 4))).all() and (hi >= tiles.max(axis=(2, 4))).all()
    assert (ranges.astype(np.float16) == ranges).all()
    steps, tile_range = (hi - lo) / 255, tiles.max(axis=(2, 4)) - tiles.min(axis=(2, 4))
    field_step = (field.max(axis=(1, 2)) - field.min(axis=(1, 2))) / 255
    np.testing.assert_allclose(
        steps, np.maximum(tile_range / 255, np.minimum(field_step, 1 / 32)[:, None, None]), rtol=0.01
    )
    assert steps[0, 0, 0] == pytest.approx(1 / 32, rel=0.01) and steps[0, 2, 5] > 60 / 255  # smooth; the square's top
    np.testing.assert_allclose(steps[1], 2.54 / 255, rtol=0.01)
    rows, cols = np.arange(128) // 16, np.arange(192) // 16
    per_pixel = ranges[:, rows][:, :, cols]
    expected = per_pixel[..., 0] + codes * ((per_pixel[..., 1] - per_pixel[..., 0]) / np.float32(255))
    np.testing.assert_allclose(decoded, expected, rtol=1e-6, atol=1e-5)


def test_flow_written_before_tiles_still_reads(tmp_path):
    """A file as the codec wrote it before the tiled scheme -- float32 [lo, hi] per field and
    component, no ``tile`` in meta.json -- decodes as it did: lo + code * (hi - lo) / 255. The
    same ranges under a meta.json that claims tiles are refused, naming the file."""
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 256, (2, 2, 16, 24), dtype=np.uint8)  # (direction, component, H, W): one field
    ranges = np.float32([[[[-3.5, 4.25], [0.5, 9.0]], [[-1.0, 1.0], [-60.0, 2.0]]]])  # (1, 2, 2, [lo, hi])
    meta = {"video": "v", "n_fields": 1, "height": 16, "width": 24, "scheme": "frame_range", "bound": 20, "quality": 90}
    jpegs = {
        (d, c): zipstore.encode_jpeg(codes[i, j], 90)
        for i, d in enumerate("fwd bwd".split())
        for j, c in enumerate("uv")
    }
    for name, info in (("old", meta), ("bad", {**meta, "tile": 16})):
        with zipstore.writer(tmp_path / f"{name}.flow.zip") as put:
            for (d, c), data in jpegs.items():
                put(f"{d}/000000_{c}.jpg", data)
            buf = io.BytesIO()
            np.save(buf, ranges)
            put("ranges.npy", buf.getvalue())
            put("meta.json", json.dumps(info).encode())
    with flowstore.FlowStore(tmp_path / "old.flow.zip") as store:
        fwd, bwd = store.read()
    for i, got in enumerate((fwd[0], bwd[0])):
        for j in range(2):
            lo, hi = ranges[0, i, j]
            stored = zipstore.decode_jpeg(jpegs["fwd bwd".split()[i], "uv"[j]], gray=True)
            np.testing.assert_array_equal(got[j], lo + stored.astype(np.float32) * np.float32((hi - lo) / 255.0))
    with pytest.raises(ValueError, match="bad.flow.zip: ranges.npy holds"):
        flowstore.FlowStore(tmp_path / "bad.flow.zip")


def test_non_finite_flow_is_refused_not_stored(tmp_path):
    field = np.zeros((1, 2, 8, 8), np.float32)
    field[0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        flowstore.write(
            tmp_path / "n.flow.zip", field, np.zeros_like(field), {}, scheme="frame_range", bound=20, quality=90
        )
    assert not (tmp_path / "n.flow.zip").exists()


def test_the_default_raft_weights_are_torchvisions():
    from torchvision.models import optical_flow as of

    assert BACKENDS["raft"].url == of.Raft_Large_Weights.C_T_SKHT_V2.url
    assert BACKENDS["raft_small"].url == of.Raft_Small_Weights.C_T_V2.url
    assert weights.default_file("raft") == "results/weights/raft_large_C_T_SKHT_V2-ff5fadd5.pth"


def test_unfetchable_weights_stop_the_run_naming_the_key_and_the_ways_out(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(
        weights, "reachable", lambda url, timeout=3.0: "download.pytorch.org: Name or service not known"
    )
    problem = weights.check_fetchable({"backend": "raft", "weights": "default"})
    assert "flow.weights: /path/to/raft_large_C_T_SKHT_V2-ff5fadd5.pth" in problem and "flow.backend: dis" in problem
    assert weights.check_fetchable({"backend": "dis", "weights": "default"}) is None
    assert weights.check_fetchable({"backend": "raft", "weights": "my.pth"}) is None  # checked as a file elsewhere
    placed = tmp_path / weights.default_file("raft")
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"")
    assert weights.check_fetchable({"backend": "raft", "weights": "default"}) is None  # an offline node's placed file


def test_weights_are_fetched_once_checked_and_taken_from_torchs_cache(tmp_path, monkeypatch):
    import hashlib
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    body = b"raft weights" * 1000
    prefix = hashlib.sha256(body).hexdigest()[:8]
    hits = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    url = f"http://127.0.0.1:{server.server_port}/raft_large_X-{prefix}.pth"
    monkeypatch.setitem(BACKENDS, "raft", dataclasses.replace(BACKENDS["raft"], url=url))
    try:
        weights.fetch("raft", tmp_path / "a.pth")
        assert (tmp_path / "a.pth").read_bytes() == body and len(hits) == 1
        cached = weights.torch_cache(url)
        cached.parent.mkdir(parents=True)
        cached.write_bytes(body)
        weights.fetch("raft", tmp_path / "b.pth")
        assert (tmp_path / "b.pth").read_bytes() == body and len(hits) == 1  # from the cache, no request
        cached.write_bytes(body[:-1])
        with pytest.raises(ValueError, match=f"{cached}: SHA-256 does not start with {prefix}"):
            weights.fetch("raft", tmp_path / "c.pth")
        assert not (tmp_path / "c.pth").exists()
    finally:
        server.shutdown()
        server.server_close()


def test_an_offline_machine_stops_before_any_job_only_where_flow_is_computed(tmp_path, monkeypatch):
    """Where download.pytorch.org cannot be reached (CI, an offline node), a config that names
    only datasets (RAFT with default weights) stops Snakemake before any job of a run that
    computes flow, naming the key; a run that computes none (`videos`) goes ahead."""
    if weights.reachable(BACKENDS["raft"].url) is None:
        pytest.skip("download.pytorch.org is reachable from this machine")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    config = {"datasets": {"d": {"source": "synthetic", "shots": False, "synthetic": {"videos": 1, "seconds": 2}}}}
    out = run_snakemake(tmp_path, "flow", config=config, check=False)
    assert (
        out.returncode != 0 and "flow.weights: /path/to/raft_large_C_T_SKHT_V2-ff5fadd5.pth" in out.stderr + out.stdout
    )
    assert not (tmp_path / "results").exists()
    run_snakemake(tmp_path, "videos", config=config)
    assert (tmp_path / "results/d/videos/00000.parquet").exists()
