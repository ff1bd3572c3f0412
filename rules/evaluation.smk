# Stage 8, evaluation (Section 4, A.2): every pretrained model and the MoCo-v2 baseline on the
# benchmarks (pico.evaluation.registry): COCO linear probe (Table 1), Mask R-CNN with frozen FPN
# (Table 2), VOC, Cityscapes and NYU-depth v2 linear probes (Table 3). Without benchmarks.coco_root the COCO
# benchmarks (and NYU, unless its root is set) run on demo data generated from the synthetic
# world, and say so in every output; VOC and Cityscapes run when their roots are configured.
# Checkpoints live in work/ beside the results, so a failed or pre-empted job resumes.


rule demo_coco:
    output:
        directory(pico.plan.DEMO_DATA_ROOTS["coco"]),
    log:
        "logs/demo_coco.log",
    benchmark:
        "benchmarks/demo_coco.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        demo=PLAN.demo_settings,
        seed=config["seed"],
        world=PLAN.demo_world,
        kind="coco",
    script:
        "../workflow/scripts/demo_benchmark.py"


use rule demo_coco as demo_nyu with:
    output:
        directory(pico.plan.DEMO_DATA_ROOTS["nyu"]),
    log:
        "logs/demo_nyu.log",
    benchmark:
        "benchmarks/demo_nyu.tsv"
    params:
        kind="nyu",


rule probe_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        data=get_evaluation_root,
    output:
        "results/benchmarks/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/probe/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/probe/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: lambda w: pico.plan.evaluation_settings(config, w.benchmark)["workers"] + 1
    resources:
        gpu=lambda w: 1 if on_gpu(w) else 0,
        mem_mb=lambda w: 32000 if on_gpu(w) else 8000,
        runtime=lambda w: 720 if on_gpu(w) else 60,
    params:
        settings=get_evaluation_settings,
        seed=config["seed"],
        demo=on_demo_data,
        work="results/benchmarks/{benchmark}/work/{method}/{dataset}/{sampling}/g{gamma}_d{delta}",
    script:
        "../workflow/scripts/probe.py"


# MoCo-v2 as Table 1's baseline: the same probe on the encoder alone (dilated; A.2.1).
use rule probe_model as probe_moco_v2 with:
    input:
        data=get_evaluation_root,
        encoder=PLAN.moco_v2_file,
    output:
        "results/benchmarks/{benchmark}/moco_v2.json",
    log:
        "logs/probe/{benchmark}/moco_v2.log",
    benchmark:
        "benchmarks/probe/{benchmark}/moco_v2.tsv"
    params:
        work="results/benchmarks/{benchmark}/work/moco_v2",


rule probe_table:
    input:
        lambda w: PLAN.per_model(f"results/benchmarks/{w.benchmark}/{{model}}.json")
        + (
            [f"results/benchmarks/{w.benchmark}/moco_v2.json"]
            if w.benchmark not in pico.config.WITHOUT_MOCO_V2
            else []
        ),
    output:
        "results/{benchmark}.json",
    log:
        "logs/probe_table/{benchmark}.log",
    benchmark:
        "benchmarks/probe_table/{benchmark}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=on_demo_data,
    script:
        "../workflow/scripts/probe_table.py"


rule export_detectron2:
    input:
        "results/models/{model}/model.pt",
    output:
        "results/models/{model}/detectron2.pth",
    log:
        "logs/export_detectron2/{model}.log",
    benchmark:
        "benchmarks/export_detectron2/{model}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../workflow/scripts/export_detectron2.py"


rule coco_probe:
    input:
        "results/coco_probe.json",


rule probe:
    input:
        expand("results/{benchmark}.json", benchmark=PLAN.evaluations),


rule evaluation:
    input:
        rules.probe.input,


# The evaluation stage's target under its earlier name, kept for existing commands.
rule benchmarks:
    input:
        rules.evaluation.input,


rule detectron2:
    input:
        PLAN.per_model("results/models/{model}/detectron2.pth"),
