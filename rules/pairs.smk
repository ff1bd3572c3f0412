# Stage 6 (Section 3.3): frame selection and point pairs per method, sampling and cut, plus the
# selected frames' JPEGs beside them so pretraining never opens the full snippets.


rule point_pairs:
    input:
        table="results/{dataset}/flow/{shard}.parquet",
        frames="results/{dataset}/frames/{shard}",
        tracks="results/{dataset}/tracks/g{gamma}_d{delta}/{shard}.parquet",
        # yt8m: only the videos training uses, the first `sample` ok ones (rules/yt8m.smk)
        selection=lambda w: (
            [f"results/{w.dataset}/selection.parquet"]
            if dataset_config(w)["source"] == "yt8m"
            else []
        ),
    output:
        pairs="results/{dataset}/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.parquet",
        frames="results/{dataset}/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.frames.parquet",
        health="results/{dataset}/health/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.json",
    log:
        "logs/point_pairs/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/point_pairs/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=8000,
        runtime=30,
    params:
        pairs={
            "seed": config["seed"],
            **{k: v for k, v in config["sampling"].items() if k != "strategy"},
        },
    script:
        "../workflow/scripts/point_pairs.py"


rule pairs:
    input:
        [
            per_cut(
                "results/{dataset}/pairs/{method}/{sampling}/{cut}/{shard}.parquet",
                method=method,
                sampling=config["sampling"]["strategy"],
            )
            for method in config["methods"]
        ],
