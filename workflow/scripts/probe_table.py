from pico import logs
from pico.evaluation import registry
from pico.store.files import read_json, write_json

logs.setup(snakemake.log[0])
results = [read_json(path) for path in snakemake.input]
write_json(registry.table(results, snakemake.wildcards.benchmark, snakemake.params.demo), snakemake.output[0])
