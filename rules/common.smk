# Config validation and the shard layout, fixed at parse time from the input lists.
#
# Params convention: a param a rule's script reads has a plain name; a param that exists only
# so that changing those settings reruns the rule (Snakemake reruns a job whose params
# changed) is named rerun_*, and its script never reads it (it reads the config).
# tests/test_layout.py checks both.
import os
import re

import pico.reporting.ablations
import pico.config
import pico.data.sources
import pico.data.weights
from snakemake.exceptions import WorkflowError

try:
    pico.config.validate(
        config, workflow.source_path("../workflow/schemas/config.schema.yaml")
    )
    SHARDS = {
        name: pico.data.sources.shards(
            pico.data.sources.entries(ds, config["seed"], name=name),
            ds["videos_per_shard"],
        )
        for name, ds in config["datasets"].items()
    }
except (pico.config.ConfigError, ValueError, OSError) as e:
    raise WorkflowError(str(e)) from None


def per_shard(pattern, **fixed):
    """``pattern`` for every shard of every configured dataset (other fields from ``fixed``)."""
    return [
        pattern.format(dataset=name, shard=shard, **fixed)
        for name, shards in SHARDS.items()
        for shard in shards
    ]


def shard_entries(wildcards):
    return SHARDS[wildcards.dataset][wildcards.shard]


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def local_files(wildcards):
    """A local dataset's files of the shard, those Snakemake can track
    (pico.data.sources.trackable): a file replaced in place reruns its shard's download, shots
    and frames. The job records every file's size and modification time, which shots and frames
    check (a file replaced with its old time, one Snakemake cannot track)."""
    if dataset_config(wildcards)["source"] != "local":
        return []
    return [
        e["path"]
        for e in shard_entries(wildcards)
        if pico.data.sources.trackable(e["path"])
    ]


# RAFT backends run on a GPU when the job gets one (rules/flow.smk declares it for SLURM);
# the others are OpenCV's, on CPUs (pico.data.flow.OPENCV_BACKENDS).
RAFT_BACKENDS = ("raft", "raft_small")
FLOW_ON_GPU = (
    config["flow"]["backend"] in RAFT_BACKENDS and config["flow"]["device"] != "cpu"
)
# The flow settings of every flow job: the flow stage's, and track_quality's per backend.
FLOW_SETTINGS = [config["flow"]] + [
    pico.config.tapvid_flow(config, backend)
    for backend in pico.config.tapvid_backends(config)
]
# RAFT's default weights the run fetches once (rules/flow.smk), {file name: backend}.
RAFT_FETCHED = {
    os.path.basename(pico.data.weights.default_file(flow["backend"])): flow["backend"]
    for flow in FLOW_SETTINGS
    if flow["backend"] in RAFT_BACKENDS and flow["weights"] == "default"
}
# only where Snakemake plans the run: a job (a SLURM job re-parses this file) may start before
# flow_weights has fetched the file, on a node that cannot reach the host and need not
if workflow.is_main_process:
    for flow in FLOW_SETTINGS:
        if problem := pico.data.weights.check_fetchable(flow):
            raise WorkflowError(problem)


def raft_weights(flow):
    """The weights file a flow job with the settings ``flow`` reads, as an input: RAFT's fetched
    default or the configured file; nothing for OpenCV's backends."""
    if flow["backend"] not in RAFT_BACKENDS:
        return []
    if flow["weights"] == "default":
        return [pico.data.weights.default_file(flow["backend"])]
    return local_file(flow["weights"])


# Generous minutes per 10-second snippet (300 frames at the paper's 256 short side).
FLOW_MINUTES_PER_VIDEO = (
    0.5 if FLOW_ON_GPU else 1 if config["flow"]["backend"] == "dis" else 20
)
# The tables' (gamma, delta) cuts, tracking.thresholds: {name in paths (pico.config.cut_name):
# (gamma, delta)}.
CUTS = {
    pico.config.cut_name(gamma, delta): (float(gamma), float(delta))
    for gamma, delta in config["tracking"]["thresholds"]
}


# Pretraining runs on a GPU when the job gets one (rules/pretrain.smk declares it for SLURM).
PRETRAIN_ON_GPU = config["pretrain"]["device"] != "cpu"
PRETRAIN_RUNTIME_KEYS = pico.config.PRETRAIN_RUNTIME_KEYS


def local_file(path):
    """A weights file named by the config as an input (replacing it reruns its users), or
    nothing for torchvision's default weights / no checkpoint."""
    return [] if path in (None, "default") else [path]


# The MoCo-v2 baseline's encoder file (Table 1's MoCo-v2 row), an input where one is named.
MOCO_V2_FILE = local_file(
    config["benchmarks"]["moco_v2_checkpoint"] or config["model"]["encoder_checkpoint"]
)


def per_dataset_shard(pattern):
    """Input function: ``pattern`` for every shard of the job's dataset."""
    return lambda w: [
        pattern.format(shard=s, **dict(w.items())) for s in SHARDS[w.dataset]
    ]


