"""How long Snakemake takes to build the DAG at the paper's scale (config/paper.yaml).

Builds a throw-away working directory with paper.yaml's inputs at full size -- a K400 train
CSV of 240,000 rows (official columns, fake but well-formed distinct 11-character ids), an
empty clip folder, and 240,000 distinct YT8M-S ids -- then times, wall clock, best of
``--repeat``: a quiet dry run (``-n -q``), ``--rulegraph``, a quiet dry run with
``videos_per_shard: 50`` layered on top (the schema default, to show why paper.yaml uses 1,000),
and quiet dry runs with config/paper_ablations.yaml layered on, as it is and with
``shards_per_pair_job: 1`` (an ablation's pair set a job per shard, as until 2026-12-05).
One more, untimed dry run per config with ``-q rules`` (which keeps the "Job stats" table but
not the per-job listing, ~15 MB at 50 videos per shard) gives the job count. Beside each, the
same dry run of a bare workflow with that many jobs (``bare_workflow``: 7 chained rules a
shard, each with an input, an output, a log, a benchmark, params, resources and a Python
``script:``) is timed in the same run, so the ratio, pico's time over Snakemake's own floor,
does not depend on the day's machine speed. pico freezes its parse-time objects out of Python's
garbage collector (rules/common.smk); the bare workflow is timed as written and again with the
same ``gc.freeze()`` after its parse, the floor of that trick, so both ratios are printed.
Prints a Markdown table; progress goes to stderr.

    .venv/bin/python bench/dag_scale.py [-n 240000] [-r 2] [--keep DIR]
"""

from __future__ import annotations

import argparse
import base64
import csv
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

from pico.data import sources, weights
from timing import best_time

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = Path(sys.executable).with_name("snakemake")
PAPER = REPO / "config" / "paper.yaml"
ABLATIONS = REPO / "config" / "paper_ablations.yaml"
K400_COLUMNS = ("label", "youtube_id", "time_start", "time_end", "split")


def fake_ids(n: int, salt: str) -> list[str]:
    """``n`` distinct, deterministic, well-formed YouTube ids (11 chars of [A-Za-z0-9_-])."""
    ids = [base64.urlsafe_b64encode(hashlib.sha1(f"{salt}{i}".encode()).digest())[:11].decode() for i in range(n)]
    if len(set(ids)) != n:
        raise RuntimeError(f"fake ids of {salt!r} collide")
    return ids


