# The data's own health, for the report. Per dataset, dataset_health plots the summaries of its
# shards: statuses and flow codec error, track lengths per (gamma, delta) cut, and point pairs per
# video per pair set. The job that makes a shard's data also writes its summary
# (results/{dataset}/health/*/{shard}.json), so a new cut or pair set adds only its own summaries.
# pretraining_loss plots the loss of every model. Both cover Table 1's and the ablations' data.


rule dataset_health:
    input:
        flow=get_dataset_files("results/{dataset}/health/flow/{shard}.json"),
        tracks=get_pair_files(
            "results/{dataset}/health/pairs/{name}/{shard}.json",
            lambda w: PLAN.health_cut_series[w.dataset],
        ),
        pairs=get_pair_files(
            "results/{dataset}/health/pairs/{name}/{shard}.json",
            lambda w: PLAN.health_pair_sets[w.dataset],
        ),
    output:
        status=report(
            "results/{dataset}/health/status.png",
            caption="../report/status.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "status"},
        ),
        flow_codec_error=report(
            "results/{dataset}/health/flow_codec_error.png",
            caption="../report/flow_codec_error.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "flow_codec_error"},
        ),
        track_lengths=report(
            "results/{dataset}/health/track_lengths.png",
            caption="../report/track_lengths.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "track_lengths"},
        ),
        pairs_per_video=report(
            "results/{dataset}/health/pairs_per_video.png",
            caption="../report/pairs_per_video.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "pairs_per_video"},
        ),
        temporal_gaps=report(
            "results/{dataset}/health/temporal_gaps.png",
            caption="../report/temporal_gaps.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "temporal_gaps"},
        ),
    log:
        "logs/dataset_health/{dataset}.log",
    benchmark:
        "benchmarks/dataset_health/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        cuts=lambda w: PLAN.model_cuts[w.dataset],
        pair_sets=lambda w: PLAN.health_pair_sets[w.dataset],
    script:
        "../workflow/scripts/dataset_health.py"


rule pretraining_loss:
    input:
        expand("results/models/{model}/metrics.csv", model=list(PLAN.models)),
    output:
        report(
            "results/models/pretraining_loss.png",
            caption="../report/pretraining_loss.rst",
            category="Data health",
            labels={"dataset": "all", "plot": "pretraining_loss"},
        ),
    log:
        "logs/pretraining_loss.log",
    benchmark:
        "benchmarks/pretraining_loss.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=list(PLAN.models),
    script:
        "../workflow/scripts/pretraining_loss.py"


rule health:
    input:
        expand("results/{dataset}/health/status.png", dataset=PLAN.shards),
        [
            f"results/{name}/availability.html"
            for name, ds in config["datasets"].items()
            if ds["source"] == "yt8m"
        ],
        "results/models/pretraining_loss.png",
