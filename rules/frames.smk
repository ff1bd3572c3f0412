# Stage 3 (Section 3.1): extract_frames decodes each snippet at exactly frames.fps, resizes it
# and writes one frame store per snippet, and the shard's manifest
# results/{dataset}/videos/{shard}.parquet.


rule extract_frames:
    input:
        "results/{dataset}/shots/{shard}.parquet",
    output:
        manifest="results/{dataset}/videos/{shard}.parquet",
        frames=directory("results/{dataset}/frames/{shard}"),
    log:
        "logs/extract_frames/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/extract_frames/{dataset}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=lambda w: 10 + len(get_entries(w)),
    params:
        frames=pico.rerun.result_settings("frames", config["frames"]),
    script:
        "../workflow/scripts/extract_frames.py"


rule videos:
    input:
        PLAN.per_shard("results/{dataset}/videos/{shard}.parquet"),


rule frames:
    input:
        PLAN.per_shard("results/{dataset}/frames/{shard}"),
