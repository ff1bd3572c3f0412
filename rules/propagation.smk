# Beyond the paper: video object segmentation by label propagation (DAVIS-2017's semi-supervised
# protocol) in every benchmark-table model's frozen features and the MoCo-v2 baseline's
# (pico.evaluation.propagation, docs/propagation.md), on DAVIS-2017 val (benchmarks.propagation.root)
# or, without one, on demo videos of the synthetic world with their true instance masks,
# written in DAVIS's layout.

PROPAGATION = config["benchmarks"]["propagation"]
DEMO_PROPAGATION = "results/benchmark_data/demo_propagation"
PROPAGATION_DATA = PROPAGATION["root"] or DEMO_PROPAGATION
PROPAGATION_DEMO = PROPAGATION["root"] is None
PROPAGATION_ON_GPU = PROPAGATION["device"] != "cpu"
# The settings that change the scores, as rerun triggers (short_side and radius_px resolved).
PROPAGATION_SETTINGS = pico.config.propagation_settings(config)


rule demo_propagation:
    output:
        directory(DEMO_PROPAGATION),
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
        videos=PROPAGATION["demo_videos"],
        world=DEMO_WORLD,
        short_side=PROPAGATION_SETTINGS["short_side"],
    script:
        "../workflow/scripts/demo_propagation.py"


rule propagation_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        data=PROPAGATION_DATA,
    output:
        "results/benchmarks/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/propagation/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        gpu=1 if PROPAGATION_ON_GPU else 0,
        mem_mb=32000 if PROPAGATION_ON_GPU else 8000,
        runtime=120 if PROPAGATION_ON_GPU else 60 if PROPAGATION_DEMO else 1440,
    params:
        settings=PROPAGATION_SETTINGS,
        seed=config["seed"],
        demo=PROPAGATION_DEMO,
    script:
        "../workflow/scripts/propagation.py"


use rule propagation_model as propagation_moco_v2 with:
    input:
        data=PROPAGATION_DATA,
        encoder=MOCO_V2_FILE,
    output:
        "results/benchmarks/propagation/moco_v2.json",
    log:
        "logs/propagation/moco_v2.log",
    benchmark:
        "benchmarks/propagation/moco_v2.tsv"


rule propagation_table:
    input:
        per_model("results/benchmarks/propagation/{model}.json")
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
        demo=PROPAGATION_DEMO,
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
        demo=PROPAGATION_DEMO,
    script:
        "../workflow/scripts/report_table.py"


rule propagation:
    input:
        "results/propagation.json",
        "results/tables/propagation.html",
