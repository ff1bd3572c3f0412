"""Section 3.4's training loop: deterministic data, checkpoints, pre-emption and resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import torchvision

from pico import config as pcfg
from pico.data import pairs
from pico.evaluation import probe
from pico.learn import launch, model, pretrain, training
from pico.store import zipstore
from picotest import REPO


@pytest.fixture(scope="module")
def pair_files(tmp_path_factory):
    """Three videos of two smooth random frames each and two draws of 40 identity point pairs
    between them, in the pairs stage's layout (``pico.data.pairs.write``: a row group per video).
    The tests' config holds one out (``HELDOUT``: the smallest SHA-256 of the three names)."""
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(0)
    videos = []
    for video in ("a", "b", "c"):
        images = [
            cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (80, 64), interpolation=cv2.INTER_CUBIC)
            for _ in (0, 5)
        ]
        x, y = rng.uniform(0, 79, 80).astype(np.float32), rng.uniform(0, 63, 80).astype(np.float32)
        cols = {
            "frame_a": np.zeros(80, np.int32),
            "frame_b": np.full(80, 5, np.int32),
            "track": np.arange(80, dtype=np.int32),
            "xa": x,
            "ya": y,
            "xb": x,
            "yb": y,
            "draw": np.repeat(np.arange(2, dtype=np.int32), 40),
        }
        videos.append((video, cols, {f: zipstore.encode_jpeg(i, 95) for f, i in zip((0, 5), images)}))
    pairs.write(videos, folder / "00000.parquet", folder / "00000.frames.parquet")
    return [str(folder / "00000.parquet")]


HELDOUT = "c"


def config(**pretrain):
    cfg = {
        "datasets": {"d": {"source": "synthetic"}},
        "model": {"arch": "resnet18", "hidden": 64},
        "pretrain": {
            "iterations": 4,
            "videos_per_batch": 2,
            "queue_size": 64,
            "crop_size": 48,
            "checkpoint_every": 100,
            "heldout_videos": 1,
            "workers": 0,
            "device": "cpu",
            **pretrain,
        },
    }
    return pcfg.validate(cfg, REPO / "workflow/schemas/config.schema.yaml")


def weights(path):
    return torch.load(path, weights_only=True)["decoder"]


def train(pair_files, cfg, folder, **kwargs):
    """``pretrain.train`` with the rule's layout: model.pt and metrics.csv in ``folder``, work/ beside them."""
    return pretrain.train(pair_files, cfg, folder / "model.pt", folder / "metrics.csv", folder / "work", **kwargs)


def test_views_keep_only_points_inside_both_crops(pair_files):
    data = pretrain.PairData(pair_files, 48, seed=0)
    view_a, view_b, xa, ya, xb, yb, *colours = data[(3, 0, 1, 0)]
    assert view_a.shape == view_b.shape == (3, 48, 48) and view_a.dtype == torch.uint8 and len(colours) == 2
    assert 0 < len(xa) <= 40 and ((xa >= -0.5) & (xa < 47.5) & (yb >= -0.5) & (yb < 47.5)).all()
    again = data[(3, 0, 1, 0)]
    assert torch.equal(again[0], view_a) and torch.equal(again[2], xa)  # determined by (seed, iteration, slot)


class _Pools(torch.utils.data.Dataset):
    def __len__(self):
        return 1

    def __getitem__(self, key):
        return torch.tensor([cv2.getNumThreads(), torch.get_num_threads()])


def test_loader_workers_run_one_thread_each():
    """A worker gets one thread for OpenCV and torch, not the job's share of the cores
    (``pico.logs.setup``), also after this process has run OpenCV's pool (a worker that
    reconfigured the pool it inherited could hang)."""
    cv2.setNumThreads(2)
    cv2.GaussianBlur(np.zeros((2000, 2000, 3), np.uint8), (31, 31), 5)  # the pool at work
    try:
        loader = training.iteration_loader(
            _Pools(), [[0]], collate_fn=lambda items: items[0], workers=1, device=torch.device("cpu")
        )
        assert next(iter(loader)).tolist() == [1, 1]
    finally:
        cv2.setNumThreads(-1)


