import logging

from pico import logs
from pico.data import tracks
from pico.reporting import health

logs.setup(snakemake.log[0])
raw = tracks.read(snakemake.input[0])
cut = tracks.cut(raw, snakemake.params.gamma, snakemake.params.delta, motion_boundary=snakemake.params.motion_boundary)
logging.getLogger("pico.data.tracks").info("cut: %d of %d rows kept", cut.num_rows, raw.num_rows)
tracks.write(cut, snakemake.output.cut)
health.write_summary(health.track_summary(snakemake.output.cut), snakemake.output.health)
