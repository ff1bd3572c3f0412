from pico import logs
from pico.reporting import health, plots

logs.setup(snakemake.log[0])
dataset = snakemake.wildcards.dataset
merged = health.merge(
    snakemake.input.flow,
    health.by_series(snakemake.params.cuts, snakemake.input.tracks),
    health.by_series(snakemake.params.pair_sets, snakemake.input.pairs),
)
out = snakemake.output
health.plot_status(merged, dataset, out.status)
health.plot_flow_error(merged, dataset, out.flow_codec_error)
plots.histograms(
    merged["track_lengths"],
    "track length (frames)",
    f"{dataset}: track lengths per (gamma, delta) cut",
    out.track_lengths,
)
without = ", ".join(f"{name} {n:,}" for name, n in merged["videos_without_pairs"].items())
plots.histograms(
    merged["pairs_per_draw"],
    "point pairs per draw",
    f"{dataset}: point pairs per draw (before crops), per pair set\n"
    f"ok videos without any pair (left out of pretraining): {without or 'none'}",
    out.pairs_per_video,
)
plots.histograms(
    merged["temporal_gaps"],
    "frames between the two views",
    f"{dataset}: temporal gap of each draw's frame pairs, per pair set",
    out.temporal_gaps,
)
