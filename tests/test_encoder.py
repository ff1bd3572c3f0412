"""The image-level MoCo-v2 stand-in encoder (pico.learn.encoder): an official MoCo checkpoint,
resumable, with shuffling BN in one process, built by the workflow when the config names it."""

import os
import re
import signal

import cv2
import numpy as np
import pytest
import torch

from pico import config as pcfg
from pico.learn import encoder, model
from pico.store import framestore
from picotest import REPO, dry_run_with, scheduled


@pytest.fixture(scope="module")
def frame_dirs(tmp_path_factory):
    """Two shard folders of frame stores: three snippets of four smooth random frames."""
    root = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(0)
    for shard, videos in (("00000", ["a", "b"]), ("00001", ["c"])):
        (root / shard).mkdir()
        for video in videos:
            frames = [
                cv2.resize(rng.integers(0, 255, (4, 5, 3), dtype=np.uint8), (50, 40), interpolation=cv2.INTER_CUBIC)
                for _ in range(4)
            ]
            framestore.write(root / shard / f"{video}{framestore.SUFFIX}", frames, {"video": video, "fps": 30.0})
    return [str(root / "00000"), str(root / "00001")]


def config(**settings):
    cfg = {
        "datasets": {"d": {"source": "synthetic"}},
        "model": {"arch": "resnet18"},
        "encoder": {
            "iterations": 4,
            "batch_size": 4,
            "crop_size": 32,
            "queue_size": 16,
            "bn_groups": 2,
            "checkpoint_every": 100,
            "workers": 0,
            "device": "cpu",
            **settings,
        },
    }
    return pcfg.validate(cfg, REPO / "workflow/schemas/config.schema.yaml")


def run(frame_dirs, folder, **kwargs):
    return encoder.train(
        frame_dirs, config(), folder / "moco_v2.pth", folder / "metrics.csv", folder / "work", **kwargs
    )


def test_the_stand_in_is_an_official_moco_checkpoint_and_resumes_bit_exactly(frame_dirs, tmp_path):
    whole = run(frame_dirs, tmp_path / "whole")

    def preempt(i):
        if i == 2:
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(SystemExit, match="SIGTERM at iteration 2"):
        run(frame_dirs, tmp_path / "cut", on_iteration=preempt)
    assert not (tmp_path / "cut/moco_v2.pth").exists()
    resumed = run(frame_dirs, tmp_path / "cut")
    a, b = (torch.load(p, weights_only=True) for p in (whole, resumed))
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])
    assert a["arch"] == "resnet18" and a["iteration"] == 4 and a["frames"] == 3
    # what a downloaded MoCo-v2 checkpoint is: the loader takes every encoder weight, BN statistics included
    loaded = model.load_moco_encoder("resnet18", str(whole))
    for name, value in loaded.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(value, a["state_dict"][f"module.encoder_q.{name}"]), name
    torch.manual_seed(0)
    assert not torch.equal(loaded.conv1.weight, model.ImageMoCo("resnet18").query.conv1.weight)  # it trained
    lines = (tmp_path / "whole/metrics.csv").read_text().splitlines()
    assert lines[0] == "iteration,loss,lr,images,seconds,images_per_s,queue_similarity"
    assert [r.split(",")[3] for r in lines[1:]] == ["4"] * 4


def test_grouped_embeddings_return_in_the_images_order():
    """Shuffling BN in one process: embedding in groups over a permutation gives each image its
    own embedding back (here in eval mode, where BN has no batch statistics to differ by)."""
    moco = model.ImageMoCo("resnet18", queue_size=8, bn_groups=3).eval()
    images = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        plain = moco._embed(moco.query, images, torch.arange(6))
        shuffled = moco._embed(moco.query, images, torch.tensor([4, 1, 5, 0, 3, 2]))
    torch.testing.assert_close(plain, shuffled)
    moco.train()
    with torch.no_grad():  # in training, each group's statistics are its own: the order matters
        grouped = moco._embed(moco.query, images, torch.tensor([4, 1, 5, 0, 3, 2]))
        assert not torch.allclose(moco._embed(moco.query, images, torch.arange(6)), grouped)


def test_no_frames_is_an_error_naming_the_folders(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}: nothing to train the encoder on"):
        encoder.FrameData([str(tmp_path)], 32, seed=0)


def test_the_workflow_builds_the_stand_in_only_when_the_config_names_it(demo):
    out = dry_run_with(demo, {"model": {"encoder_checkpoint": "results/encoder/demo/moco_v2.pth"}}, "pretrain")
    jobs = scheduled(out.stdout + out.stderr)
    assert jobs["encoder_moco"] == 1 and jobs["pretrain_model"] == 3
    out = dry_run_with(demo, {}, "pretrain")
    assert "encoder_moco" not in scheduled(out.stdout + out.stderr)


def test_the_stand_in_is_verified_when_read_and_a_download_still_loads(frame_dirs, tmp_path):
    """The stand-in is sealed (``pico.store.checkpoint``): a flipped bit in a weight or a cut
    file is an error naming it, never an encoder; its bytes do not depend on runtime keys
    (every model records its sha256). An official MoCo checkpoint, unsealed, loads as before;
    cut short, it is an error naming it too."""
    one, two = (
        encoder.train(
            frame_dirs,
            config(iterations=1, workers=n),
            tmp_path / f"{n}.pth",
            tmp_path / f"{n}.csv",
            tmp_path / f"w{n}",
        )
        for n in (0, 1)
    )
    assert one.read_bytes() == two.read_bytes()
    data = one.read_bytes()
    weight = torch.load(one, weights_only=True)["state_dict"]["module.encoder_q.conv1.weight"]
    at = data.index(weight.numpy().tobytes()[:64]) + 3  # a byte of the first weight: its float's exponent
    damaged = {"flipped": data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1 :], "cut": data[: len(data) // 2]}
    for name, content in damaged.items():
        (tmp_path / f"{name}.pth").write_bytes(content)
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / f"{name}.pth"))):
            model.load_moco_encoder("resnet18", str(tmp_path / f"{name}.pth"))
    official = {
        "state_dict": {f"module.encoder_q.{k}": v for k, v in model.ImageMoCo("resnet18").query.state_dict().items()}
    }
    torch.save(official, tmp_path / "official.pth.tar")
    assert model.load_moco_encoder("resnet18", str(tmp_path / "official.pth.tar")).conv1.weight.equal(
        official["state_dict"]["module.encoder_q.conv1.weight"]
    )
    (tmp_path / "cut.pth.tar").write_bytes((tmp_path / "official.pth.tar").read_bytes()[:-200])
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'cut.pth.tar'}: cannot be loaded")):
        model.load_moco_encoder("resnet18", str(tmp_path / "cut.pth.tar"))
