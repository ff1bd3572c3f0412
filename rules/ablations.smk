# Section 4.3's ablations (Figures 3-5): every point of a configured figure's grid is a model
# pretrained on its (sampling, gamma, delta) and probed on the COCO probe like Table 1's; the
# generic rules cut_tracks, point_pairs, pretrain_model and probe_model build the points, and
# a point shared with Table 1 or another figure is built once.
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
