# Stage 2 (Section 3.1, A.1): detect_shots probes each video, finds its shots with TransNetV2
# and chooses one snippet per video inside a shot.


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
            config["shot_detection"]["device"] == "cuda" and get_dataset(w)["shots"]
        ),
        mem_mb=4000,
        runtime=lambda w: 10 + len(get_entries(w)),
    params:
        dataset=lambda w: {
            k: get_dataset(w)[k] for k in ("shots", "snippet_seconds", "min_seconds")
        },
        # TransNetV2's settings and the seed choose the snippet only with shots: true
        rerun_detection=get_detection_settings,
    script:
        "../workflow/scripts/detect_shots.py"
