# Stage 5 (Section 3.2, A.1): raw point tracks from the stored flow, each step with both terms
# of Eq. 3's forward-backward test. The cuts at a (gamma, delta) read only the raw tracks, so
# changing gamma, delta or tracking.motion_boundary reruns nothing here; rules/pairs.smk makes them.


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
        runtime=lambda w: 10 + len(get_entries(w)) // 10,
    params:
        tracking=PLAN.raw_tracking,
    script:
        "../workflow/scripts/raw_tracks.py"


# Every shard's raw tracks and every cut a configured model trains on: the tables' (cut_pairs
# writes them) and the ablations' (cut_tracks).
rule tracks:
    input:
        PLAN.per_shard("results/{dataset}/tracks/raw/{shard}.parquet"),
        PLAN.model_cut_files("results/{dataset}/tracks/{cut}/{shard}.parquet"),
