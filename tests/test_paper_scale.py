"""config/paper.yaml at full size (240,000 K400 clips; 240,000 YT8M-S videos and a reserve) plans in one dry run.

Timing lives in bench/dag_scale.py; these tests prove the plan is complete and sharded, and pin
how many jobs a shard costs (the dry run's time grows with the job count)."""

import math
import subprocess

import yaml

from dag_scale import ABLATIONS, PAPER, write_inputs, write_sample_size
from pico import plan
from pico.config import cut_name
from picotest import REPO, run_snakemake, scheduled, snakemake_command

PER_SHARD = {name: d["videos_per_shard"] for name, d in yaml.safe_load(PAPER.read_text())["datasets"].items()}
PER_PAIR_JOB = {name: d["shards_per_pair_job"] for name, d in yaml.safe_load(PAPER.read_text())["datasets"].items()}


def shard_counts(videos: int) -> dict[str, int]:
    """Shards of paper.yaml's datasets at ``videos`` a dataset (YT8M-S: its 10 % reserve on top)."""
    return {
        "k400": math.ceil(videos / PER_SHARD["k400"]),
        "yt8m_s": math.ceil(math.ceil(videos * 1.1) / PER_SHARD["yt8m_s"]),
    }


def test_paper_config_dry_run_plans_every_shard(tmp_path):
    write_inputs(tmp_path, 240_000)
    out = run_snakemake(tmp_path, "videos", "-n", "--configfile", str(REPO / "config/paper.yaml"))
    k400, yt8m = shard_counts(240_000).values()  # 240 and 264 at 1,000 videos a shard
    shards = k400 + yt8m
    assert scheduled(out.stdout + out.stderr) == {
        "yt8m_sample": 1,
        "yt8m_lookup": yt8m,
        "download": shards,
        "detect_shots": shards,
        "extract_frames": shards,
        "videos": 1,
    }


def test_a_paper_shard_costs_six_jobs_and_an_ablation_pair_set_one_per_group_of_shards(tmp_path):
    """At 10,000 videos a dataset (10 K400 shards, 11 YT8M-S with the reserve), everything: per
    shard download, shots, frames, flow, raw tracks and one cut_pairs job (Table 1's cut and its
    three pair sets); the ablations add, per pair set beyond Table 1's, one point_pairs job per
    group of `shards_per_pair_job` shards (its cut made inside; 8 shards: groups of 8 and 2, 8
    and 3), and no cut_tracks job (at full size: about 3,400 and 4,000 jobs)."""
    write_inputs(tmp_path, 10000)
    configs = ["--configfile", str(PAPER), str(write_sample_size(tmp_path, 10000))]
    shards = shard_counts(10000)
    out = run_snakemake(tmp_path, "-n", "-q", "rules", *configs)
    paper = scheduled(out.stdout + out.stderr)
    per_shard = ("download", "detect_shots", "extract_frames", "estimate_flow", "raw_tracks", "cut_pairs")
    assert {rule: paper[rule] for rule in per_shard} == dict.fromkeys(per_shard, sum(shards.values()))
    assert paper["yt8m_lookup"] == shards["yt8m_s"] and not {"point_pairs", "cut_tracks"} & set(paper)

    out = run_snakemake(tmp_path, "-n", "-q", "rules", *configs, str(ABLATIONS))
    with_ablations = scheduled(out.stdout + out.stderr)
    paper_config = yaml.safe_load(PAPER.read_text())
    table = {  # Table 1's pair sets: cut_pairs'
        (dataset, method, paper_config["sampling"]["strategy"], cut_name(*thresholds))
        for dataset in shards
        for method in paper_config["methods"]
        for thresholds in paper_config["tracking"]["thresholds"]
    }
    pair_sets = {
        (point.dataset, point.method, point.sampling, point.cut)
        for spec in yaml.safe_load(ABLATIONS.read_text())["ablations"].values()
        for point in plan.ablation_points(spec)
    }
    added = pair_sets - table  # YT8M-S: 13 random cuts; K400: random and anchor on 3 cuts, one Table 1's
    groups = {dataset: math.ceil(n / PER_PAIR_JOB[dataset]) for dataset, n in shards.items()}
    assert groups == {"k400": 2, "yt8m_s": 2}
    assert with_ablations["point_pairs"] == sum(groups[dataset] for dataset, *_ in added)
    assert len([s for s in added if s[0] == "yt8m_s"]) == 13 and len([s for s in added if s[0] == "k400"]) == 5
    assert {rule: with_ablations[rule] for rule in per_shard} == dict.fromkeys(per_shard, sum(shards.values()))
    assert "cut_tracks" not in with_ablations


#: Snakemake's command line, run by a Python that says at exit how many objects ``gc.freeze()`` moved out of the
#: collector's generations.
FREEZE_REPORTER = (
    "import atexit, gc, sys\n"
    "from snakemake.cli import main\n"
    "atexit.register(lambda: print('frozen objects:', gc.get_freeze_count(), file=sys.stderr))\n"
    "main()\n"
)


def test_the_parse_takes_the_plans_entries_out_of_the_garbage_collector(tmp_path):
    """rules/common.smk freezes the plan (bench/dag_scale.py: a third of the paper's dry run was the
    collector walking it): every entry of both datasets' source lists, 10,000 K400 clips and 11,000
    YT8M-S ranks, is a dict the collector no longer walks."""
    write_inputs(tmp_path, 10000)
    cmd, env = snakemake_command(
        tmp_path, "--list-rules", "--configfile", str(PAPER), str(write_sample_size(tmp_path, 10000))
    )
    assert cmd[1:3] == ["-m", "snakemake"]
    cmd[1:3] = ["-c", FREEZE_REPORTER]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    assert "pretrain_model" in out.stdout
    frozen = int(out.stderr.rsplit("frozen objects:", 1)[1])
    assert frozen > 10000 + 11000
