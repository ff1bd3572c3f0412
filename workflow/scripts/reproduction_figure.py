from pico import logs
from pico.reporting import reproduction
from pico.store.files import read_json

logs.setup(snakemake.log[0])
data = read_json(snakemake.input[0])
reproduction.plot(data, snakemake.wildcards.figure, snakemake.output[0])
