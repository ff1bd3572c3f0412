import logging

from pico import logs
from pico.data import pairs, tracks, yt8m
from pico.reporting import health
from pico.store import manifest

logs.setup(snakemake.log[0])
out, params, inputs = snakemake.output, snakemake.params, snakemake.input
log = logging.getLogger("pico.data.tracks")


def cut_of(path):
    """A shard's raw tracks cut at the job's (gamma, delta), and its summary; only the cut is
    kept (a paper shard's raw tracks are gigabytes)."""
    raw = tracks.read(path)
    cut = tracks.cut(raw, *params.thresholds, motion_boundary=params.motion_boundary)
    log.info("%s: cut: %d of %d rows kept", path, cut.num_rows, raw.num_rows)
    return cut, health.track_summary(cut)


made = None
if "cut" in out.keys():  # cut_tracks, cut_pairs: one shard's cut as a file, and its summary
    (path,) = inputs.tracks
    made = cut_of(path)
    tracks.write(made[0], out.cut)
    health.write_summary(made[1], out.cut_health)
if "pairs" in out.keys():  # cut_pairs, point_pairs: pair sets drawn from the cut of a shard or group
    # point_pairs' one set is named by its path, cut_pairs' are the tables'. Not params: a set's
    # recorded params must not depend on which rule draws it (an ablation's set on a tables' cut
    # is point_pairs' once that cut leaves tracking.thresholds, and must not rerun then).
    wildcards, config = snakemake.wildcards, snakemake.config
    methods = [wildcards.method] if "method" in wildcards.keys() else config["methods"]
    # yt8m: the videos past the sample's first `sample` ok ones are reserve
    used = yt8m.read_selection(inputs.selection[0]) if inputs.selection else None
    rows, lengths = [], []

    def parts():
        """Each shard's rows and cut in turn (cut_pairs': the one made above), its rows and
        track lengths kept for the summaries."""
        for tracks_path, table_path in zip(inputs.tracks, inputs.table, strict=True):
            mine = [row for row in manifest.read(table_path) if used is None or row["video"] in used]
            cut, summary = made if made is not None else cut_of(tracks_path)
            rows.extend(mine)
            lengths.append(summary)
            yield mine, cut

    pairs.run_shard(
        parts(),
        methods=methods,
        strategy=wildcards.get("sampling", config["sampling"]["strategy"]),
        cfg=params.pairs,
        outs=list(zip(out.pairs, out.frames)),
    )
    for path, summary in zip(out.pairs, out.pair_health):
        health.write_summary(health.pair_summary(path, rows, health.track_summaries(lengths)), summary)
