from pico import logs
from pico.data import yt8m

logs.setup(snakemake.log[0])
yt8m.write_sample(snakemake.input.ids, snakemake.params.drawn, snakemake.params.seed, snakemake.output[0])
