from pico import logs, rerun
from pico.learn import encoder

logs.setup(snakemake.log[0], threads=snakemake.threads)
encoder.train(
    list(snakemake.input.frames),
    {
        "model": snakemake.params.model,
        "encoder": rerun.job_settings(snakemake.config, "encoder", snakemake.params.encoder),
    },
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    snakemake.params.work,
)
