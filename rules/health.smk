# The data's own health for the report: per shard, statuses and flow codec error, track
# lengths per (gamma, delta) cut and point pairs per video per pair set, each reduced to counts
# on its own (a new cut or pair set adds only its summaries); per dataset, their plots; and the
# pretraining loss of every model. Covers Table 1's and the ablations' data.


# The pair sets (method/sampling/cut) of every configured model of each dataset: Table 1's and
# the ablations'.
HEALTH_PAIR_SETS = {
    dataset: [
        f"{method}/{sampling}/{pico.config.cut_name(gamma, delta)}"
        for method, name, sampling, gamma, delta in MODELS.values()
        if name == dataset
    ]
    for dataset in SHARDS
}
# Their (gamma, delta) cuts, loosest last.
HEALTH_CUTS = {
    dataset: list(
        dict.fromkeys(
            pico.config.cut_name(gamma, delta)
            for method, name, sampling, gamma, delta in sorted(
                MODELS.values(), key=lambda model: model[3:]
            )
            if name == dataset
        )
    )
    for dataset in SHARDS
}


rule flow_health:
    input:
        table="results/{dataset}/flow/{shard}.parquet",
    output:
        "results/{dataset}/health/flow/{shard}.json",
    log:
        "logs/flow_health/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/flow_health/{dataset}/{shard}.tsv"
    conda:
        "../envs/video.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/shard_health.py"


rule track_health:
    input:
        cut="results/{dataset}/tracks/g{gamma}_d{delta}/{shard}.parquet",
    output:
        "results/{dataset}/health/tracks/g{gamma}_d{delta}/{shard}.json",
    log:
        "logs/track_health/{dataset}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/track_health/{dataset}/g{gamma}_d{delta}/{shard}.tsv"
    conda:
        "../envs/video.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    script:
        "../workflow/scripts/shard_health.py"


rule pair_health:
    input:
        pairs="results/{dataset}/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.parquet",
        table="results/{dataset}/flow/{shard}.parquet",
    output:
        "results/{dataset}/health/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.json",
    log:
        "logs/pair_health/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/pair_health/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.tsv"
    conda:
        "../envs/video.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    script:
        "../workflow/scripts/shard_health.py"


rule dataset_health:
    input:
        flow=per_dataset_shard("results/{dataset}/health/flow/{shard}.json"),
        tracks=per_dataset_series(
            "results/{dataset}/health/tracks/{name}/{shard}.json", HEALTH_CUTS
        ),
        pairs=per_dataset_series(
            "results/{dataset}/health/pairs/{name}/{shard}.json", HEALTH_PAIR_SETS
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
        "../envs/video.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../workflow/scripts/dataset_health.py"


PRETRAINED = list(MODELS)


rule pretraining_loss:
    input:
        expand("results/models/{model}/metrics.csv", model=PRETRAINED),
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
        "../envs/video.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        models=PRETRAINED,
    script:
        "../workflow/scripts/pretraining_loss.py"


rule health:
    input:
        expand("results/{dataset}/health/status.png", dataset=SHARDS),
        [
            f"results/{name}/availability.html"
            for name, ds in config["datasets"].items()
            if ds["source"] == "yt8m"
        ],
        "results/models/pretraining_loss.png",
