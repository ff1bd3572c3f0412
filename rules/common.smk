# The config, validated, and the plan of everything it builds (pico.plan), made once at parse
# time. The rules read PLAN's named fields and the input functions below; no rules file derives
# state of its own.
#
# Params convention: a param that a rule's script reads has a plain name. A param that exists
# only so that changing those settings reruns the rule (Snakemake reruns a job whose params
# changed) is named rerun_*, and its script never reads it (it reads the config). Which settings
# rerun a job is pico.rerun's policy. tests/test_layout.py checks both.
import gc
import re

import pico.config
import pico.data.sources
import pico.plan
import pico.rerun
from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

try:
    pico.config.validate(
        config, workflow.source_path("../workflow/schemas/config.schema.yaml")
    )
    PLAN = pico.plan.Plan(config)
except (pico.config.ConfigError, ValueError, OSError) as e:
    raise WorkflowError(str(e)) from None
for warning in PLAN.warnings:
    logger.warning(warning)
# The plan lives as long as the process and holds every video's entry: half a million dicts at
# the paper's scale. Python's garbage collector walks every tracked object at each full
# collection and at exit; freezing what exists now leaves the plan out of those walks
# (docs/measurements.md: paper.yaml's dry run 6.0 -> 5.0 s).
gc.freeze()


def get_entries(wildcards):
    """The videos of the job's shard."""
    return PLAN.shards[wildcards.dataset][wildcards.shard]


def get_dataset(wildcards):
    """The config of the job's dataset (``datasets.<name>``)."""
    return config["datasets"][wildcards.dataset]


def get_local_files(wildcards):
    """A local dataset's files of the job's shard, those Snakemake can track
    (pico.data.sources.trackable): a file replaced in place reruns its shard's download, shots
    and frames. The download job records every file's size and modification time, which shots
    and frames check (a file replaced with its old time, one Snakemake cannot track)."""
    if get_dataset(wildcards)["source"] != "local":
        return []
    return [
        e["path"]
        for e in get_entries(wildcards)
        if pico.data.sources.trackable(e["path"])
    ]


def get_yt8m_lookup(wildcards):
    """A yt8m shard's look-ups, which say which YouTube videos its ranks are (rules/yt8m.smk)."""
    if get_dataset(wildcards)["source"] != "yt8m":
        return []
    return [f"results/{wildcards.dataset}/lookup/{wildcards.shard}.parquet"]


def get_yt8m_selection(wildcards):
    """A yt8m dataset's selection: training uses only the first `sample` ok videos."""
    if get_dataset(wildcards)["source"] != "yt8m":
        return []
    return [f"results/{wildcards.dataset}/selection.parquet"]


def get_download_seed(wildcards):
    """The seed, which makes the synthetic source's videos (a rerun trigger); the other sources'
    downloads never rerun (pico.rerun)."""
    return config["seed"] if get_dataset(wildcards)["source"] == "synthetic" else None


def get_detection_settings(wildcards):
    """TransNetV2's settings and the seed, which choose the snippet only with shots: true
    (rerun triggers)."""
    if not get_dataset(wildcards)["shots"]:
        return None
    settings = pico.rerun.result_settings("shot_detection", config["shot_detection"])
    return {**settings, "seed": config["seed"]}


def get_dataset_files(pattern):
    """Input function: ``pattern`` for every shard of the job's dataset."""
    return lambda w: [
        pattern.format(shard=s, **dict(w.items())) for s in PLAN.shards[w.dataset]
    ]


def get_group_files(pattern):
    """Input function: ``pattern`` for every shard of the job's {shard}, a shard or a group of
    them (``pico.plan.grouped``)."""
    return lambda w: [
        pattern.format(**{**dict(w.items()), "shard": s})
        for s in pico.plan.grouped(w.shard)
    ]


def get_pair_files(pattern, names):
    """Input function: ``pattern`` for every file ({shard}) of every pair set {name}
    (method/sampling/cut) of ``names(wildcards)`` (``Plan.pair_files_of``)."""
    return lambda w: PLAN.pair_files_of(
        w.dataset, names(w), pattern, **{k: v for k, v in w.items() if k != "dataset"}
    )


def get_evaluation_root(wildcards):
    """The data folder of the job's benchmark."""
    return PLAN.evaluation_roots[wildcards.benchmark]


def on_demo_data(wildcards):
    """Whether the job's benchmark runs on the demo's generated data."""
    return pico.plan.on_demo_data(config, wildcards.benchmark)


def on_gpu(wildcards):
    """Whether the job's benchmark asks for a GPU."""
    return pico.plan.evaluation_settings(config, wildcards.benchmark)["device"] != "cpu"


def get_evaluation_settings(wildcards):
    """The settings that change the job's benchmark result, as rerun triggers (the job reads the
    runtime ones, device, checkpoint_every and workers, from the config)."""
    return pico.rerun.result_settings(
        "evaluation", pico.plan.evaluation_settings(config, wildcards.benchmark)
    )


# Every wildcard of the workflow and what it matches (they apply to every rule).
wildcard_constraints:
    dataset="|".join(map(re.escape, PLAN.shards)),
    shard=r"\d{5}",
    gamma=r"[0-9.e+-]+",
    delta=r"[0-9.e+-]+",
    method="|".join(pico.config.METHODS),
    cut="|".join(map(re.escape, PLAN.cuts)),  # a tables' cut (rules/pairs.smk's cut_pairs)
    sampling="anchor|random",
    benchmark="|".join(PLAN.evaluations),
    figure=r"figure\d+",
    seed=r"\d+",
