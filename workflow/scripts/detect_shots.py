from pico import logs, manifest, shots

logs.setup(snakemake.log[0])
detection = {
    "threshold": snakemake.params.threshold,
    "margin_seconds": snakemake.params.margin,
    "device": snakemake.config["shot_detection"]["device"],
}
rows = shots.run_shard(
    manifest.read(snakemake.input[0]),
    snakemake.params.dataset,
    detection,
    snakemake.params.seed,
)
manifest.write(rows, snakemake.output[0])
