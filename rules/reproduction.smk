# The mini-reproduction (docs/reproduction.md, pico.reporting.reproduction). It trains the models
# of reproduction.methods at Table 1's dataset, sampling and cuts, the negative control shuffled
# among them, and the points of reproduction.figure4/figure5. Each is pretrained and probed once
# per seed of reproduction.seeds under results/reproduction/seed{seed}/, and the methods' models
# are also scored on correspondence and label propagation. The seed sets pretrain.seed and the
# probe's seed; the videos, tracks, pair sets and benchmark data stay the config's, so the
# seeds vary the training alone. results/reproduction.json gives the gate (PiCO's held-out
# pretext against the control's) and each number's mean, std and per-seed values. PLAN.reproduction
# (pico.plan) lists the seeds and models. `all` does not include it.
SEEDED = "results/reproduction/seed{seed}"
SEEDED_MODEL = "{method}/{dataset}/{sampling}/g{gamma}_d{delta}"


use rule pretrain_model as reproduction_pretrain with:
    output:
        model=f"{SEEDED}/models/{SEEDED_MODEL}/model.pt",
        metrics=f"{SEEDED}/models/{SEEDED_MODEL}/metrics.csv",
    log:
        f"logs/reproduction/seed{{seed}}/pretrain/{SEEDED_MODEL}.log",
    benchmark:
        f"benchmarks/reproduction/seed{{seed}}/pretrain/{SEEDED_MODEL}.tsv"
    params:
        pretrain=lambda w: {**rules.pretrain_model.params.pretrain, "seed": int(w.seed)},


use rule probe_model as reproduction_probe with:
    input:
        model=rules.reproduction_pretrain.output.model,
        data=rules.probe_model.input.data,
    output:
        f"{SEEDED}/benchmarks/{{benchmark}}/{SEEDED_MODEL}.json",
    log:
        f"logs/reproduction/seed{{seed}}/probe/{{benchmark}}/{SEEDED_MODEL}.log",
    benchmark:
        f"benchmarks/reproduction/seed{{seed}}/probe/{{benchmark}}/{SEEDED_MODEL}.tsv"
    params:
        seed=lambda w: int(w.seed),
        work=f"{SEEDED}/benchmarks/{{benchmark}}/work/{SEEDED_MODEL}",


# The correspondence benchmark has no training: the scored points stay the config seed's, the
# same for every model and seed. Its inputs are correspondence_model's (the pairs), the model
# the seed's.
use rule correspondence_model as reproduction_correspondence with:
    input:
        **{
            name: files
            for name, files in rules.correspondence_model.input.items()
            if name != "model"
        },
        model=rules.reproduction_pretrain.output.model,
    output:
        f"{SEEDED}/benchmarks/correspondence/{SEEDED_MODEL}.json",
    log:
        f"logs/reproduction/seed{{seed}}/correspondence/{SEEDED_MODEL}.log",
    benchmark:
        f"benchmarks/reproduction/seed{{seed}}/correspondence/{SEEDED_MODEL}.tsv"


# Label propagation likewise: the demo videos are the config's, the model the seed's.
use rule propagation_model as reproduction_propagation with:
    input:
        **{
            name: files
            for name, files in rules.propagation_model.input.items()
            if name != "model"
        },
        model=rules.reproduction_pretrain.output.model,
    output:
        f"{SEEDED}/benchmarks/propagation/{SEEDED_MODEL}.json",
    log:
        f"logs/reproduction/seed{{seed}}/propagation/{SEEDED_MODEL}.log",
    benchmark:
        f"benchmarks/reproduction/seed{{seed}}/propagation/{SEEDED_MODEL}.tsv"


rule reproduction_table:
    input:
        probes=[
            f"results/reproduction/seed{seed}/benchmarks/coco_probe/{model}.json"
            for seed, model in PLAN.reproduction.probed
        ],
        correspondences=[
            f"results/reproduction/seed{seed}/benchmarks/correspondence/{model}.json"
            for seed, model in PLAN.reproduction.scored
        ],
        propagations=[
            f"results/reproduction/seed{seed}/benchmarks/propagation/{model}.json"
            for seed, model in PLAN.reproduction.scored
        ],
        # the held-out pretext checks, the gate's input
        metrics=[
            f"results/reproduction/seed{seed}/models/{model}/metrics.csv"
            for seed, model in PLAN.reproduction.scored
        ],
    output:
        "results/reproduction.json",
    log:
        "logs/reproduction/table.log",
    benchmark:
        "benchmarks/reproduction/table.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        probed=PLAN.reproduction.probed,
        scored=PLAN.reproduction.scored,
        seeds=PLAN.reproduction.seeds,
        table=PLAN.reproduction.table,
        figures=PLAN.reproduction.figures,
        demo=PLAN.demo_benchmark,
    script:
        "../workflow/scripts/reproduction.py"


rule reproduction_report:
    input:
        "results/reproduction.json",
    output:
        report(
            "results/tables/reproduction.html",
            caption="../report/reproduction.rst",
            category="Tables",
            labels={"benchmark": "reproduction"},
        ),
    log:
        "logs/reproduction/report.log",
    benchmark:
        "benchmarks/reproduction/report.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../workflow/scripts/reproduction_report.py"


rule reproduction_figure:
    input:
        "results/reproduction.json",
    output:
        report(
            "results/reproduction/{figure}.png",
            caption="../report/reproduction_figure.rst",
            category="Figures",
            labels={"figure": "reproduction {figure}"},
        ),
    log:
        "logs/reproduction/{figure}.log",
    benchmark:
        "benchmarks/reproduction/{figure}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=5,
    script:
        "../workflow/scripts/reproduction_figure.py"


rule reproduction:
    input:
        (
            [
                "results/reproduction.json",
                "results/tables/reproduction.html",
                *expand(
                    "results/reproduction/{figure}.png",
                    figure=PLAN.reproduction.figures,
                ),
            ]
            if PLAN.reproduction.seeds
            else []
        ),
