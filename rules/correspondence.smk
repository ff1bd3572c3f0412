# Beyond the paper: dense correspondence of every benchmark-table model's frozen features, with
# three reference rows: the zero-motion guess, the frozen encoder's own stride-4 features and the
# MoCo-v2 baseline (pico.evaluation.correspondence, docs/correspondence.md), on the configured pairs
# with true correspondences and the pairs drawn from the demo world's true motion (objects in
# view, at each gap of demo_gaps, scored on object and background points apart).
from snakemake.logging import logger

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
if CORRESPONDENCE["demo_gap"] is not None:
    logger.warning(
        "benchmarks.correspondence.demo_gap is deprecated: the demo pairs use its one gap, "
        f"{pico.config.demo_gaps(CORRESPONDENCE)[0]} frames, in place of demo_gaps; "
        "give benchmarks.correspondence.demo_gaps (frames at 30 Hz) instead"
    )
# The settings that change the scores, as rerun triggers (the device changes nothing); the
# deprecated demo_gap only through the gaps it gives (pico.config.demo_gaps).
CORRESPONDENCE_SETTINGS = {
    **{k: v for k, v in CORRESPONDENCE.items() if k not in ("device", "demo_gap")},
    "demo_gaps": pico.config.demo_gaps(CORRESPONDENCE),
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
        gaps=CORRESPONDENCE_SETTINGS["demo_gaps"],
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
        reference=None,
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


# The floor: each point matched to itself (no model, no features).
use rule correspondence_model as correspondence_zero_motion with:
    input:
        pairs=CORRESPONDENCE_FILES,
        demo=DEMO_CORRESPONDENCE,
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
        pairs=CORRESPONDENCE_FILES,
        demo=DEMO_CORRESPONDENCE,
        encoder=local_file(config["model"]["encoder_checkpoint"]),
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
        per_model("results/benchmarks/correspondence/{model}.json")
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
