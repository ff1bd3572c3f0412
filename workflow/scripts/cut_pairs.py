# rules/pairs.smk's cut_pairs: one shard's cut at one of the tables' (gamma, delta), and Table 1's
# pair sets drawn from it, each with its summary.
from pico import logs
from pico.data import pairs, tracks, yt8m
from pico.reporting import health

logs.setup(snakemake.log[0])
inputs, params, out, config = snakemake.input, snakemake.params, snakemake.output, snakemake.config
cut = tracks.cut_file(inputs.tracks, *params.thresholds, motion_boundary=params.motion_boundary)
tracks.write(cut, out.cut)
health.write_summary(health.track_summary([tracks.lengths(cut)]), out.cut_health)
rows, lengths = pairs.draw_sets(
    [(inputs.tracks, inputs.table)],
    thresholds=params.thresholds,
    motion_boundary=params.motion_boundary,
    methods=config["methods"],
    strategy=config["sampling"]["strategy"],
    settings=params.pairs,
    outs=list(zip(out.pairs, out.frames, strict=True)),
    used=yt8m.read_selection(inputs.selection[0]) if inputs.selection else None,
    cut=cut,
)
health.write_pair_summaries(out.pairs, out.pair_health, rows, lengths)
