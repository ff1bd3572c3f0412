from pico import logs
from pico.reporting import health

logs.setup(snakemake.log[0])
health.plot_losses(dict(zip(snakemake.params.models, snakemake.input)), snakemake.output[0])