def test_frames_are_read_when_a_video_is_fetched_and_checked(pair_files, tmp_path):
    """PairData holds no JPEG bytes: it builds, and serves video a, with video b's row group
    of the frames file damaged; fetching video b is an error naming the file."""
    for path in (pair_files[0], pairs.frames_path(pair_files[0])):
        shutil.copy(path, tmp_path)
    frames = tmp_path / "00000.frames.parquet"
    needle = pq.read_table(frames).to_pylist()[2]["jpeg"][1000:1032]  # inside video b's first frame
    assert needle in frames.read_bytes()
    frames.write_bytes(frames.read_bytes().replace(needle, bytes(32)))
    dataset = pretrain.PairData([str(tmp_path / "00000.parquet")], 48, seed=0)
    assert dataset.videos == ["a", "b", "c"] and dataset[(0, 0, 0, 0)][0].shape == (3, 48, 48)
    with pytest.raises(ValueError, match=re.escape(str(frames))):
        dataset[(0, 0, 1, 0)]


def test_the_pairs_stage_writes_one_row_group_per_video(demo):
    path = demo / "results/demo/pairs/pico/anchor/g0_d4/00000.parquet"
    index = pairs.index(path)
    videos = pq.read_table(pairs.frames_path(path), columns=["video"])["video"].unique().to_pylist()
    assert [video for video, _ in index] == videos and pq.read_metadata(pairs.frames_path(path)).num_row_groups == len(
        videos
    ) > 1
    assert all(draws == 32 for _, draws in index)  # the schema's draws_per_video: every demo video has PiCO pairs


def test_a_preempted_run_resumes_to_the_uninterrupted_weights(pair_files, tmp_path):
    cfg = config(checkpoint_every=100)
    whole = train(pair_files, cfg, tmp_path / "whole")

    def preempt(i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # SLURM's pre-emption signal, mid-run

    with pytest.raises(SystemExit, match="SIGTERM at iteration 2"):
        train(pair_files, cfg, tmp_path / "cut", on_iteration=preempt)
    assert (tmp_path / "cut/work/checkpoint.pt").exists()
    assert (
        not (tmp_path / "cut/model.pt").exists() and not (tmp_path / "cut/metrics.csv").exists()
    )  # outputs: at the end
    resumed = train(pair_files, cfg, tmp_path / "cut")
    a, b = weights(whole), weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not any(k.startswith("net.backbone.body") for k in a)  # the frozen encoder is referenced, not stored
    saved = torch.load(resumed, weights_only=True)
    assert saved["iteration"] == 4 and saved["encoder"] == {"arch": "resnet18", "checkpoint": None, "sha256": None}
    lines = (tmp_path / "whole/metrics.csv").read_text().splitlines()
    monitors = "queue_similarity,heldout_infonce,heldout_chance,heldout_cos_gap"
    assert lines[0] == f"iteration,loss,lr,pairs,seconds,pairs_per_s,{monitors}" and len(lines) == 5
    assert (tmp_path / "whole/metrics.csv").read_text() == (tmp_path / "whole/work/metrics.csv").read_text()
    assert [r.split(",")[0] for r in (tmp_path / "cut/metrics.csv").read_text().splitlines()[1:]] == [
        "1",
        "2",
        "3",
        "4",
    ]


def test_the_probe_refuses_a_model_whose_encoder_file_changed(pair_files, tmp_path):
    encoder = torchvision.models.resnet18(weights=None)
    moco_file = tmp_path / "moco.pth.tar"
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in encoder.state_dict().items()}}, moco_file)
    cfg = config(iterations=1)
    cfg["model"]["encoder_checkpoint"] = str(moco_file)
    path = train(pair_files, cfg, tmp_path / "run")
    assert probe.pretrained_features(path).backbone.body.conv1.weight.equal(encoder.conv1.weight)
    with torch.no_grad():
        encoder.conv1.weight.add_(1.0)
    torch.save({"state_dict": {f"module.encoder_q.{k}": v for k, v in encoder.state_dict().items()}}, moco_file)
    with pytest.raises(ValueError, match=f"{re.escape(str(path))}: pretrained on another {re.escape(str(moco_file))}"):
        probe.pretrained_features(path)


