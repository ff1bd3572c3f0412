"""The frozen encoder where no ImageNet weights are at hand: image-level MoCo-v2 (He et al.
2020; Chen et al. 2020b) trained on the pretraining videos' frames, the stand-in for the
paper's IN-1K MoCo-v2 ResNet (Section 3.4: "we initialize the encoder with MoCo-v2 weights
trained on ImageNet-1K and keep it frozen").

The stand-in is trained once per dataset (rule ``encoder_moco``) and written in the official
MoCo checkpoint layout (``state_dict`` of ``module.encoder_q.*``), so it is used exactly as a
downloaded MoCo-v2 checkpoint is: ``model.encoder_checkpoint: results/encoder/{dataset}/moco_v2.pth``.
The training loop, its checkpoints and resume are ``pico.learn.training.fit``'s.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch.utils.data import Dataset

from pico import seeding
from pico.learn import augment, model, training
from pico.rerun import result_settings
from pico.store import framestore


class FrameData(Dataset):
    """The snippets of ``frame_dirs`` (one frame store each, sorted by name, so the order does
    not depend on the sharding). Item (iteration, slot, snippet index, visit) -> two cropped and
    flipped uint8 views of one of the snippet's frames and their colour draws (applied to the
    batch on the training device, ``pico.learn.augment.colour``); frame, crops, flips and
    colours drawn from (seed, iteration, slot)."""

    def __init__(self, frame_dirs: list[str], crop_size: int, seed: int):
        self.files = sorted(
            (str(p) for d in frame_dirs for p in Path(d).glob(f"*{framestore.SUFFIX}")), key=lambda p: (Path(p).name, p)
        )
        if not self.files:
            raise ValueError(
                f"no frame stores (*{framestore.SUFFIX}) in {', '.join(map(str, frame_dirs))}: "
                "nothing to train the encoder on"
            )
        self.crop_size, self.seed = crop_size, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, key: tuple[int, int, int, int]):
        iteration, slot, index, _ = key
        g = torch.Generator().manual_seed(int(seeding.rng(self.seed, "image-views", iteration, slot).integers(2**62)))
        with framestore.FrameStore(self.files[index]) as store:
            image = torch.from_numpy(store[int(torch.randint(len(store), (1,), generator=g))]).permute(2, 0, 1)
        crops = [augment.random_crop(image.shape[1], image.shape[2], self.crop_size, g) for _ in range(2)]
        views, colours = [augment.view(image, c) for c in crops], [augment.draw_colour(g) for _ in crops]
        return (*views, *colours)


def collate(samples) -> tuple[torch.Tensor, torch.Tensor, augment.Colour, augment.Colour]:
    """Stack each side's views and colour draws."""
    views = (torch.stack([s[k] for s in samples]) for k in (0, 1))
    return (*views, *(augment.Colour.cat([s[k] for s in samples]) for k in (2, 3)))


def learning_settings(settings: dict) -> dict:
    """The ``encoder`` settings that change what it learns (``pico.rerun``'s result settings):
    what the resume fingerprint and the checkpoint hold, so the checkpoint, whose sha256 every
    model built on it records, has the same bytes however the run was run."""
    return result_settings("encoder", settings)


class ImageRecipe(training.Recipe):
    """``pico.learn.training.fit``'s recipe for image-level MoCo-v2 of ``model.arch`` on the frames of
    ``frame_dirs`` with the config's ``encoder`` settings. One process: the stand-in is small,
    and its shuffling BN is emulated by groups (``model.ImageMoCo``), not across GPUs."""

    count = "images"

    def __init__(self, frame_dirs: list[str], config: dict, device: torch.device):
        settings, arch = config["encoder"], config["model"]["arch"]
        self.data = FrameData(frame_dirs, settings["crop_size"], settings["seed"])
        torch.manual_seed(settings["seed"])
        moco = model.ImageMoCo(
            arch,
            settings["dim"],
            settings["queue_size"],
            settings["key_momentum"],
            settings["temperature"],
            settings["bn_groups"],
        )
        fingerprint = json.dumps(
            {
                "arch": arch,
                "encoder": learning_settings(settings),
                "frames": training.files_fingerprint(self.data.files),
            },
            sort_keys=True,
        )
        super().__init__(moco.to(device), settings, fingerprint)
        self.arch = arch

    def batches(self, start, rank, world, device, *, stop=None):
        if world > 1:
            raise ValueError("the image-level MoCo-v2 encoder trains in one process (encoder.gpus is 1)")
        settings = self.settings
        stop = settings["iterations"] if stop is None else stop
        sampler = training.IterationSampler(len(self.data), settings["batch_size"], start, stop, settings["seed"])
        return training.iteration_loader(
            self.data, sampler, collate_fn=collate, workers=settings["workers"], device=device
        )

    def loss(self, step, batch, iteration, rank, world, device):
        view_q, view_k = (
            augment.colour(v.to(device, non_blocking=True), c.to(device)) for v, c in zip(batch[:2], batch[2:])
        )
        shuffle = torch.Generator().manual_seed(
            int(seeding.rng(self.settings["seed"], "shuffle-bn", iteration).integers(2**62))
        )
        return step(view_q, view_k, shuffle), len(view_q)

    def result(self) -> dict:
        return {
            "arch": self.arch,
            "state_dict": self.model.official_state(),
            "iteration": self.settings["iterations"],
            "config": learning_settings(self.settings),
            "frames": len(self.data.files),
        }


def train(
    frame_dirs: list[str],
    config: dict,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    on_iteration=None,
) -> Path:
    """Train the stand-in encoder on ``frame_dirs`` with ``config``'s ``encoder`` block and
    ``model.arch``; the checkpoint at ``out``."""
    use_cuda = torch.cuda.is_available() and config["encoder"]["device"] != "cpu"
    device = torch.device("cuda" if use_cuda else "cpu")
    return training.fit(
        ImageRecipe(frame_dirs, config, device), out, metrics_out, work_dir, device=device, on_iteration=on_iteration
    )
