# Beyond the paper: dense correspondence of every benchmark-table model's frozen features and
# the MoCo-v2 baseline's (pico.evaluation.correspondence, docs/correspondence.md) on the configured pairs
# with true correspondences and the pairs drawn from the demo world's true motion.

CORRESPONDENCE = config["benchmarks"]["correspondence"]
DEMO_CORRESPONDENCE = "results/benchmark_data/demo_correspondence"
CORRESPONDENCE_NAMES = [pair["name"] for pair in CORRESPONDENCE["pairs"]]
_clashes = sorted(
    {n for n in CORRESPONDENCE_NAMES if CORRESPONDENCE_NAMES.count(n) > 1}
    | {n for n in CORRESPONDENCE_NAMES if n.startswith("demo")}
)
if _clashes:
    raise WorkflowError(
        "benchmarks.correspondence.pairs: names must be unique and not start with 'demo' "
        f"(the demo pairs' names): {', '.join(_clashes)}"
    )
CORRESPONDENCE_ON_GPU = CORRESPONDENCE["device"] != "cpu"


# Every file the configured pairs name, as inputs: replacing one reruns the benchmark.
CORRESPONDENCE_FILES = [
    pair[key]
    for pair in CORRESPONDENCE["pairs"]
    for key in ("image_a", "image_b", "disparity", "flow")
    if key in pair
]
# The settings that change the scores, as rerun triggers (the device changes nothing).
CORRESPONDENCE_SETTINGS = {
    **{k: v for k, v in CORRESPONDENCE.items() if k != "device"},
    "short_side": CORRESPONDENCE["short_side"] or config["frames"]["short_side"],
}
if CORRESPONDENCE["refinement"] == "soft_argmax":
    CORRESPONDENCE_SETTINGS["temperature"] = config["pretrain"]["temperature"]


rule demo_correspondence:
    output:
        directory(DEMO_CORRESPONDENCE),
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
        pairs=CORRESPONDENCE["demo_pairs"],
        gap=CORRESPONDENCE["demo_gap"],
        world=DEMO_WORLD,
        short_side=CORRESPONDENCE_SETTINGS["short_side"],
    script:
        "../workflow/scripts/demo_correspondence.py"


rule correspondence_model:
    input:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        pairs=CORRESPONDENCE_FILES,
        demo=DEMO_CORRESPONDENCE,
    output:
        "results/benchmarks/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.json",
    log:
        "logs/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/correspondence/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    resources:
        gpu=1 if CORRESPONDENCE_ON_GPU else 0,
        mem_mb=8000,
        runtime=30,
    params:
        settings=CORRESPONDENCE_SETTINGS,
        seed=config["seed"],
    script:
        "../workflow/scripts/correspondence.py"


use rule correspondence_model as correspondence_moco_v2 with:
    input:
        pairs=CORRESPONDENCE_FILES,
        demo=DEMO_CORRESPONDENCE,
        encoder=MOCO_V2_FILE,
    output:
        "results/benchmarks/correspondence/moco_v2.json",
    log:
        "logs/correspondence/moco_v2.log",
    benchmark:
        "benchmarks/correspondence/moco_v2.tsv"


rule correspondence_table:
    input:
        per_model("results/benchmarks/correspondence/{model}.json")
        + ["results/benchmarks/correspondence/moco_v2.json"],
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
        demo=bool(CORRESPONDENCE["demo_pairs"]),
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
        demo=bool(CORRESPONDENCE["demo_pairs"]),
    script:
        "../workflow/scripts/report_table.py"


rule correspondence:
    input:
        "results/correspondence.json",
        "results/tables/correspondence.html",
