# Stage 5 (Section 3.2, A.1): raw point tracks from stored flow, then one cut per (gamma, delta).
# A cut reads only the raw tracks, so changing gamma, delta or tracking.motion_boundary reruns
# nothing upstream of it.


rule raw_tracks:
    input:
        "results/{dataset}/flow/{shard}.parquet",
        "results/{dataset}/flow/{shard}",
    output:
        "results/{dataset}/tracks/raw/{shard}.parquet",
    log:
        "logs/raw_tracks/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/raw_tracks/{dataset}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=lambda w: 10 + len(shard_entries(w)) // 10,
    params:
        tracking={
            k: config["tracking"][k]
            for k in ("points_per_video", "seed", "max_gamma", "max_delta")
        },
    script:
        "../workflow/scripts/raw_tracks.py"


rule cut_tracks:
    input:
        "results/{dataset}/tracks/raw/{shard}.parquet",
    output:
        cut="results/{dataset}/tracks/g{gamma}_d{delta}/{shard}.parquet",
        health="results/{dataset}/health/tracks/g{gamma}_d{delta}/{shard}.json",
    log:
        "logs/cut_tracks/{dataset}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/cut_tracks/{dataset}/g{gamma}_d{delta}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=8000,
        runtime=10,
    params:
        gamma=lambda w: float(w.gamma),
        delta=lambda w: float(w.delta),
        motion_boundary=config["tracking"]["motion_boundary"],
    script:
        "../workflow/scripts/cut_tracks.py"


rule tracks:
    input:
        per_shard("results/{dataset}/tracks/raw/{shard}.parquet"),
        per_cut("results/{dataset}/tracks/{cut}/{shard}.parquet"),
