import json

from pico import health, logs
from pico.io import atomic_path

logs.setup(snakemake.log[0])
cuts = dict(zip(snakemake.params.cuts, snakemake.input.cuts))
pairs = dict(zip(snakemake.params.pairs, snakemake.input.pairs))
summary = health.shard_summary(snakemake.input.table, cuts, pairs)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(summary, indent=1))
