import logging

from pico import logs
from pico.data import pairs, tracks, yt8m
from pico.reporting import health
from pico.store import manifest

logs.setup(snakemake.log[0])
out, params = snakemake.output, snakemake.params
raw = tracks.read(snakemake.input.tracks)
cut = tracks.cut(raw, *params.thresholds, motion_boundary=params.motion_boundary)
logging.getLogger("pico.data.tracks").info("cut: %d of %d rows kept", cut.num_rows, raw.num_rows)
del raw  # only the cut is used from here (a paper shard's raw tracks are gigabytes)
lengths = health.track_summary(cut)
if "cut" in out.keys():  # cut_tracks, cut_pairs: the cut as a file, and its summary
    tracks.write(cut, out.cut)
    health.write_summary(lengths, out.cut_health)
if "pairs" in out.keys():  # cut_pairs, point_pairs: pair sets drawn from the cut
    # point_pairs' one set is named by its path, cut_pairs' are the tables'. Not params: a set's
    # recorded params must not depend on which rule draws it (an ablation's set on a tables' cut
    # is point_pairs' once that cut leaves tracking.thresholds, and must not rerun then).
    wildcards, config = snakemake.wildcards, snakemake.config
    methods = [wildcards.method] if "method" in wildcards.keys() else config["methods"]
    rows = manifest.read(snakemake.input.table)
    if snakemake.input.selection:  # yt8m: the videos past the sample's first `sample` ok ones are reserve
        used = yt8m.read_selection(snakemake.input.selection[0])
        rows = [row for row in rows if row["video"] in used]
    pairs.run_shard(
        rows,
        cut,
        methods=methods,
        strategy=wildcards.get("sampling", config["sampling"]["strategy"]),
        cfg=params.pairs,
        outs=list(zip(out.pairs, out.frames)),
    )
    for path, summary in zip(out.pairs, out.pair_health):
        health.write_summary(health.pair_summary(path, rows, lengths), summary)
