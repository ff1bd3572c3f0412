import json
import logging

from pico import logs
from pico.reporting import ablations
from pico.store.files import atomic_path, read_json

logs.setup(snakemake.log[0])
figure = snakemake.wildcards.figure
results = [read_json(path) for path in snakemake.input]
data = ablations.table(figure, results, snakemake.params.demo)
with atomic_path(snakemake.output.json) as tmp:
    tmp.write_text(json.dumps(data, indent=2))
ablations.plot(data, snakemake.output.plot)
logging.getLogger("pico.reporting.ablations").info("%s: %d points plotted", figure, len(data["points"]))