def test_moco_checkpoints_load_strictly(tmp_path):
    encoder = torchvision.models.resnet18(weights=None)
    state = {f"module.encoder_q.{k}": v for k, v in encoder.state_dict().items()}
    state["module.encoder_q.fc.0.weight"] = torch.zeros(1)  # MoCo-v2's MLP head: dropped
    torch.save({"state_dict": state, "epoch": 200}, tmp_path / "moco.pth.tar")
    loaded = model.load_moco_encoder("resnet18", str(tmp_path / "moco.pth.tar"))
    torch.testing.assert_close(loaded.conv1.weight, encoder.conv1.weight)
    del state["module.encoder_q.layer1.0.conv1.weight"]
    torch.save({"state_dict": state}, tmp_path / "broken.pth.tar")
    with pytest.raises(ValueError, match="1 missing keys"):
        model.load_moco_encoder("resnet18", str(tmp_path / "broken.pth.tar"))
    with pytest.raises(ValueError, match="not a MoCo checkpoint"):
        torch.save({"state_dict": encoder.state_dict()}, tmp_path / "plain.pth")
        model.load_moco_encoder("resnet18", str(tmp_path / "plain.pth"))


def test_two_process_ddp_learns_what_one_process_learns(pair_files, tmp_path):
    """torchrun, 2 processes, gloo: each takes half of every batch, and their numbers of
    points differ; the per-iteration budget (max_pairs) holds over the global batch after the
    crops; the loss (Eq. 1's mean over the global batch) and the learned weights are one
    process's on the same batches. Rank 0 writes checkpoints and the model."""
    budget = 12
    cfg = config(iterations=3, checkpoint_every=2, max_pairs=budget)
    seed = cfg["pretrain"]["seed"]
    data = pretrain.PairData(pair_files, cfg["pretrain"]["crop_size"], seed, videos=lambda v: v != HELDOUT)
    shares = [
        [
            sum(len(data[key][2]) for key in keys)
            for keys in training.IterationSampler(len(data), 2, 0, 3, seed, rank, 2)
        ]
        for rank in (0, 1)
    ]
    assert all(a != b for a, b in zip(*shares)), shares  # unequal points per process, every iteration
    (tmp_path / "pairs.txt").write_text("\n".join(pair_files))
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "pico.learn.launch",
        *(str(tmp_path / name) for name in ("pairs.txt", "config.json", "model.pt", "metrics.csv", "work")),
        str(tmp_path / "pairs.txt"),  # the held-out pretext's pairs
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert torch.load(tmp_path / "model.pt", weights_only=True)["iteration"] == 3
    assert (tmp_path / "work/checkpoint.pt").exists() and (tmp_path / "work/metrics.rank1.csv").exists()
    one = train(pair_files, cfg, tmp_path / "one")
    rows = {
        name: [r.split(",") for r in (folder / "metrics.csv").read_text().splitlines()[1:]]
        for name, folder in (("ddp", tmp_path), ("one", tmp_path / "one"))
    }
    assert any(a + b > budget for a, b in zip(*shares))  # the budget binds
    assert (
        [int(r[3]) for r in rows["ddp"]]
        == [int(r[3]) for r in rows["one"]]
        == [min(a + b, budget) for a, b in zip(*shares)]
    )
    assert [float(r[1]) for r in rows["ddp"]] == pytest.approx([float(r[1]) for r in rows["one"]], rel=1e-4)
    initial = model.trainable_state(pretrain.build(cfg))
    ddp, single = weights(tmp_path / "model.pt"), weights(one)
    for k, w in initial.items():
        # atol: two float32 ulps at 1.0, where GroupNorm's scales start (the sums run in another order)
        torch.testing.assert_close(ddp[k] - w, single[k] - w, rtol=1e-3, atol=2.4e-7, msg=k)


