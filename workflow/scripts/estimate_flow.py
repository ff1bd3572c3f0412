from pico import logs
from pico.data import flow
from pico.reporting import health
from pico.store import manifest

logs.setup(snakemake.log[0], threads=snakemake.threads)
cfg = snakemake.config["flow"]
if snakemake.input.weights:  # the fetched default weights (rules/flow.smk), or the configured file
    cfg = {**cfg, "weights": snakemake.input.weights[0]}
rows = flow.run_shard(manifest.read(snakemake.input[0]), cfg, snakemake.output.flow)
manifest.write(rows, snakemake.output.table)
health.write_summary(health.flow_summary(snakemake.output.table), snakemake.output.health)
