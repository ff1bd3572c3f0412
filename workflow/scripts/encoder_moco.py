from pico import encoder, logs

logs.setup(snakemake.log[0], threads=snakemake.threads)
cfg = {
    "model": snakemake.params.model,
    # the config's runtime keys with the rule's settings over them
    "encoder": {**snakemake.config["encoder"], **snakemake.params.encoder},
}
encoder.train(
    list(snakemake.input.frames),
    cfg,
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    snakemake.params.work,
)
