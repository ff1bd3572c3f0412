import time

from pico import logs
from pico.evaluation import correspondence, demo_correspondence, registry
from pico.evaluation.probe import device_for
from pico.store.files import write_json

logs.setup(snakemake.log[0], threads=snakemake.threads)
start = time.perf_counter()
settings, seed, reference = snakemake.params.settings, snakemake.params.seed, snakemake.params.reference
specs = settings["pairs"] + demo_correspondence.demo_specs(
    snakemake.input.demo, settings["demo_pairs"], settings["demo_gaps"]
)
drawn = {"short_side": settings["short_side"], "points": settings["points"], "seed": seed}
# a reference row (correspondence.REFERENCES) or a model: the benchmark table's, or MoCo-v2
if reference == "zero_motion":
    model, path = reference, None
    rows = correspondence.zero_motion(specs, **drawn)
else:
    if reference == "encoder_c2":
        encoder = snakemake.params.encoder
        model, path = reference, encoder["checkpoint"]
        net = registry.encoder_c2(encoder["arch"], path, encoder["seed"])
    else:
        model, path, moco_v2 = registry.benchmarked(
            dict(snakemake.wildcards), snakemake.input.get("model"), snakemake.config
        )
        net, _ = registry.frozen_network(path, moco_v2, seed)
    rows = correspondence.evaluate(
        net,
        specs,
        **drawn,
        refinement=settings["refinement"],
        temperature=settings.get("temperature"),
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
write_json(row, snakemake.output[0])
