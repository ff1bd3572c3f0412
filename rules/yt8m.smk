# Stage 0 of a yt8m dataset (Section 3.1, A.1; pico.data.yt8m): the seeded sample of YouTube-8M's
# pseudo ids, drawn in a job from its TFRecord files or a text file, and their look-up to
# YouTube ids, one job per shard of ranks, cached on disk beside the tables (lookup/cache/, not
# an output: a failed or retried job keeps its answers).


rule yt8m_sample:
    input:
        ids=lambda w: get_dataset(w)["ids"],
    output:
        "results/{dataset}/sample.parquet",
    log:
        "logs/yt8m_sample/{dataset}.log",
    benchmark:
        "benchmarks/yt8m_sample/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    params:
        drawn=lambda w: sum(map(len, PLAN.shards[w.dataset].values())),
        seed=config["seed"],
    script:
        "../workflow/scripts/yt8m_sample.py"


rule yt8m_lookup:
    input:
        "results/{dataset}/sample.parquet",
    output:
        "results/{dataset}/lookup/{shard}.parquet",
    log:
        "logs/yt8m_lookup/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/yt8m_lookup/{dataset}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        runtime=lambda w: 10 + len(get_entries(w)) // 60,
    params:
        ranks=lambda w: [e["rank"] for e in get_entries(w)],
        template=lambda w: get_dataset(w)["lookup_url"],
        cache=lambda w: f"results/{w.dataset}/lookup/cache",
    script:
        "../workflow/scripts/yt8m_lookup.py"


rule yt8m_selection:
    input:
        lookups=get_dataset_files("results/{dataset}/lookup/{shard}.parquet"),
        tables=get_dataset_files("results/{dataset}/flow/{shard}.parquet"),
    output:
        selection="results/{dataset}/selection.parquet",
        availability="results/{dataset}/availability.json",
        page=report(
            "results/{dataset}/availability.html",
            caption="../report/availability.rst",
            category="Data health",
            labels={"dataset": "{dataset}", "plot": "availability"},
        ),
    log:
        "logs/yt8m_selection/{dataset}.log",
    benchmark:
        "benchmarks/yt8m_selection/{dataset}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=4000,
        runtime=10,
    params:
        sample=lambda w: get_dataset(w)["sample"],
    script:
        "../workflow/scripts/yt8m_selection.py"
