from pico import logs
from pico.config import rule_config
from pico.learn import encoder

logs.setup(snakemake.log[0], threads=snakemake.threads)
encoder.train(
    list(snakemake.input.frames),
    rule_config(snakemake.config, snakemake.params, "encoder"),
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    snakemake.params.work,
)
