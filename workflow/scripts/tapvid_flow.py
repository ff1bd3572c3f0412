from pico import logs, plan
from pico.evaluation import tapvid

logs.setup(snakemake.log[0], threads=snakemake.threads)
cfg = plan.tapvid_flow(snakemake.config, snakemake.wildcards.backend)
if snakemake.input.weights:  # the fetched default weights (rules/flow.smk), or the configured file
    cfg = {**cfg, "weights": snakemake.input.weights[0]}
tapvid.write_flow(snakemake.input.truth, cfg, snakemake.output[0])
