# rules/pairs.smk's cut_tracks: one shard's raw tracks cut at the job's (gamma, delta), and its summary.
from pico import logs
from pico.data import tracks
from pico.reporting import health

logs.setup(snakemake.log[0])
params, out = snakemake.params, snakemake.output
cut = tracks.cut_file(snakemake.input.tracks, *params.thresholds, motion_boundary=params.motion_boundary)
tracks.write(cut, out.cut)
health.write_summary(health.track_summary([tracks.lengths(cut)]), out.cut_health)
