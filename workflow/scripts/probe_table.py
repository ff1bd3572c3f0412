import json

from pico import benchmark, logs
from pico.io import atomic_path

logs.setup(snakemake.log[0])
results = [json.loads(open(path).read()) for path in snakemake.input]
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(benchmark.table(results, snakemake.wildcards.benchmark, snakemake.params.demo), indent=2))
