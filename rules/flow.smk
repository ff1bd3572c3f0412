# Stage 4 (Section 3.2): forward and backward optical flow of every snippet, stored with the
# paper's codec, one file per snippet. A backend's device, weights and settings are its record in
# pico.flow_backends: RAFT asks SLURM for a GPU, OpenCV's backends run on CPUs.


if PLAN.fetched_weights:

    # RAFT's default weights, fetched once for the whole run (pico.data.weights), on the machine
    # that runs Snakemake: the flow jobs take the file as input.
    localrules:
        flow_weights,

    # Before any job starts, and only when the run fetches weights: a run that computes no flow
    # (`snakemake videos` on an offline machine) needs none.
    onstart:
        for problem in PLAN.unfetchable(
            job.wildcards.weights
            for job in workflow.dag.needrun_jobs()
            if job.rule.name == "flow_weights"
        ):
            raise WorkflowError(problem)

    rule flow_weights:
        output:
            f"{pico.data.weights.FOLDER}/{{weights}}",
        log:
            "logs/flow_weights/{weights}.log",
        benchmark:
            "benchmarks/flow_weights/{weights}.tsv"
        wildcard_constraints:
            weights="|".join(map(re.escape, PLAN.fetched_weights)),
        conda:
            "../envs/gpu.yaml"
        params:
            backend=lambda w: PLAN.fetched_weights[w.weights],
        script:
            "../workflow/scripts/flow_weights.py"


rule estimate_flow:
    input:
        "results/{dataset}/videos/{shard}.parquet",
        "results/{dataset}/frames/{shard}",
        weights=pico.plan.flow_weights(config["flow"]),
    output:
        table="results/{dataset}/flow/{shard}.parquet",
        # flow.keep false: removed once the shard's raw tracks are written (raw_tracks reads it)
        flow=(
            directory("results/{dataset}/flow/{shard}")
            if config["flow"]["keep"]
            else temp(directory("results/{dataset}/flow/{shard}"))
        ),
        health="results/{dataset}/health/flow/{shard}.json",
    log:
        "logs/estimate_flow/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/estimate_flow/{dataset}/{shard}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: config["flow"]["threads"]
    resources:
        gpu=1 if PLAN.flow_on_gpu else 0,
        mem_mb=16000 if PLAN.flow_on_gpu else 4000,
        runtime=lambda w: 30 + int(PLAN.flow_minutes * len(get_entries(w))),
    params:
        rerun_flow=pico.rerun.result_settings("flow", config["flow"]),
    script:
        "../workflow/scripts/estimate_flow.py"


rule flow:
    input:
        PLAN.per_shard("results/{dataset}/flow/{shard}.parquet"),
