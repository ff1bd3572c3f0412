# Stages 5-6 (Sections 3.2-3.3): cuts of the raw tracks at Eq. 3's (gamma, delta), and the point
# pairs drawn from them, with the selected frames' JPEGs beside them so that pretraining never
# opens the full snippets. A pair set depends on the raw tracks and its own settings only, so
# changing gamma or delta adds jobs and reruns none.
#
# Three rules write these files, and each path has exactly one of them as its producer:
#
#   rule         writes                                              when Snakemake picks it
#   cut_pairs    a tables' cut of one shard, and Table 1's pair      for every cut of tracking.thresholds
#                sets (every method at sampling.strategy) on it      (the tables' cuts, {cut})
#   point_pairs  one other pair set, an ablation's, for a group of   for any pair set that is not Table 1's
#                datasets.<name>.shards_per_pair_job shards          on a tables' cut
#   cut_tracks   one shard's cut at any other (gamma, delta)         when a target asks for the cut itself
#                                                                     (`tracks`: an ablation's cuts)
#
# The methods' pair sets of one sampling and cut are the same draws with different
# correspondence maps (pico.data.pairs), so cut_pairs draws them once; it halves the jobs of the
# paper's DAG. The ruleorder gives a tables' cut to cut_pairs rather than cut_tracks; point_pairs'
# {method} constraint (PLAN.ablation_pair_method) leaves Table 1's sets out of its paths, so that
# no pair file has two producers for Snakemake to weigh. cut_pairs and point_pairs run one
# script, workflow/scripts/draw_pairs.py: a pair set that passes from one to the other (its cut
# left tracking.thresholds) keeps its record and is not drawn again. cut_tracks has its own, and
# a cut that passes to it is made again, a job of seconds that only `tracks` asks for.


rule cut_pairs:
    input:
        tracks=["results/{dataset}/tracks/raw/{shard}.parquet"],
        table=["results/{dataset}/flow/{shard}.parquet"],
        frames=["results/{dataset}/frames/{shard}"],
        selection=get_yt8m_selection,
    output:
        cut="results/{dataset}/tracks/{cut}/{shard}.parquet",
        cut_health="results/{dataset}/health/tracks/{cut}/{shard}.json",
        pairs=expand(
            "results/{{dataset}}/pairs/{set}/{{cut}}/{{shard}}.parquet",
            set=PLAN.table_pair_sets,
        ),
        frames=expand(
            "results/{{dataset}}/pairs/{set}/{{cut}}/{{shard}}.frames.parquet",
            set=PLAN.table_pair_sets,
        ),
        pair_health=expand(
            "results/{{dataset}}/health/pairs/{set}/{{cut}}/{{shard}}.json",
            set=PLAN.table_pair_sets,
        ),
    log:
        "logs/cut_pairs/{dataset}/{cut}/{shard}.log",
    benchmark:
        "benchmarks/cut_pairs/{dataset}/{cut}/{shard}.tsv"
    wildcard_constraints:
        shard=r"\d{5}",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        thresholds=lambda w: PLAN.cuts[w.cut],
        motion_boundary=config["tracking"]["motion_boundary"],
        pairs=PLAN.pair_settings,
    script:
        "../workflow/scripts/draw_pairs.py"


rule point_pairs:
    input:
        tracks=get_group_files("results/{dataset}/tracks/raw/{shard}.parquet"),
        table=get_group_files("results/{dataset}/flow/{shard}.parquet"),
        frames=get_group_files("results/{dataset}/frames/{shard}"),
        selection=get_yt8m_selection,
    output:
        pairs=[
            "results/{dataset}/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.parquet"
        ],
        frames=[
            "results/{dataset}/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.frames.parquet"
        ],
        pair_health=[
            "results/{dataset}/health/pairs/{method}/{sampling}/g{gamma}_d{delta}/{shard}.json"
        ],
    log:
        "logs/point_pairs/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/point_pairs/{dataset}/{method}/{sampling}/g{gamma}_d{delta}/{shard}.tsv"
    wildcard_constraints:
        method=PLAN.ablation_pair_method,
        shard=r"\d{5}(?:-\d{5})?",
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=8000,  # a shard's tracks at a time
        runtime=lambda w: 40 * len(pico.plan.grouped(w.shard)),
    params:
        thresholds=lambda w: (float(w.gamma), float(w.delta)),
        motion_boundary=config["tracking"]["motion_boundary"],
        pairs=PLAN.pair_settings,
    script:
        "../workflow/scripts/draw_pairs.py"


rule cut_tracks:
    input:
        tracks="results/{dataset}/tracks/raw/{shard}.parquet",
    output:
        cut="results/{dataset}/tracks/g{gamma}_d{delta}/{shard}.parquet",
        cut_health="results/{dataset}/health/tracks/g{gamma}_d{delta}/{shard}.json",
    log:
        "logs/cut_tracks/{dataset}/g{gamma}_d{delta}/{shard}.log",
    benchmark:
        "benchmarks/cut_tracks/{dataset}/g{gamma}_d{delta}/{shard}.tsv"
    conda:
        "../envs/cpu.yaml"
    resources:
        mem_mb=8000,
        runtime=10,
    params:
        thresholds=lambda w: (float(w.gamma), float(w.delta)),
        motion_boundary=config["tracking"]["motion_boundary"],
    script:
        "../workflow/scripts/cut_tracks.py"


ruleorder: cut_pairs > cut_tracks


rule pairs:
    input:
        [
            f"results/{dataset}/pairs/{name}/{shard}.parquet"
            for dataset, shards in PLAN.shards.items()
            for name in PLAN.table_pair_names
            for shard in shards
        ],
