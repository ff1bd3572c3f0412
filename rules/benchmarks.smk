# Stage 8 (Section 4, A.2): linear probes of every pretrained model and of the MoCo-v2
# baseline. Without benchmarks.coco_root the COCO probe runs on the demo benchmark generated
# from the synthetic world, and says so in every output; VOC and Cityscapes run when their
# roots are configured.

BENCHMARK_ROOTS = {
    "coco_probe": config["benchmarks"]["coco_root"]
    or "results/benchmark_data/demo_coco",
    "voc": config["benchmarks"]["voc"]["root"],
    "cityscapes": config["benchmarks"]["cityscapes"]["root"],
}
BENCHMARK_PROBES = {
    "coco_probe": config["benchmarks"]["probe"],
    "voc": config["benchmarks"]["voc"]["probe"],
    "cityscapes": config["benchmarks"]["cityscapes"]["probe"],
}
BENCHMARKS = [name for name, root in BENCHMARK_ROOTS.items() if root]
DEMO_BENCHMARK = config["benchmarks"]["coco_root"] is None
PROBE_ON_GPU = config["benchmarks"]["probe"]["device"] != "cpu"


wildcard_constraints:
    benchmark="|".join(BENCHMARKS),


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


rule probe_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        data=lambda w: BENCHMARK_ROOTS[w.benchmark],
    output:
        "results/benchmarks/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/probe/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/probe/{benchmark}/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/flow.yaml"
    resources:
        gpu=1 if PROBE_ON_GPU else 0,
        mem_mb=32000 if PROBE_ON_GPU else 8000,
        runtime=720 if PROBE_ON_GPU else 60,
    params:
        probe=lambda w: BENCHMARK_PROBES[w.benchmark],
        seed=config["seed"],
        demo=lambda w: w.benchmark == "coco_probe" and DEMO_BENCHMARK,
    script:
        "../workflow/scripts/probe.py"


rule probe_moco_v2:
    input:
        data=lambda w: BENCHMARK_ROOTS[w.benchmark],
        encoder=local_file(
            config["benchmarks"]["moco_v2_checkpoint"]
            or config["model"]["encoder_checkpoint"]
        ),
    output:
        "results/benchmarks/{benchmark}/moco_v2.json",
    log:
        "logs/probe/{benchmark}/moco_v2.log",
    benchmark:
        "benchmarks/probe/{benchmark}/moco_v2.tsv"
    conda:
        "../envs/flow.yaml"
    resources:
        gpu=1 if PROBE_ON_GPU else 0,
        mem_mb=32000 if PROBE_ON_GPU else 8000,
        runtime=720 if PROBE_ON_GPU else 60,
    params:
        probe=lambda w: BENCHMARK_PROBES[w.benchmark],
        seed=config["seed"],
        demo=lambda w: w.benchmark == "coco_probe" and DEMO_BENCHMARK,
    script:
        "../workflow/scripts/probe.py"


rule probe_table:
    input:
        lambda w: per_model(f"results/benchmarks/{w.benchmark}/{{model}}.json")
        + [f"results/benchmarks/{w.benchmark}/moco_v2.json"],
    output:
        "results/{benchmark}.json",
    log:
        "logs/probe_table/{benchmark}.log",
    benchmark:
        "benchmarks/probe_table/{benchmark}.tsv"
    conda:
        "../envs/video.yaml"
    params:
        demo=lambda w: w.benchmark == "coco_probe" and DEMO_BENCHMARK,
    script:
        "../workflow/scripts/probe_table.py"


rule coco_probe:
    input:
        "results/coco_probe.json",


rule benchmarks:
    input:
        expand("results/{benchmark}.json", benchmark=BENCHMARKS),
