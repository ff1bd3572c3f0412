from pico import logs
from pico.data import pairs, yt8m
from pico.reporting import health
from pico.store import manifest

logs.setup(snakemake.log[0])
rows = manifest.read(snakemake.input.table)
if snakemake.input.selection:  # yt8m: the videos past the sample's first `sample` ok ones are reserve
    used = yt8m.read_selection(snakemake.input.selection[0])
    rows = [row for row in rows if row["video"] in used]
pairs.run_shard(
    rows,
    snakemake.input.tracks,
    method=snakemake.wildcards.method,
    strategy=snakemake.wildcards.sampling,
    cfg=snakemake.params.pairs,
    out=snakemake.output.pairs,
    frames_out=snakemake.output.frames,
)
health.write_summary(health.pair_summary(snakemake.output.pairs, rows), snakemake.output.health)
