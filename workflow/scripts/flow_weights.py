from pico import logs
from pico.data import weights

logs.setup(snakemake.log[0])
weights.fetch(snakemake.params.backend, snakemake.output[0])
