import time

from pico import logs, plan
from pico.evaluation import registry
from pico.store.files import write_json

logs.setup(snakemake.log[0], threads=snakemake.threads)
start = time.perf_counter()
name = snakemake.wildcards.benchmark
settings = plan.evaluation_settings(snakemake.config, name)  # runtime keys included
model, path, moco_v2 = registry.benchmarked(dict(snakemake.wildcards), snakemake.input.get("model"), snakemake.config)
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
write_json(row, snakemake.output[0])
