# The paper's Figure 1 from the workflow's own data, registered for `snakemake --report`
# (Figures 3-5, the ablations, are in rules/ablations.smk).


rule figure1:
    input:
        table="results/{dataset}/flow/00000.parquet",
        frames="results/{dataset}/frames/00000",
        tracks=f"results/{{dataset}}/tracks/{list(PLAN.cuts)[0]}/00000.parquet",
    output:
        report(
            "results/{dataset}/figures/figure1.png",
            caption="../report/figure1.rst",
            category="Figures",
            labels={"figure": "figure1 ({dataset})"},
        ),
    log:
        "logs/figure1/{dataset}.log",
    benchmark:
        "benchmarks/figure1/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    script:
        "../workflow/scripts/figure1.py"


rule figures:
    input:
        expand("results/{dataset}/figures/figure1.png", dataset=PLAN.shards),
