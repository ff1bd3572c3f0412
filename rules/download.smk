# Stage 1 (Section 3.1): the download job fetches a shard's videos (youtube, kinetics, yt8m),
# generates them (synthetic) or lists them (local). Its script reads the download settings from
# the config, not from params, because tuning retries or timeouts must not fetch a finished
# shard again (pico.rerun).


rule download:
    input:
        # yt8m: the shard's look-ups say which YouTube videos its ranks are (rules/yt8m.smk)
        lookup=get_yt8m_lookup,
        # local: the shard's files, so that one replaced in place reruns the shard
        videos=get_local_files,
    output:
        table="results/{dataset}/download/{shard}.parquet",
        media=directory("results/{dataset}/media/{shard}"),
    log:
        "logs/download/{dataset}/{shard}.log",
    benchmark:
        "benchmarks/download/{dataset}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=2000,
        runtime=lambda w: 10 + 2 * len(get_entries(w)),
    params:
        entries=get_entries,
        source=lambda w: get_dataset(w)["source"],
        root=lambda w: get_dataset(w).get("root", ""),
        rerun_seed=get_download_seed,
    script:
        "../workflow/scripts/download.py"
