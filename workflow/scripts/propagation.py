import time

from pico import logs
from pico.evaluation import propagation, registry
from pico.evaluation.probe import device_for
from pico.store.files import write_json

logs.setup(snakemake.log[0], threads=snakemake.threads)
start = time.perf_counter()
settings, seed = snakemake.params.settings, snakemake.params.seed
model, path, moco_v2 = registry.benchmarked(dict(snakemake.wildcards), snakemake.input.get("model"), snakemake.config)
net, _ = registry.frozen_network(path, moco_v2, seed)
scores = propagation.evaluate(
    net,
    snakemake.input.data,
    short_side=settings["short_side"],
    context=settings["context"],
    topk=settings["topk"],
    temperature=settings["temperature"],
    radius_px=settings["radius_px"],
    device=device_for(snakemake.config["benchmarks"]["propagation"]),
)
row = registry.result(
    scores,
    "propagation",
    model,
    path,
    cfg=settings,
    demo=snakemake.params.demo,
    seconds=time.perf_counter() - start,
)
write_json(row, snakemake.output[0])
