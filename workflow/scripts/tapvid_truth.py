from pico import logs
from pico.evaluation import tapvid

logs.setup(snakemake.log[0])
tapvid.write_truth(snakemake.params.settings, snakemake.output[0])
