import json

from pico import logs
from pico.reporting import tables
from pico.store.files import atomic_path

logs.setup(snakemake.log[0])
table = json.loads(open(snakemake.input[0]).read())
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(tables.to_html(table))
