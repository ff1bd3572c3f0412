# rules/pairs.smk's cut_pairs and point_pairs: pair sets drawn from the cuts of one shard or of a
# group of shards, each with its summary; cut_pairs also keeps the shard's cut. Both rules run
# this one script, so that a pair set keeps its record whichever rule draws it: an ablation's set
# on a cut that leaves tracking.thresholds passes from cut_pairs to point_pairs, and must not be
# drawn again because its rule's code differs.
from pico import logs
from pico.data import pairs, yt8m
from pico.reporting import health

logs.setup(snakemake.log[0])
inputs, params, out, config = snakemake.input, snakemake.params, snakemake.output, snakemake.config
# point_pairs draws the one set its path names; cut_pairs draws Table 1's, every method at sampling.strategy
wildcards = dict(snakemake.wildcards)
rows, lengths = pairs.draw_sets(
    list(zip(inputs.tracks, inputs.table, strict=True)),
    thresholds=params.thresholds,
    motion_boundary=params.motion_boundary,
    methods=[wildcards["method"]] if "method" in wildcards else config["methods"],
    strategy=wildcards.get("sampling", config["sampling"]["strategy"]),
    settings=params.pairs,
    outs=list(zip(out.pairs, out.frames, strict=True)),
    # yt8m: the videos past the sample's first `sample` ok ones are reserve
    used=yt8m.read_selection(inputs.selection[0]) if inputs.selection else None,
    keep_cut=out.get("cut"),
)
health.write_pair_summaries(out.pairs, out.pair_health, rows, lengths)
if "cut_health" in out.keys():
    health.write_summary(health.track_summary(lengths), out.cut_health)
