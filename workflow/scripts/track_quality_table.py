import json

from pico import logs
from pico.evaluation import tapvid
from pico.store.files import atomic_path, read_json

logs.setup(snakemake.log[0])
results = [read_json(path) for path in snakemake.input]
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(tapvid.table(results, snakemake.params.demo), indent=2))
