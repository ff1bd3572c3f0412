from pico import logs
from pico.data import yt8m
from pico.reporting import availability
from pico.store import manifest
from pico.store.files import atomic_path, write_json

logs.setup(snakemake.log[0])
lookups = [row for path in snakemake.input.lookups for row in yt8m.read_lookup(path)]
tables = [row for path in snakemake.input.tables for row in manifest.read(path)]
used, report = yt8m.select(lookups, tables, snakemake.params.sample)
report["dataset"] = snakemake.wildcards.dataset
yt8m.write_selection(used, snakemake.output.selection)
write_json(report, snakemake.output.availability, indent=1, sort_keys=True)
with atomic_path(snakemake.output.page) as tmp:
    tmp.write_text(availability.to_html(report))
