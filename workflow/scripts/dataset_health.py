from pico import health, logs, plots

logs.setup(snakemake.log[0])
dataset = snakemake.wildcards.dataset
merged = health.merge(snakemake.input.flow, snakemake.input.tracks, snakemake.input.pairs)
out = snakemake.output
health.plot_status(merged, dataset, out.status)
health.plot_flow_error(merged, dataset, out.flow_codec_error)
plots.histograms(merged["track_lengths"], "track length (frames)", f"{dataset}: track lengths per (gamma, delta) cut", out.track_lengths)
plots.histograms(merged["pairs_per_video"], "point pairs per video", f"{dataset}: point pairs per ok video, per pair set", out.pairs_per_video)
