# Beyond the paper: pico's own point tracks scored as TAP-Vid scores point tracking
# (pico.evaluation.tapvid, docs/tapvid.md). Ground truth per {truth} set (pico.config.tapvid_sets:
# a configured dataset's synthetic world, or TAP-Vid's pickles as "tapvid"); flow per set and
# backend, so adding a cut reruns no flow and adding a backend computes only its own; scores per
# set, backend and (gamma, delta), every motion-boundary setting and query mode of it in one job.

TAPVID = config["benchmarks"]["tapvid"]
TAPVID_SETS = pico.config.tapvid_sets(config)
TAPVID_BACKENDS = pico.config.tapvid_backends(config)
TAPVID_CUTS = pico.config.tapvid_cuts(config)
TAPVID_DEMO = TAPVID["root"] is None
# The codec as the table's rows name it.
TAPVID_CODEC = (
    f"{config['flow']['codec']['scheme']} q{config['flow']['codec']['quality']}"
)
TAPVID_SCORES = [
    f"results/track_quality/{truth}/{backend}/{cut}.json"
    for truth in TAPVID_SETS
    for backend in TAPVID_BACKENDS
    for cut in TAPVID_CUTS
]


wildcard_constraints:
    truth="|".join(map(re.escape, TAPVID_SETS)),
    backend="|".join(TAPVID_BACKENDS),


rule tapvid_truth:
    input:
        [TAPVID["root"]] if TAPVID["root"] else [],
    output:
        directory("results/track_quality/{truth}/videos"),
    log:
        "logs/track_quality/{truth}/videos.log",
    benchmark:
        "benchmarks/track_quality/{truth}/videos.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        settings=lambda w: TAPVID_SETS[w.truth],
    script:
        "../workflow/scripts/tapvid_truth.py"


rule tapvid_flow:
    input:
        truth="results/track_quality/{truth}/videos",
        weights=lambda w: raft_weights(pico.config.tapvid_flow(config, w.backend)),
    output:
        directory("results/track_quality/{truth}/{backend}/flow"),
    log:
        "logs/track_quality/{truth}/{backend}/flow.log",
    benchmark:
        "benchmarks/track_quality/{truth}/{backend}/flow.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: config["flow"]["threads"]
    resources:
        gpu=lambda w: int(
            w.backend in RAFT_BACKENDS and config["flow"]["device"] != "cpu"
        ),
        mem_mb=8000,
        runtime=120,
    params:
        rerun_flow=lambda w: pico.config.flow_rerun_settings(
            pico.config.tapvid_flow(config, w.backend)
        ),
    script:
        "../workflow/scripts/tapvid_flow.py"


rule tapvid_score:
    input:
        truth="results/track_quality/{truth}/videos",
        flow="results/track_quality/{truth}/{backend}/flow",
    output:
        predictions="results/track_quality/{truth}/{backend}/g{gamma}_d{delta}.parquet",
        scores="results/track_quality/{truth}/{backend}/g{gamma}_d{delta}.json",
    log:
        "logs/track_quality/{truth}/{backend}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/track_quality/{truth}/{backend}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        modes=TAPVID["modes"],
        motion_boundary=lambda w: TAPVID_CUTS[pico.config.cut_name(w.gamma, w.delta)][
            "motion_boundary"
        ],
        codec=TAPVID_CODEC,
    script:
        "../workflow/scripts/tapvid_score.py"


rule track_quality_table:
    input:
        TAPVID_SCORES,
    output:
        "results/track_quality.json",
    log:
        "logs/track_quality_table.log",
    benchmark:
        "benchmarks/track_quality_table.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=TAPVID_DEMO,
    script:
        "../workflow/scripts/track_quality_table.py"


rule track_quality_report:
    input:
        "results/track_quality.json",
    output:
        report(
            "results/tables/track_quality.html",
            caption="../report/track_quality.rst",
            category="Tables",
            labels={"benchmark": "track_quality"},
        ),
    log:
        "logs/report_table/track_quality.log",
    benchmark:
        "benchmarks/report_table/track_quality.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=TAPVID_DEMO,
    script:
        "../workflow/scripts/report_table.py"


rule track_quality_figure:
    input:
        "results/track_quality.json",
    output:
        report(
            "results/track_quality.png",
            caption="../report/track_quality_figure.rst",
            category="Figures",
            labels={"figure": "track_quality"},
        ),
    log:
        "logs/track_quality_figure.log",
    benchmark:
        "benchmarks/track_quality_figure.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=5,
    params:
        demo=TAPVID_DEMO,
    script:
        "../workflow/scripts/track_quality_figure.py"


rule track_quality:
    input:
        "results/track_quality.json",
        "results/tables/track_quality.html",
        "results/track_quality.png",
