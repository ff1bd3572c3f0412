import json
import time

from pico import logs
from pico.evaluation import correspondence, registry
from pico.evaluation.probe import device_for
from pico.store.files import atomic_path

logs.setup(snakemake.log[0], threads=snakemake.threads)
start = time.perf_counter()
settings, seed = snakemake.params.settings, snakemake.params.seed
model, path, moco_v2 = registry.benchmarked(snakemake.wildcards, snakemake.input, snakemake.config)
net, _ = registry.frozen_network(path, moco_v2, seed)
specs = settings["pairs"] + correspondence.demo_specs(snakemake.input.demo, settings["demo_pairs"])
rows = correspondence.evaluate(
    net,
    specs,
    short_side=settings["short_side"],
    points=settings["points"],
    refinement=settings["refinement"],
    temperature=settings.get("temperature"),
    seed=seed,
    device=device_for(snakemake.config["benchmarks"]["correspondence"]),
)
row = registry.result(
    {"pairs": rows},
    "correspondence",
    model,
    path,
    cfg=settings,
    demo=bool(settings["demo_pairs"]),
    seconds=time.perf_counter() - start,
)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(row, indent=2))
