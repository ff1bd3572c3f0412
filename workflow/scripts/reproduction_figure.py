import json

from pico import logs
from pico.reporting import reproduction

logs.setup(snakemake.log[0])
data = json.loads(open(snakemake.input[0]).read())
reproduction.plot(data, snakemake.wildcards.figure, snakemake.output[0])