def test_new_pairs_are_trained_on_not_answered_with_the_old_model(pair_files, tmp_path):
    """A finished run's checkpoint is at the last iteration; when the pairs stage reruns, the
    pretraining rerun must train again, not return the stale weights."""
    cfg = config(iterations=2, checkpoint_every=1)
    first = weights(train(pair_files, cfg, tmp_path))
    path = pair_files[0]
    os.utime(path, ns=(os.stat(path).st_atime_ns, os.stat(path).st_mtime_ns + 10**9))  # the pairs were rewritten
    steps = []
    again = train(pair_files, cfg, tmp_path, on_iteration=steps.append)
    assert steps == [1, 2]  # trained from the start again
    rows = (tmp_path / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
    assert weights(again).keys() == first.keys()


def test_a_checkpoint_of_other_settings_is_not_resumed(pair_files, tmp_path):
    train(pair_files, config(iterations=2, checkpoint_every=1), tmp_path)
    steps = []
    again = train(pair_files, config(iterations=3, checkpoint_every=1, lr=0.01), tmp_path, on_iteration=steps.append)
    assert steps == [1, 2, 3]  # started over
    assert torch.load(again, weights_only=True)["iteration"] == 3
    rows = [r.split(",") for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert len(rows) == 3 and rows[0][2] == "0.01"  # iteration 1 at the new settings' lr


def test_a_non_finite_loss_stops_pretraining_naming_the_iteration(pair_files, tmp_path, monkeypatch):
    real = training.global_batch
    monkeypatch.setattr(
        training, "global_batch", lambda loss, n, world: (float("nan"), n) if n and real(loss, n, world) else (0.0, n)
    )
    with pytest.raises(FloatingPointError, match="pretraining loss is nan at iteration 1"):
        train(pair_files, config(iterations=2), tmp_path)
    assert not (tmp_path / "model.pt").exists()


def test_the_pretrained_backbone_plugs_into_torchvision_mask_rcnn():
    net = model.DenseNet("resnet18", None, freeze_encoder=True)
    detector = torchvision.models.detection.MaskRCNN(net.backbone, num_classes=3, min_size=128, max_size=160).eval()
    with torch.no_grad():
        (out,) = detector([torch.rand(3, 120, 160)])
    assert {"boxes", "labels", "scores", "masks"} <= out.keys()


def test_torchrun_commands_for_one_and_several_nodes():
    args = ["pairs.txt", "config.json", "model.pt", "work"]
    single = launch.torchrun_command(4, 1, None, args)
    assert single[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=4",
        "--standalone",
        "-m",
        "pico.learn.launch",
        *args,
    ]
    multi = launch.torchrun_command(8, 2, "gpu-node-07", args)
    assert multi[:3] == ["srun", "--nodes=2", "--ntasks-per-node=1"]
    assert {"--nnodes=2", "--nproc_per_node=8", "--rdzv_backend=c10d", "--rdzv_endpoint=gpu-node-07:29500"} <= set(
        multi
    )
    assert multi[-5:] == ["pico.learn.launch", *args]


def test_the_queue_holds_real_keys_before_the_first_step(pair_files):
    """The warm-up replaces every one of MoCo's random initial vectors by a key of the key
    network, from batches of their own (iterations -W .. -1), never a training batch's."""
    cfg = config(queue_size=48)
    recipe = pretrain.PixelRecipe(pair_files, pair_files, cfg, torch.device("cpu"))
    random = recipe.model.queue.clone()
    recipe.model.train()
    recipe.warm_up(0, 1, torch.device("cpu"))
    queue = recipe.model.queue
    assert not (queue == random).all(dim=0).any()  # no random column left
    assert torch.allclose(queue.norm(dim=0), torch.ones(48))
    first = next(iter(recipe.batches(0, 0, 1, torch.device("cpu"))))
    keys = recipe.model.keys(recipe.budgeted(first, 0, 0, 1, torch.device("cpu")))
    assert torch.cdist(keys, queue.T).min() > 1e-4  # iteration 0's keys are not among them


def test_every_model_measures_its_pretext_on_held_out_videos(pair_files, tmp_path):
    """Video c (the split by name) is never trained on; its pairs are scored every
    checkpoint_every iterations and at the end, in metrics.csv and model.pt; the queue's
    similarity (the collapse monitor) every iteration."""
    cfg = config(iterations=3, checkpoint_every=2)
    recipe = pretrain.PixelRecipe(pair_files, pair_files, cfg, torch.device("cpu"))
    assert recipe.heldout_names == {HELDOUT} == pretrain.heldout_videos(["a", "b", "c"], 1)
    assert pretrain.PairData(pair_files, 48, 0, videos=lambda v: v not in recipe.heldout_names).videos == ["a", "b"]
    saved = torch.load(train(pair_files, cfg, tmp_path), weights_only=True)
    rows = [r.split(",") for r in (tmp_path / "metrics.csv").read_text().splitlines()[1:]]
    assert [bool(r[7]) for r in rows] == [False, True, True] and all(0 < float(r[6]) <= 1 for r in rows)
    pretext = saved["pretext"]
    assert pretext["heldout_videos"] == [HELDOUT] and 0 < pretext["points"] <= 40 * 2
    assert pretext["infonce"] == pytest.approx(float(rows[-1][7]), abs=1e-5)
    assert pretext["chance"] == pytest.approx(float(rows[-1][8]), abs=1e-5)
    with pytest.raises(ValueError, match="pretrain.heldout_videos is 3, but the pairs hold 3 videos"):
        pretrain.PixelRecipe(pair_files, pair_files, config(heldout_videos=3), torch.device("cpu"))
    assert pretrain.PixelRecipe(pair_files, pair_files, config(heldout_videos=0), torch.device("cpu")).heldout is None


def csv_less_wall_clock(path):
    """metrics.csv's rows less the wall-clock columns (seconds, pairs_per_s)."""
    return [row[:4] + row[6:] for row in (line.split(",") for line in path.read_text().splitlines())]


def test_resumed_metrics_come_from_the_checkpoint_whatever_the_work_file_holds(pair_files, tmp_path):
    """The work copy of metrics.csv is flushed, not fsynced, and a kill -9 can leave it with
    rows past the checkpoint, short of it, or gone: the rows are part of the checkpoint, and a
    resumed run's metrics equal an uninterrupted run's (less wall-clock columns)."""
    cfg = config(iterations=3, checkpoint_every=100)
    train(pair_files, cfg, tmp_path / "whole")

    def preempt(i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit, match="SIGTERM at iteration 2"):
        train(pair_files, cfg, tmp_path / "cut", on_iteration=preempt)
    rows = (tmp_path / "cut/work/metrics.csv").read_text().splitlines()
    damaged = {"missing": None, "short": rows[:2], "long": rows + rows[1:]}
    for name, lines in damaged.items():
        shutil.copytree(tmp_path / "cut", tmp_path / name)
        work = tmp_path / name / "work/metrics.csv"
        work.unlink() if lines is None else work.write_text("\n".join(lines) + "\n")
        train(pair_files, cfg, tmp_path / name)
        assert csv_less_wall_clock(tmp_path / name / "metrics.csv") == csv_less_wall_clock(
            tmp_path / "whole/metrics.csv"
        ), name


def test_model_files_hold_only_the_settings_that_change_what_is_learned(pair_files, tmp_path):
    """Runs that differ in runtime keys alone (loader workers here) write the same model.pt,
    byte for byte; and a run resumed from its last checkpoint (killed while it wrote model.pt)
    writes it as the uninterrupted run did, its last held-out check included."""
    one, two = (train(pair_files, config(iterations=1, workers=n), tmp_path / f"w{n}") for n in (0, 1))
    assert one.read_bytes() == two.read_bytes()
    saved = torch.load(one, weights_only=True)
    assert "workers" not in saved["config"]["pretrain"] and saved["config"].keys() == {"model", "pretrain"}
    assert saved["pretext"] is not None
    first = one.read_bytes()
    one.unlink()
    steps = []
    train(pair_files, config(iterations=1), tmp_path / "w0", on_iteration=steps.append)
    assert steps == [] and one.read_bytes() == first
