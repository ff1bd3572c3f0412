# Stage 6 (Section 3.3): frame selection and point pairs per method, sampling and cut, plus the
# selected frames' JPEGs beside them so pretraining never opens the full snippets. A pair job
# cuts the raw tracks itself (stage 5's cut_tracks with pair sets as its outputs), so a pair set
# depends on the raw tracks and its own settings only: changing gamma or delta adds jobs and
# reruns none. The methods' pair sets of one sampling and cut are the same draws with different
# correspondence maps (pico.data.pairs), so the tables' sets of a shard come from one job that
# also writes their cut (cut_pairs); any other set, an ablation's, is a job of its own per group of
# shards (datasets.<name>.shards_per_pair_job: fewer jobs to plan at the paper's scale).


# An ablation's pair set (any but Table 1's, TABLE_PAIR_SETS on its cuts: rules/common.smk),
# a job per group of datasets.<name>.shards_per_pair_job shards ({shard}: a group's name).
use rule cut_tracks as point_pairs with:
    input:
        tracks=per_grouped_shard("results/{dataset}/tracks/raw/{shard}.parquet"),
        table=per_grouped_shard("results/{dataset}/flow/{shard}.parquet"),
        frames=per_grouped_shard("results/{dataset}/frames/{shard}"),
        # yt8m: only the videos training uses, the first `sample` ok ones (rules/yt8m.smk)
        selection=lambda w: (
            [f"results/{w.dataset}/selection.parquet"]
            if dataset_config(w)["source"] == "yt8m"
            else []
        ),
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
    # every set but Table 1's (cut_pairs'): a lookahead from {method} over the rest of the path.
    # No file has two producers, each of which would be a job more to plan.
    wildcard_constraints:
        method="(?!(?:{})/)(?:{})".format(
            "|".join(map(re.escape, TABLE_PAIR_NAMES)), "|".join(pico.config.METHODS)
        ),
        shard=r"\d{5}(?:-\d{5})?",
    resources:
        mem_mb=8000,  # a shard's tracks at a time
        runtime=lambda w: 40 * len(pico.data.sources.grouped(w.shard)),
    params:
        pairs={
            "seed": config["seed"],
            **{k: v for k, v in config["sampling"].items() if k != "strategy"},
        },


# Table 1's pair sets of one of its cuts and shard, and that cut.
use rule point_pairs as cut_pairs with:
    output:
        cut="results/{dataset}/tracks/{cut}/{shard}.parquet",
        cut_health="results/{dataset}/health/tracks/{cut}/{shard}.json",
        pairs=expand(
            "results/{{dataset}}/pairs/{set}/{{cut}}/{{shard}}.parquet",
            set=TABLE_PAIR_SETS,
        ),
        frames=expand(
            "results/{{dataset}}/pairs/{set}/{{cut}}/{{shard}}.frames.parquet",
            set=TABLE_PAIR_SETS,
        ),
        pair_health=expand(
            "results/{{dataset}}/health/pairs/{set}/{{cut}}/{{shard}}.json",
            set=TABLE_PAIR_SETS,
        ),
    log:
        "logs/cut_pairs/{dataset}/{cut}/{shard}.log",
    benchmark:
        "benchmarks/cut_pairs/{dataset}/{cut}/{shard}.tsv"
    wildcard_constraints:
        shard=r"\d{5}",
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        thresholds=lambda w: CUTS[w.cut],


ruleorder: cut_pairs > cut_tracks


rule pairs:
    input:
        [
            f"results/{dataset}/pairs/{pair_set}/{cut}/{shard}.parquet"
            for dataset, shards in SHARDS.items()
            for pair_set in TABLE_PAIR_SETS
            for cut in CUTS
            for shard in shards
        ],
