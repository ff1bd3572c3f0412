# Beyond the paper: video object segmentation by label propagation, DAVIS-2017's semi-supervised
# protocol (pico.evaluation.propagation, docs/propagation.md). It propagates the first frame's
# masks in the frozen features of every benchmark-table model and of the MoCo-v2 baseline. The
# videos are DAVIS-2017 val (benchmarks.propagation.root); without a root, demo_propagation
# writes videos of the synthetic world with their true instance masks in DAVIS's layout.


rule demo_propagation:
    output:
        directory(pico.plan.DEMO_PROPAGATION),
    log:
        "logs/demo_propagation.log",
    benchmark:
        "benchmarks/demo_propagation.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=config["seed"],
        videos=config["benchmarks"]["propagation"]["demo_videos"],
        world=PLAN.demo_world,
        short_side=PLAN.propagation_settings["short_side"],
    script:
        "../workflow/scripts/demo_propagation.py"


rule propagation_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        data=PLAN.propagation_data,
    output:
        "results/benchmarks/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        gpu=1 if PLAN.propagation_on_gpu else 0,
        mem_mb=32000 if PLAN.propagation_on_gpu else 8000,
        runtime=(
            120 if PLAN.propagation_on_gpu else 60 if PLAN.propagation_demo else 1440
        ),
    params:
        settings=PLAN.propagation_settings,
        seed=config["seed"],
        demo=PLAN.propagation_demo,
    script:
        "../workflow/scripts/propagation.py"


use rule propagation_model as propagation_moco_v2 with:
    input:
        data=PLAN.propagation_data,
        encoder=PLAN.moco_v2_file,
    output:
        "results/benchmarks/propagation/moco_v2.json",
    log:
        "logs/propagation/moco_v2.log",
    benchmark:
        "benchmarks/propagation/moco_v2.tsv"


rule propagation_table:
    input:
        PLAN.per_model("results/benchmarks/propagation/{model}.json")
        + ["results/benchmarks/propagation/moco_v2.json"],
    output:
        "results/propagation.json",
    log:
        "logs/propagation_table.log",
    benchmark:
        "benchmarks/propagation_table.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=PLAN.propagation_demo,
    script:
        "../workflow/scripts/propagation_table.py"


rule propagation_report:
    input:
        "results/propagation.json",
    output:
        report(
            "results/tables/propagation.html",
            caption="../report/propagation.rst",
            category="Tables",
            labels={"benchmark": "propagation"},
        ),
    log:
        "logs/report_table/propagation.log",
    benchmark:
        "benchmarks/report_table/propagation.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=PLAN.propagation_demo,
    script:
        "../workflow/scripts/report_table.py"


rule propagation:
    input:
        "results/propagation.json",
        "results/tables/propagation.html",
