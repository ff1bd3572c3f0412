import json
import time

from pico import benchmark, config, logs
from pico.io import atomic_path

logs.setup(snakemake.log[0])
start = time.perf_counter()
name = snakemake.wildcards.benchmark
settings = config.benchmark_settings(snakemake.config, name)  # runtime keys included
if "method" in snakemake.wildcards.keys():
    model = config.model_name(*(snakemake.wildcards[k] for k in ("method", "dataset", "sampling", "gamma", "delta")))
    path = snakemake.input.model
else:
    model, path = "moco_v2", None
moco_v2 = snakemake.config["benchmarks"]["moco_v2_checkpoint"] or snakemake.config["model"]["encoder_checkpoint"]
scores = benchmark.evaluate(name, path, moco_v2, snakemake.input.data, settings, snakemake.params.seed, snakemake.params.work)
row = benchmark.result(scores, name, model, path, snakemake.params.settings, snakemake.params.demo, time.perf_counter() - start)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(row, indent=2))
