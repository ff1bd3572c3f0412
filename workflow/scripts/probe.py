import json
import time

from pico import logs, plan
from pico.evaluation import registry
from pico.store.files import atomic_path

logs.setup(snakemake.log[0], threads=snakemake.threads)
start = time.perf_counter()
name = snakemake.wildcards.benchmark
settings = plan.evaluation_settings(snakemake.config, name)  # runtime keys included
model, path, moco_v2 = registry.benchmarked(snakemake.wildcards, snakemake.input, snakemake.config)
scores = registry.evaluate(
    name, path, moco_v2, snakemake.input.data, cfg=settings, seed=snakemake.params.seed, work=snakemake.params.work
)
row = registry.result(
    scores,
    name,
    model,
    path,
    cfg=snakemake.params.settings,
    demo=snakemake.params.demo,
    seconds=time.perf_counter() - start,
)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(row, indent=2))
