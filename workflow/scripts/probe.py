import json
import time

from pico import logs, model, probe
from pico.io import atomic_path

logs.setup(snakemake.log[0])
start = time.perf_counter()
if "method" in snakemake.wildcards.keys():
    name = "/".join(snakemake.wildcards[k] for k in ("method", "dataset", "sampling"))
    name += f"/g{snakemake.wildcards.gamma}_d{snakemake.wildcards.delta}"
    path = snakemake.input.model
    features, channels = probe.pretrained_features(path), snakemake.config["model"]["dim"]
else:
    name, path = "moco_v2", None
    checkpoint = snakemake.config["benchmarks"]["moco_v2_checkpoint"] or snakemake.config["model"]["encoder_checkpoint"]
    features, channels = model.dilated_encoder("resnet50", checkpoint), 2048
benchmark = snakemake.wildcards.benchmark
scores = probe.run(features, channels, benchmark, snakemake.input.data, snakemake.params.probe, snakemake.params.seed)
row = probe.result(scores, benchmark, name, path, snakemake.params.probe, snakemake.params.demo, time.perf_counter() - start)
with atomic_path(snakemake.output[0]) as tmp:
    tmp.write_text(json.dumps(row, indent=2))
