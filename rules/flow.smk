# Stage 4 (Section 3.2): forward and backward optical flow of every snippet, stored with the
# paper's codec, one file per snippet. RAFT asks SLURM for a GPU; OpenCV's backends run on CPUs.


if RAFT_FETCHED:

    # RAFT's default weights, fetched once for the whole run (pico.data.weights), on the machine
    # that runs Snakemake: the flow jobs take the file as input.
    localrules:
        flow_weights,

    rule flow_weights:
        output:
            f"{pico.data.weights.FOLDER}/{{weights}}",
        log:
            "logs/flow_weights/{weights}.log",
        benchmark:
            "benchmarks/flow_weights/{weights}.tsv"
        wildcard_constraints:
            weights="|".join(map(re.escape, RAFT_FETCHED)),
        conda:
            "../envs/gpu.yaml"
        params:
            backend=lambda w: RAFT_FETCHED[w.weights],
        script:
            "../workflow/scripts/flow_weights.py"


rule estimate_flow:
    input:
        "results/{dataset}/videos/{shard}.parquet",
        "results/{dataset}/frames/{shard}",
        weights=raft_weights(config["flow"]),
    output:
        table="results/{dataset}/flow/{shard}.parquet",
        flow=directory("results/{dataset}/flow/{shard}"),
        health="results/{dataset}/health/flow/{shard}.json",
    log:
        "logs/estimate_flow/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/estimate_flow/{dataset}/{shard}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: config["flow"]["threads"]
    resources:
        gpu=1 if FLOW_ON_GPU else 0,
        mem_mb=16000 if FLOW_ON_GPU else 4000,
        runtime=lambda w: 30 + int(FLOW_MINUTES_PER_VIDEO * len(shard_entries(w))),
    params:
        rerun_flow=pico.config.flow_rerun_settings(config["flow"]),
    script:
        "../workflow/scripts/estimate_flow.py"


rule flow:
    input:
        per_shard("results/{dataset}/flow/{shard}.parquet"),
