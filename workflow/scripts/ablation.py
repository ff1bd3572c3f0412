import logging

from pico import logs
from pico.reporting import ablations
from pico.store.files import read_json, write_json

logs.setup(snakemake.log[0])
figure = snakemake.wildcards.figure
results = [read_json(path) for path in snakemake.input]
data = ablations.table(figure, results, snakemake.params.demo)
write_json(data, snakemake.output.json)
ablations.plot(data, snakemake.output.plot)
logging.getLogger("pico.reporting.ablations").info("%s: %d points plotted", figure, len(data["points"]))