def per_grouped_shard(pattern):
    """Input function: ``pattern`` for every shard of the job's {shard}, a shard or a group of
    them (``pico.data.sources.grouped``)."""
    return lambda w: [
        pattern.format(**{**dict(w.items()), "shard": s})
        for s in pico.data.sources.grouped(w.shard)
    ]


# Table 1's pair sets: every configured method at sampling.strategy, on every cut of
# tracking.thresholds ({cut}), drawn a shard a job (rules/pairs.smk's cut_pairs).
TABLE_PAIR_SETS = [
    f"{method}/{config['sampling']['strategy']}" for method in config["methods"]
]
TABLE_PAIR_NAMES = [f"{pair_set}/{cut}" for pair_set in TABLE_PAIR_SETS for cut in CUTS]
# Every other pair set, an ablation's, is drawn a group of shards_per_pair_job shards a job
# (point_pairs), into a file named by the group.
PAIR_GROUPS = {
    name: pico.data.sources.shard_groups(
        list(shards), config["datasets"][name]["shards_per_pair_job"]
    )
    for name, shards in SHARDS.items()
}


def pair_files(pattern, names):
    """Input function: ``pattern`` for every file ({shard}) of every pair set {name}
    (method/sampling/cut) of ``names(wildcards)``: a shard's for Table 1's sets on its cuts, a
    group's for any other."""

    def files(w):
        return [
            pattern.format(name=name, shard=s, **dict(w.items()))
            for name in names(w)
            for s in (
                SHARDS[w.dataset]
                if name in TABLE_PAIR_NAMES
                else PAIR_GROUPS[w.dataset]
            )
        ]

    return files


# Every model of the benchmark tables (Tables 1-3), pico.config.Model each.
TABLE_MODELS = [
    pico.config.Model(method, dataset, config["sampling"]["strategy"], gamma, delta)
    for method in config["methods"]
    for dataset in SHARDS
    for gamma, delta in config["tracking"]["thresholds"]
]
# Section 4.3's ablation grids (rules/ablations.smk), one per configured figure.
ABLATIONS = config["ablations"]
# Every configured model, each once, {name: pico.config.Model}: the tables' models, then the
# ablation points beyond them.
MODELS = {
    model.name: model
    for model in TABLE_MODELS
    + [
        point
        for spec in ABLATIONS.values()
        for point in pico.reporting.ablations.points(spec)
    ]
}
# The cuts that configured models train on, per dataset, loosest last: the tables' and the
# ablations'.
MODEL_CUTS = {
    dataset: list(
        dict.fromkeys(
            model.cut
            for model in sorted(MODELS.values(), key=lambda m: (m.gamma, m.delta))
            if model.dataset == dataset
        )
    )
    for dataset in SHARDS
}


def per_model(pattern):
    """``pattern`` with {model} = the name of every model of the benchmark tables."""
    return [pattern.format(model=m.name) for m in TABLE_MODELS]


# The benchmarks (rules/benchmarks.smk): data roots, demo data and settings per benchmark.
# The COCO probe's (the ablations' and the reproduction's) data is the demo's: their outputs say so.
DEMO_BENCHMARK = pico.config.on_demo_data(config, "coco_probe")
# the demo data's size, and the world they are drawn from (pico.config.demo_world), as params
DEMO_SETTINGS = {k: v for k, v in config["benchmarks"]["demo"].items() if k != "world"}
DEMO_WORLD = pico.config.demo_world(config)
BENCHMARK_ROOTS = pico.config.benchmark_roots(config)
BENCHMARKS = [name for name, root in BENCHMARK_ROOTS.items() if root]


def demo_data(wildcards):
    return pico.config.on_demo_data(config, wildcards.benchmark)


def on_gpu(wildcards):
    return (
        pico.config.benchmark_settings(config, wildcards.benchmark)["device"] != "cpu"
    )


def result_settings(wildcards):
    """The settings that change a benchmark's result, as rerun triggers (the job reads the
    runtime ones, device and checkpoint_every, from the config)."""
    return {
        k: v
        for k, v in pico.config.benchmark_settings(config, wildcards.benchmark).items()
        if k not in pico.config.BENCHMARK_RUNTIME_KEYS
    }


# Every wildcard of the workflow and what it matches (they apply to every rule).
wildcard_constraints:
    dataset="|".join(map(re.escape, SHARDS)),
    shard=r"\d{5}",
    gamma=r"[0-9.e+-]+",
    delta=r"[0-9.e+-]+",
    method="|".join(pico.config.METHODS),
    cut="|".join(map(re.escape, CUTS)),  # a tables' cut (rules/pairs.smk's cut_pairs)
    sampling="anchor|random",
    benchmark="|".join(BENCHMARKS),
    figure="|".join(pico.reporting.ablations.TITLES),
    seed=r"\d+",
