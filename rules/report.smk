# Tables 1-3 for `snakemake --report`: each configured benchmark table (results/{benchmark}.json)
# as an HTML page, which the report shows in place (it offers CSV/TSV only as downloads).


rule report_table:
    input:
        "results/{benchmark}.json",
    output:
        report(
            "results/tables/{benchmark}.html",
            caption="../report/table.rst",
            category="Tables",
            labels={"benchmark": "{benchmark}"},
        ),
    log:
        "logs/report_table/{benchmark}.log",
    benchmark:
        "benchmarks/report_table/{benchmark}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=1000,
        runtime=5,
    params:
        demo=on_demo_data,
    script:
        "../workflow/scripts/report_table.py"


rule tables:
    input:
        expand("results/tables/{benchmark}.html", benchmark=PLAN.evaluations),
