# Stage 2 (Section 3.1, A.1): probe each video, TransNetV2 shots, one snippet per video.


rule detect_shots:
    input:
        "results/{dataset}/download/{shard}.parquet",
    output:
        "results/{dataset}/shots/{shard}.parquet",
    log:
        "logs/detect_shots/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/detect_shots/{dataset}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        # TransNetV2 on a GPU only where asked for and used (shots: true)
        gpu=lambda w: int(
            config["shot_detection"]["device"] == "cuda" and dataset_config(w)["shots"]
        ),
        mem_mb=4000,
        runtime=lambda w: 10 + len(shard_entries(w)),
    params:
        dataset=lambda w: {
            k: dataset_config(w)[k]
            for k in ("shots", "snippet_seconds", "min_seconds")
        },
        # TransNetV2's settings and the seed choose the snippet only with shots: true
        rerun_detection=lambda w: (
            {
                "threshold": config["shot_detection"]["threshold"],
                "margin_seconds": config["shot_detection"]["margin_seconds"],
                "seed": config["seed"],
            }
            if dataset_config(w)["shots"]
            else None
        ),
    script:
        "../workflow/scripts/detect_shots.py"
