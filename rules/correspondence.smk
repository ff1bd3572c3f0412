# Beyond the paper: dense correspondence in the frozen features of every benchmark-table model
# (pico.evaluation.correspondence, docs/correspondence.md). Three reference rows come with them:
# the zero-motion guess, the frozen encoder's own stride-4 features and the MoCo-v2 baseline.
# The pairs are the configured ones with true correspondences, and pairs drawn from the demo
# world's true motion at each gap of demo_gaps; the demo pairs score object and background
# points apart.
rule demo_correspondence:
    output:
        directory(pico.plan.DEMO_CORRESPONDENCE),
    log:
        "logs/demo_correspondence.log",
    benchmark:
        "benchmarks/demo_correspondence.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        seed=config["seed"],
        pairs=config["benchmarks"]["correspondence"]["demo_pairs"],
        gaps=PLAN.correspondence_settings["demo_gaps"],
        world=PLAN.demo_world,
        short_side=PLAN.correspondence_settings["short_side"],
    script:
        "../workflow/scripts/demo_correspondence.py"


rule correspondence_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        pairs=PLAN.correspondence_files,
        demo=pico.plan.DEMO_CORRESPONDENCE,
    output:
        "results/benchmarks/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        gpu=1 if PLAN.correspondence_on_gpu else 0,
        mem_mb=8000,
        runtime=30,
    params:
        settings=PLAN.correspondence_settings,
        seed=config["seed"],
        reference=None,
    script:
        "../workflow/scripts/correspondence.py"


use rule correspondence_model as correspondence_moco_v2 with:
    input:
        pairs=PLAN.correspondence_files,
        demo=pico.plan.DEMO_CORRESPONDENCE,
        encoder=PLAN.moco_v2_file,
    output:
        "results/benchmarks/correspondence/moco_v2.json",
    log:
        "logs/correspondence/moco_v2.log",
    benchmark:
        "benchmarks/correspondence/moco_v2.tsv"


# The floor: each point matched to itself (no model, no features).
use rule correspondence_model as correspondence_zero_motion with:
    input:
        pairs=PLAN.correspondence_files,
        demo=pico.plan.DEMO_CORRESPONDENCE,
    output:
        "results/benchmarks/correspondence/zero_motion.json",
    log:
        "logs/correspondence/zero_motion.log",
    benchmark:
        "benchmarks/correspondence/zero_motion.tsv"
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    params:
        reference="zero_motion",


# What every decoder starts from: the frozen encoder's stride-4 stage (layer1) of
# model.encoder_checkpoint, or its random initialisation at pretrain.seed (registry.encoder_c2).
use rule correspondence_model as correspondence_encoder_c2 with:
    input:
        pairs=PLAN.correspondence_files,
        demo=pico.plan.DEMO_CORRESPONDENCE,
        encoder=PLAN.encoder_file,
    output:
        "results/benchmarks/correspondence/encoder_c2.json",
    log:
        "logs/correspondence/encoder_c2.log",
    benchmark:
        "benchmarks/correspondence/encoder_c2.tsv"
    params:
        reference="encoder_c2",
        encoder={
            "arch": config["model"]["arch"],
            "checkpoint": config["model"]["encoder_checkpoint"],
            "seed": config["pretrain"]["seed"],
        },


rule correspondence_table:
    input:
        PLAN.per_model("results/benchmarks/correspondence/{model}.json")
        + [
            "results/benchmarks/correspondence/zero_motion.json",
            "results/benchmarks/correspondence/encoder_c2.json",
            "results/benchmarks/correspondence/moco_v2.json",
        ],
    output:
        "results/correspondence.json",
    log:
        "logs/correspondence_table.log",
    benchmark:
        "benchmarks/correspondence_table.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=PLAN.correspondence_demo,
    script:
        "../workflow/scripts/correspondence_table.py"


rule correspondence_report:
    input:
        "results/correspondence.json",
    output:
        report(
            "results/tables/correspondence.html",
            caption="../report/correspondence.rst",
            category="Tables",
            labels={"benchmark": "correspondence"},
        ),
    log:
        "logs/report_table/correspondence.log",
    benchmark:
        "benchmarks/report_table/correspondence.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=PLAN.correspondence_demo,
    script:
        "../workflow/scripts/report_table.py"


rule correspondence:
    input:
        "results/correspondence.json",
        "results/tables/correspondence.html",
