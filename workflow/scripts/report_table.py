from pico import logs
from pico.reporting import tables
from pico.store.files import atomic_path, read_json

logs.setup(snakemake.log[0])
table = read_json(snakemake.input[0])
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(tables.to_html(table))
