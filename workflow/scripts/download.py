from pico import download, logs, manifest

logs.setup(snakemake.log[0])
rows = download.run_shard(
    snakemake.params.entries,
    snakemake.params.source,
    snakemake.output.media,
    snakemake.config["download"],
    snakemake.config["seed"],
    snakemake.params.root,
)
manifest.write(rows, snakemake.output.table)
