# rules/pairs.smk's point_pairs: one ablation's pair set, drawn from a group of shards' cuts, and its summary.
from pico import logs
from pico.data import pairs, yt8m
from pico.reporting import health

logs.setup(snakemake.log[0])
inputs, params, out, wildcards = snakemake.input, snakemake.params, snakemake.output, snakemake.wildcards
rows, lengths = pairs.draw_sets(
    list(zip(inputs.tracks, inputs.table, strict=True)),
    thresholds=params.thresholds,
    motion_boundary=params.motion_boundary,
    methods=[wildcards.method],
    strategy=wildcards.sampling,
    settings=params.pairs,
    outs=[(out.pairs, out.frames)],
    # yt8m: the videos past the sample's first `sample` ok ones are reserve
    used=yt8m.read_selection(inputs.selection[0]) if inputs.selection else None,
)
health.write_pair_summaries([out.pairs], [out.pair_health], rows, lengths)