def write_inputs(root: Path, n: int) -> None:
    """paper.yaml's inputs under ``root``: the K400 CSV, its empty clip folder, YT8M's TFRecord
    folder (empty: the sample is drawn in a job), an empty COCO folder, MoCo-v2 checkpoint and RAFT weights file."""
    k400 = root / "data" / "kinetics400"
    (k400 / "train").mkdir(parents=True)
    with open(k400 / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(K400_COLUMNS)
        for i, youtube_id in enumerate(fake_ids(n, "k400-")):
            start = (i * 37) % 290
            writer.writerow([f"action number {i % 400:03d}", youtube_id, start, start + 10, "train"])
    (root / "data" / "yt8m" / "video").mkdir(parents=True)  # YT8M's TFRecords: read in a job, not at parse time
    for folder in ("coco", "VOCdevkit/VOC2012", "cityscapes", "nyu"):  # benchmarks and encoder, empty: a dry run
        (root / "data" / folder).mkdir(parents=True)
    (root / "data" / "moco_v2_800ep_pretrain.pth.tar").write_bytes(b"")
    raft = root / weights.default_file("raft")  # as an offline cluster places it: nothing to fetch
    raft.parent.mkdir(parents=True)
    raft.write_bytes(b"")


def write_sample_size(root: Path, n: int) -> Path:
    """A config file that sets ``sample`` of every yt8m dataset of paper.yaml to ``n``."""
    datasets = yaml.safe_load(PAPER.read_text())["datasets"]
    path = root / f"sample_{n}.yaml"
    path.write_text(
        yaml.safe_dump({"datasets": {k: {"sample": n} for k, d in datasets.items() if d["source"] == "yt8m"}})
    )
    return path


def drawn(dataset: dict, n: int) -> int:
    """Videos a paper.yaml dataset of ``n`` videos plans: a yt8m sample's reserve comes on top."""
    return sources.drawn(n, dataset.get("reserve", 0.1)) if dataset["source"] == "yt8m" else n


def write_override(root: Path, key: str, value: int) -> Path:
    """A config file that sets ``key`` of every paper.yaml dataset to ``value``."""
    datasets = yaml.safe_load(PAPER.read_text())["datasets"]
    path = root / f"{key}_{value}.yaml"
    path.write_text(yaml.safe_dump({"datasets": {name: {key: value} for name in datasets}}))
    return path


#: The chained rules of a shard in the bare workflow, as many as pico's per-shard rules at the
#: paper's scale (download, detect_shots, extract_frames, estimate_flow, raw_tracks, cut_pairs
#: and a yt8m look-up or a pair group's share).
BARE_STAGES = 7


def bare_workflow(root: Path, jobs: int, *, frozen: bool = False) -> Path:
    """A folder with a Snakefile of about ``jobs`` jobs in ``BARE_STAGES`` chained rules a shard,
    each with what a pico rule has (input, output, log, benchmark, params, resources, script),
    plus the target ``all``; every shard's first input exists. With ``frozen``, the Snakefile
    calls ``gc.freeze()`` after its parse-time state, as pico's rules/common.smk does after its
    plan. Returns the folder."""
    shards = max(1, round((jobs - 1) / BARE_STAGES))
    folder = root / f"bare_{jobs}{'_frozen' * frozen}"
    (folder / "data").mkdir(parents=True)
    for shard in range(shards):
        (folder / "data" / f"{shard:05d}.txt").write_text("")
    (folder / "noop.py").write_text("pass\n")
    rules = [f"SHARDS = [f'{{i:05d}}' for i in range({shards})]\n"]
    if frozen:
        rules.append("import gc\n\ngc.freeze()\n")
    rules.append(f"rule all:\n    input: expand('out/s{BARE_STAGES}/{{shard}}.txt', shard=SHARDS)\n")
    for stage in range(1, BARE_STAGES + 1):
        source = "data/{shard}.txt" if stage == 1 else f"out/s{stage - 1}/{{shard}}.txt"
        rules.append(
            f"rule s{stage}:\n"
            f"    input: '{source}'\n"
            f"    output: 'out/s{stage}/{{shard}}.txt'\n"
            f"    log: 'logs/s{stage}/{{shard}}.log'\n"
            f"    benchmark: 'benchmarks/s{stage}/{{shard}}.tsv'\n"
            f"    params: settings={{'stage': {stage}, 'seed': 0}}, shard=lambda w: w.shard\n"
            f"    resources: mem_mb=4000, runtime=lambda w: 10 + len(w.shard)\n"
            f"    script: 'noop.py'\n"
        )
    (folder / "Snakefile").write_text("\n".join(rules))
    return folder


def snakemake(
    root: Path, configs: list[Path], *flags: str, snakefile: Path = REPO / "Snakefile"
) -> subprocess.CompletedProcess:
    """Run Snakemake on ``snakefile`` (the repo's; ``bare_workflow``'s has no config) in ``root``;
    raise with its output on failure."""
    cmd = [str(SNAKEMAKE), *flags, "--cores", "1", "-s", str(snakefile), "--directory", str(root)]
    if configs:
        cmd += ["--configfile", *map(str, configs)]
    out = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{out.stdout[-3000:]}{out.stderr[-3000:]}")
    return out


def job_count(root: Path, configs: list[Path]) -> int:
    """Jobs in the dry run's "Job stats" table (its ``total`` row)."""
    out = snakemake(root, configs, "-n", "-q", "rules")
    totals = re.findall(r"^total\s+(\d+)\s*$", out.stdout + out.stderr, re.MULTILINE)
    if not totals:
        raise RuntimeError("no 'total' row in the dry run's Job stats")
    return int(totals[-1])


def per_shard_settings(configs: list[Path]) -> set[int]:
    """The ``videos_per_shard`` values that ``configs`` (layered) give paper.yaml's datasets."""
    datasets = {}
    for path in configs:
        for name, settings in yaml.safe_load(path.read_text()).get("datasets", {}).items():
            datasets.setdefault(name, {}).update(settings)
    return {settings["videos_per_shard"] for settings in datasets.values()}


def measure(root: Path, n: int, repeat: int) -> list[dict]:
    """One row per (config, command): videos, shards, jobs, best wall-clock seconds."""
    datasets = yaml.safe_load(PAPER.read_text())["datasets"]
    size = write_sample_size(root, n)
    settings = [
        ("paper.yaml", [PAPER, size], ["-n -q", "--rulegraph"]),
        ("paper.yaml + videos_per_shard: 50", [PAPER, size, write_override(root, "videos_per_shard", 50)], ["-n -q"]),
        ("paper.yaml + paper_ablations.yaml", [PAPER, size, ABLATIONS], ["-n -q"]),
        (
            "paper.yaml + paper_ablations.yaml + shards_per_pair_job: 1",
            [PAPER, size, ABLATIONS, write_override(root, "shards_per_pair_job", 1)],
            ["-n -q"],
        ),
    ]
    rows = []
    for name, configs, commands in settings:
        (per_shard,) = per_shard_settings(configs)
        jobs = job_count(root, configs)
        floors = {}
        for frozen in (False, True):
            bare = bare_workflow(root, jobs, frozen=frozen)
            floors[frozen] = best_time(
                repeat, lambda bare=bare: snakemake(bare, [], "-n", "-q", snakefile=bare / "Snakefile")
            )
            print(f"  bare workflow of {jobs} jobs (frozen: {frozen}), -n -q: {floors[frozen]:.1f} s", file=sys.stderr)
        for command in commands:
            seconds = best_time(
                repeat, lambda configs=configs, command=command: snakemake(root, configs, *command.split())
            )
            print(f"  {name}, {command}: {seconds:.1f} s", file=sys.stderr)
            rows.append(
                {
                    "config": name,
                    "command": f"`snakemake {command}`",
                    "videos": sum(drawn(d, n) for d in datasets.values()),
                    "shards": sum(math.ceil(drawn(d, n) / per_shard) for d in datasets.values()),
                    "jobs": jobs,
                    "seconds": seconds,
                    "floor": floors[False] if command == "-n -q" else None,
                    "frozen_floor": floors[True] if command == "-n -q" else None,
                }
            )
    return rows


def table(rows: list[dict], n: int, repeat: int) -> str:
    """The rows as a Markdown table, with a header naming the setup."""
    lines = [
        f"DAG build time, {os.cpu_count()} cores, Snakemake "
        f"{subprocess.run([str(SNAKEMAKE), '--version'], capture_output=True, text=True).stdout.strip()}, "
        f"{n:,} videos per dataset, wall clock, best of {repeat}: "
        "`snakemake COMMAND --cores 1 -s Snakefile --directory TMP --configfile config/paper.yaml [override.yaml]`",
        "",
        "| config | command | videos | shards | jobs | seconds | bare workflow, same jobs, s | ratio "
        "| bare workflow + gc.freeze(), s | ratio |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in rows:
        counts = f"{r['videos']:,} | {r['shards']:,} | {r['jobs']:,}"
        floors = [
            f"{r[key]:.1f} | {r['seconds'] / r[key]:.2f}" if r[key] else "– | –" for key in ("floor", "frozen_floor")
        ]
        lines.append(f"| {r['config']} | {r['command']} | {counts} | {r['seconds']:.1f} | {' | '.join(floors)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--videos", type=int, default=240_000, help="videos per dataset (default 240000)")
    parser.add_argument("-r", "--repeat", type=int, default=2, help="timed runs per command, best kept (default 2)")
    parser.add_argument("--keep", type=Path, help="build the working directory in this new folder and keep it")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="pico-dag-"))
    try:
        write_inputs(root, args.videos)
        print(table(measure(root, args.videos, args.repeat), args.videos, args.repeat))
    finally:
        if not args.keep:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
