from pico import logs
from pico.evaluation import propagation
from pico.store.files import read_json, write_json

logs.setup(snakemake.log[0])
results = [read_json(path) for path in snakemake.input]
write_json(propagation.table(results, snakemake.params.demo), snakemake.output[0])
