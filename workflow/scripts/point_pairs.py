from pico import logs, manifest, pairs

logs.setup(snakemake.log[0])
pairs.run_shard(
    manifest.read(snakemake.input.table),
    snakemake.input.tracks,
    snakemake.wildcards.method,
    snakemake.wildcards.sampling,
    snakemake.params.pairs,
    snakemake.output.pairs,
    snakemake.output.frames,
)
