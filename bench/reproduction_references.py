"""A reference for the mini-reproduction's probe (docs/reproduction.md, "The encoder"): the COCO
linear probe on an untrained decoder, i.e. the network every method starts from (the frozen
random encoder and the decoder's initialisation of ``pretrain.seed`` = the seed), with the
reproduction's probe settings and seed. Beside the trained models of the same seeds it shows
what pretraining the decoder adds on a frozen random encoder: if the trained models are not
above it, the probe cannot tell the methods apart at this scale.

Run in the folder of a finished ``snakemake reproduction`` (it reads that run's pair files
for the data set's index and its demo COCO; it writes only under a temporary folder):

    .venv/bin/python bench/reproduction_references.py --configfile config/config.yaml config/mini.yaml [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

import yaml
from snakemake.utils import update_config

from pico import config as pcfg
from pico import plan
from pico.evaluation import registry
from pico.learn import pretrain

SCHEMA = Path(__file__).resolve().parent.parent / "workflow/schemas/config.schema.yaml"


def layered(files: list[str]) -> dict:
    """The validated config of ``files`` laid over each other, as ``--configfile`` does."""
    cfg: dict = {}
    for f in files:
        update_config(cfg, yaml.safe_load(Path(f).read_text()))
    return pcfg.validate(cfg, SCHEMA)


def untrained_probe(cfg: dict, seed: int, work: Path) -> dict[str, float]:
    """The probe's scores on the network of ``seed`` before any pretraining step."""
    method, dataset, sampling = cfg["methods"][0], next(iter(cfg["datasets"])), cfg["sampling"]["strategy"]
    gamma, delta = cfg["tracking"]["thresholds"][0]
    cut = pcfg.cut_name(gamma, delta)
    files = sorted(glob.glob(f"results/{dataset}/pairs/{method}/{sampling}/{cut}/[0-9]*[0-9].parquet"))
    if not files:
        raise SystemExit(
            f"no pair files under results/{dataset}/pairs/{method}/{sampling}/{cut}: run the reproduction first"
        )
    settings = {"model": cfg["model"], "pretrain": {**cfg["pretrain"], "seed": seed, "iterations": 0}}
    model = pretrain.train(files, settings, work / "model.pt", work / "metrics.csv", work / "work")
    probe = plan.evaluation_settings(cfg, "coco_probe")
    root = cfg["benchmarks"]["coco_root"] or "results/benchmark_data/demo_coco"  # rules/common.smk's COCO_ROOT
    return registry.evaluate("coco_probe", str(model), None, root, cfg=probe, seed=seed, work=work / "probe")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configfile", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=None, help="default: reproduction.seeds")
    args = parser.parse_args()
    cfg = layered(args.configfile)
    seeds = args.seeds if args.seeds is not None else cfg["reproduction"]["seeds"]
    print("| reference | seed | mIoU | fIoU | seconds |\n|---|--:|--:|--:|--:|")
    for seed in seeds:
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            scores = untrained_probe(cfg, seed, Path(tmp))
            print(
                f"| untrained decoder | {seed} | {scores['mIoU']:.2f} | {scores['fIoU']:.2f} "
                f"| {time.perf_counter() - start:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
