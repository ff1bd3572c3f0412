# Stage 8 (Section 4, A.2): benchmarks of every pretrained model and the MoCo-v2 baseline.
# Without benchmarks.coco_root the COCO probe runs on the demo benchmark generated from the
# synthetic world, and says so in every output.

COCO_ROOT = config["benchmarks"]["coco_root"] or "results/benchmark_data/demo_coco"
PROBE_ON_GPU = config["benchmarks"]["probe"]["device"] != "cpu"


rule demo_coco:
    output:
        directory("results/benchmark_data/demo_coco"),
    log:
        "logs/demo_coco.log",
    benchmark:
        "benchmarks/demo_coco.tsv"
    conda:
        "../envs/video.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        demo=config["benchmarks"]["demo"],
        seed=config["seed"],
    script:
        "../workflow/scripts/demo_coco.py"


rule coco_probe_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        data=COCO_ROOT,
    output:
        "results/benchmarks/coco_probe/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/coco_probe/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/coco_probe/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/flow.yaml"
    resources:
        gpu=1 if PROBE_ON_GPU else 0,
        mem_mb=32000 if PROBE_ON_GPU else 8000,
        runtime=720 if PROBE_ON_GPU else 60,
    params:
        probe=config["benchmarks"]["probe"],
        seed=config["seed"],
        demo=config["benchmarks"]["coco_root"] is None,
    script:
        "../workflow/scripts/coco_probe.py"


rule coco_probe_moco_v2:
    input:
        data=COCO_ROOT,
        encoder=local_file(
            config["benchmarks"]["moco_v2_checkpoint"]
            or config["model"]["encoder_checkpoint"]
        ),
    output:
        "results/benchmarks/coco_probe/moco_v2.json",
    log:
        "logs/coco_probe/moco_v2.log",
    benchmark:
        "benchmarks/coco_probe/moco_v2.tsv"
    conda:
        "../envs/flow.yaml"
    resources:
        gpu=1 if PROBE_ON_GPU else 0,
        mem_mb=32000 if PROBE_ON_GPU else 8000,
        runtime=720 if PROBE_ON_GPU else 60,
    params:
        probe=config["benchmarks"]["probe"],
        seed=config["seed"],
        demo=config["benchmarks"]["coco_root"] is None,
    script:
        "../workflow/scripts/coco_probe.py"


rule coco_probe:
    input:
        per_model("results/benchmarks/coco_probe/{model}.json"),
        "results/benchmarks/coco_probe/moco_v2.json",
    output:
        "results/coco_probe.json",
    log:
        "logs/coco_probe.log",
    benchmark:
        "benchmarks/coco_probe_table.tsv"
    conda:
        "../envs/video.yaml"
    params:
        demo=config["benchmarks"]["coco_root"] is None,
    script:
        "../workflow/scripts/coco_probe_table.py"
