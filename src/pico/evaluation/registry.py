"""Section 4's benchmarks by name: how a model is evaluated on each (linear probes of Tables 1
and 3, Mask R-CNN of Table 2), the per-model result record and the tables of results.

Models: a pretraining run's ``model.pt`` (its dense network f, or for Mask R-CNN its backbone +
FPN), or ``None`` for the MoCo-v2 (IN-1K) baseline, its ResNet-50 dilated to output stride 4.
Mask R-CNN has no MoCo-v2 row (``pico.config.WITHOUT_MOCO_V2``).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import torch

from pico.config import WITHOUT_MOCO_V2, model_name
from pico.evaluation import mask_rcnn, probe
from pico.learn import model
from pico.learn.resume import Resumable
from pico.rerun import result_settings
from pico.store.checkpoint import sha256

TITLES = {
    "coco_probe": "COCO semantic segmentation, linear probe (Table 1)",
    "coco_maskrcnn": "COCO detection and instance segmentation, Mask R-CNN with frozen FPN (Table 2)",
    "voc": "Pascal VOC 2012 semantic segmentation, linear probe (Table 3)",
    "cityscapes": "Cityscapes semantic segmentation, linear probe (Table 3)",
    "nyu_depth": "NYU-depth v2 depth prediction, linear probe (Table 3)",
}
METRICS = {
    "coco_probe": ("mIoU", "fIoU"),
    "coco_maskrcnn": mask_rcnn.METRICS,
    "voc": ("mIoU", "fIoU"),
    "cityscapes": ("mIoU", "fIoU"),
    "nyu_depth": ("RMSE",),
}


def benchmarked(
    wildcards: Mapping[str, str], model_path: str | None, config: dict
) -> tuple[str, str | None, str | None]:
    """A benchmark job's model: (its name, its model.pt or None for the MoCo-v2 baseline, the
    MoCo-v2 encoder checkpoint), from the job's wildcards (a pretrained model has
    {method}/{dataset}/{sampling}/g{gamma}_d{delta}; the baseline none), its model.pt input
    ``model_path`` (None for the baseline, which has none) and the config."""
    moco_v2 = config["benchmarks"]["moco_v2_checkpoint"] or config["model"]["encoder_checkpoint"]
    if "method" not in wildcards:
        return "moco_v2", None, moco_v2
    name = model_name(*(wildcards[k] for k in ("method", "dataset", "sampling", "gamma", "delta")))
    return name, model_path, moco_v2


def fingerprint(benchmark: str, model_path: str | None, moco_v2: str | None, root: str, *, cfg: dict, seed: int) -> str:
    """What a benchmark's checkpoint must agree on to be resumed: benchmark, model file
    content, data root and the settings that shape learning."""
    weights = model_path or moco_v2
    return json.dumps(
        {
            "benchmark": benchmark,
            "model": weights and sha256(weights),
            "root": str(root),
            "seed": seed,
            "config": result_settings("evaluation", cfg),
        },
        sort_keys=True,
    )


def evaluate(
    benchmark: str,
    model_path: str | None,
    moco_v2: str | None,
    root: str,
    *,
    cfg: dict,
    seed: int,
    work: str | Path | None = None,
) -> dict[str, float]:
    """Train the benchmark's head on the frozen model and score it (checkpoints in ``work``)."""
    resume = Resumable(
        work and Path(work) / "checkpoint.pt",
        fingerprint(benchmark, model_path, moco_v2, root, cfg=cfg, seed=seed),
        cfg["checkpoint_every"],
    )
    if model_path is None and benchmark in WITHOUT_MOCO_V2:
        raise ValueError(f"{benchmark} has no MoCo-v2 baseline")
    net, channels = frozen_network(model_path, moco_v2, seed)
    if benchmark == "coco_maskrcnn":
        return mask_rcnn.run(net.backbone, root, cfg, seed, resume)
    return probe.run(net, channels, benchmark, root, cfg=cfg, seed=seed, resume=resume)


def frozen_network(model_path: str | None, moco_v2: str | None, seed: int) -> tuple[torch.nn.Module, int]:
    """A model's dense network and its channels: a pretraining run's f (128-d at 1/4), or for
    ``model_path`` None the MoCo-v2 baseline, its ResNet-50 dilated to 1/4 (2048-d)."""
    if model_path is None:
        torch.manual_seed(seed)  # a random-init baseline (no checkpoint: the demo) is the same on every run
        return model.dilated_encoder("resnet50", moco_v2), 2048
    net = probe.pretrained_features(model_path)
    return net, net.dim


def encoder_c2(arch: str, checkpoint: str | None, seed: int) -> torch.nn.Module:
    """The frozen encoder's own dense features: its stride-4 stage C2 (stem + layer1: 64
    channels for ResNet-18, 256 for ResNet-50, at 1/4) of the MoCo ``checkpoint``, or for None
    the random initialisation the pretrained decoders sit on: seeded with ``seed`` before it is
    built, as ``probe.pretrained_features`` rebuilds a model's encoder with pretrain.seed."""
    torch.manual_seed(seed)
    encoder = model.load_moco_encoder(arch, checkpoint)
    return torch.nn.Sequential(encoder.conv1, encoder.bn1, encoder.relu, encoder.maxpool, encoder.layer1).eval()


def result(
    metrics_: dict, benchmark: str, model_name: str, model_path: str | None, *, cfg: dict, demo: bool, seconds: float
) -> dict:
    """One benchmark result: metrics, the model (and its file's sha256), settings, time."""
    parts = model_name.split("/")
    row = {"method": parts[0], "dataset": parts[1] if len(parts) > 1 else None}
    if len(parts) == 4:
        gamma, delta = parts[3].removeprefix("g").split("_d")
        row.update(sampling=parts[2], gamma=float(gamma), delta=float(delta))
    return {
        **row,
        **metrics_,
        "model": model_name,
        "checkpoint": model_path,
        "checkpoint_sha256": model_path and sha256(model_path),
        "benchmark": benchmark,
        "demo": demo,
        "config": cfg,
        "seconds": round(seconds, 1),
    }


def table(results: list[dict], benchmark: str, demo: bool) -> dict:
    """A results table: the MoCo-v2 baseline first, then every pretrained model."""
    name = TITLES[benchmark] + (" -- DEMO: the synthetic world's benchmark, not the real dataset" if demo else "")
    keys = ("method", "dataset", "sampling", "gamma", "delta", *METRICS[benchmark], "model")
    return {"benchmark": name, "demo": demo, "rows": [{k: r.get(k) for k in keys} for r in ordered(results)]}


def ordered(results: list[dict]) -> list[dict]:
    """Results in the tables' order: the MoCo-v2 baseline first, then by dataset and method."""
    return sorted(results, key=lambda r: (r["method"] != "moco_v2", r["dataset"] or "", r["method"]))
