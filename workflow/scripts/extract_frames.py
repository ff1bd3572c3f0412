from pico import logs
from pico.data import frames
from pico.store import manifest

logs.setup(snakemake.log[0])
# A replaced source file stops the job; its error names this table in the rebuild command.
download_table = f"results/{snakemake.wildcards.dataset}/download/{snakemake.wildcards.shard}.parquet"
rows = frames.run_shard(
    manifest.read(snakemake.input[0]),
    snakemake.params.frames,
    snakemake.output.frames,
    download_table=download_table,
)
manifest.write(rows, snakemake.output.manifest)
