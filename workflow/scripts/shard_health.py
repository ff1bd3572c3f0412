import json

from pico import health, logs
from pico.io import atomic_path

logs.setup(snakemake.log[0])
summarize = {"flow_health": health.flow_summary, "track_health": health.track_summary, "pair_health": health.pair_summary}
summary = summarize[snakemake.rule](**dict(snakemake.input.items()))
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(summary, indent=1))
