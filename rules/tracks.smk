# Stage 5 (Section 3.2, A.1): raw point tracks from stored flow, then one cut per (gamma, delta).
# A cut reads only the raw tracks, so changing gamma, delta or tracking.motion_boundary reruns
# nothing upstream of it. The jobs that draw pair sets make their cut themselves (rules/pairs.smk:
# the tables' cuts are written by the job that draws the tables' pair sets); cut_tracks writes a
# cut no pair job writes, an ablation's, when a target asks for it (`tracks`).


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
        tracks=["results/{dataset}/tracks/raw/{shard}.parquet"],
    output:
        cut="results/{dataset}/tracks/g{gamma}_d{delta}/{shard}.parquet",
        cut_health="results/{dataset}/health/tracks/g{gamma}_d{delta}/{shard}.json",
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
        thresholds=lambda w: (float(w.gamma), float(w.delta)),
        motion_boundary=config["tracking"]["motion_boundary"],
    script:
        "../workflow/scripts/cut_pairs.py"


# Every shard's raw tracks and every cut a configured model trains on: the tables' and the
# ablations' (the tables' come with the tables' pair sets, cut_pairs).
rule tracks:
    input:
        per_shard("results/{dataset}/tracks/raw/{shard}.parquet"),
        [
            f"results/{dataset}/tracks/{cut}/{shard}.parquet"
            for dataset, cuts in MODEL_CUTS.items()
            for cut in cuts
            for shard in SHARDS[dataset]
        ],
