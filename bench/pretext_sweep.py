"""Choose pretraining settings on the held-out pretext, never on a benchmark (docs/reproduction.md).

Pretrains one method on a built workflow folder's pair files (the mini-reproduction's, say)
at every (lr, queue_size) of the grid and prints the held-out pretext (``pico.learn.model.pretext``:
InfoNCE, its chance level and the cosine gap, on ``pretrain.heldout_videos`` videos never
trained on) at every ``pretrain.checkpoint_every`` iterations, and the collapse monitor at the
end, as a Markdown table. Runs go one after another, one thread each; ``--jobs 2`` runs two at
once on 2 cores.

    .venv/bin/snakemake pairs results/encoder/demo/moco_v2.pth --cores 2 -d RUN \\
        --configfile config/config.yaml config/mini.yaml
    .venv/bin/python bench/pretext_sweep.py RUN --configfile config/config.yaml config/mini.yaml \\
        --lr 0.03 0.01 --queue 4096 1024 512 --iterations 300
"""

from __future__ import annotations

import argparse
import copy
import csv
import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml

from pico import config as pcfg
from pico.config import cut_name

REPO = Path(__file__).resolve().parents[1]


def merged(paths: list[str]) -> dict:
    """The config files laid over one another, as Snakemake's --configfile does, validated."""

    def merge(a: dict, b: dict) -> dict:
        out = copy.deepcopy(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    config: dict = {}
    for path in paths:
        config = merge(config, yaml.safe_load(Path(path).read_text()))
    return pcfg.validate(config, REPO / "workflow/schemas/config.schema.yaml")


def run(args: tuple) -> Path:
    """One pretraining of the sweep into ``out``: (folder, config, method, out)."""
    folder, config, method, out = args
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch

    from pico.learn import pretrain

    torch.set_num_threads(1)
    dataset = next(iter(config["datasets"]))
    cut = cut_name(*config["tracking"]["thresholds"][0])
    sampling = config["sampling"]["strategy"]
    files = sorted(map(str, (folder / f"results/{dataset}/pairs/{method}/{sampling}/{cut}").glob("?????.parquet")))
    heldout = sorted(map(str, (folder / f"results/{dataset}/pairs/pico/{sampling}/{cut}").glob("?????.parquet")))
    model = dict(config["model"])
    if model["encoder_checkpoint"]:
        model["encoder_checkpoint"] = str(folder / model["encoder_checkpoint"])
    cfg = {"model": model, "pretrain": config["pretrain"]}
    pretrain.train(files, cfg, out / "model.pt", out / "metrics.csv", out / "work", heldout_files=heldout)
    return out


def checks(metrics: Path) -> dict[int, dict[str, str]]:
    """{iteration: row} of the rows of metrics.csv with a held-out check."""
    with open(metrics, newline="") as f:
        return {int(r["iteration"]): r for r in csv.DictReader(f) if r["heldout_infonce"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="a workflow folder whose pairs and encoder are built")
    parser.add_argument("--configfile", nargs="+", required=True)
    parser.add_argument("--method", default="pico")
    parser.add_argument("--lr", type=float, nargs="+", required=True)
    parser.add_argument("--queue", type=int, nargs="+", required=True)
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path("pretext_sweep"))
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args()
    base = merged(args.configfile)
    todo = []
    for lr, queue in itertools.product(args.lr, args.queue):
        config = copy.deepcopy(base)
        config["pretrain"].update(lr=lr, queue_size=queue, iterations=args.iterations)
        todo.append((args.folder, config, args.method, args.out / f"{args.method}_lr{lr:g}_q{queue}"))
    with ProcessPoolExecutor(args.jobs) as pool:
        outs = list(pool.map(run, todo))
    every = base["pretrain"]["checkpoint_every"]
    steps = list(range(every, args.iterations + 1, every))
    header = f"held-out InfoNCE at {' / '.join(map(str, steps))}"
    print(f"| method | lr | queue | {header} | chance | cosine gap | queue similarity |")
    print("|---|--:|--:|---|--:|--:|--:|")
    for (_, config, method, _), out in zip(todo, outs):
        found = checks(out / "metrics.csv")
        last, p = found[max(found)], config["pretrain"]
        curve = " / ".join(f"{float(found[i]['heldout_infonce']):.3f}" for i in steps if i in found)
        chance, gap, similarity = (float(last[k]) for k in ("heldout_chance", "heldout_cos_gap", "queue_similarity"))
        print(f"| {method} | {p['lr']:g} | {p['queue_size']} | {curve} | {chance:.3f} | {gap:.3f} | {similarity:.3f} |")


if __name__ == "__main__":
    main()
