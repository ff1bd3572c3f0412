# Beyond the paper: pico's own point tracks, scored as TAP-Vid scores point tracking
# (pico.evaluation.tapvid, docs/tapvid.md). tapvid_truth writes each ground-truth set {truth}: a
# configured dataset's synthetic world, or TAP-Vid's pickles as "tapvid" (pico.plan.tapvid_sets).
# tapvid_flow computes the flow per set and backend, so a new cut reruns no flow and a new
# backend computes only its own. tapvid_score scores one set, backend and (gamma, delta), with
# every motion-boundary setting and query mode asked for at that cut.


wildcard_constraints:
    truth="|".join(map(re.escape, PLAN.track_quality.sets)),
    backend="|".join(PLAN.track_quality.backends),


rule tapvid_truth:
    input:
        pico.plan.local_file(config["benchmarks"]["tapvid"]["root"]),
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
        settings=lambda w: PLAN.track_quality.sets[w.truth],
    script:
        "../workflow/scripts/tapvid_truth.py"


rule tapvid_flow:
    input:
        truth="results/track_quality/{truth}/videos",
        weights=lambda w: pico.plan.flow_weights(PLAN.track_quality.flows[w.backend]),
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
        gpu=lambda w: int(pico.plan.flow_on_gpu(PLAN.track_quality.flows[w.backend])),
        mem_mb=8000,
        runtime=120,
    params:
        rerun_flow=lambda w: pico.rerun.result_settings(
            "flow", PLAN.track_quality.flows[w.backend]
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
        modes=config["benchmarks"]["tapvid"]["modes"],
        motion_boundary=lambda w: PLAN.track_quality.cuts[
            pico.config.cut_name(w.gamma, w.delta)
        ]["motion_boundary"],
        codec=PLAN.track_quality.codec,
    script:
        "../workflow/scripts/tapvid_score.py"


rule track_quality_table:
    input:
        PLAN.track_quality.scores,
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
        demo=PLAN.track_quality.demo,
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
        demo=PLAN.track_quality.demo,
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
        demo=PLAN.track_quality.demo,
    script:
        "../workflow/scripts/track_quality_figure.py"


rule track_quality:
    input:
        "results/track_quality.json",
        "results/tables/track_quality.html",
        "results/track_quality.png",
