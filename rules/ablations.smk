# Section 4.3's ablations (Figures 3-5). Each point of a configured figure's grid is a model,
# pretrained on the point's sampling, gamma and delta and probed on the COCO probe like Table 1's
# models. The generic rules build the points (rules/pairs.smk's point_pairs, pretrain_model,
# probe_model), so a point that Table 1 or another figure shares is built once.
rule ablation:
    input:
        lambda w: expand(
            "results/benchmarks/coco_probe/{model}.json",
            model=PLAN.ablation_models[w.figure],
        ),
    output:
        json="results/ablations/{figure}.json",
        plot=report(
            "results/ablations/{figure}.png",
            caption="../report/ablation.rst",
            category="Figures",
            labels={"figure": "{figure}"},
        ),
    log:
        "logs/ablation/{figure}.log",
    benchmark:
        "benchmarks/ablation/{figure}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        demo=PLAN.demo_benchmark,
    script:
        "../workflow/scripts/ablation.py"


rule ablations:
    input:
        expand(
            "results/ablations/{figure}.{ext}",
            figure=config["ablations"],
            ext=("json", "png"),
        ),
