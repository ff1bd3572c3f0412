from pico import logs
from pico.data import shots
from pico.store import manifest

logs.setup(snakemake.log[0], threads=snakemake.threads)
settings = snakemake.config["shot_detection"]
rows = shots.run_shard(
    manifest.read(snakemake.input[0]),
    snakemake.params.dataset,
    settings,
    snakemake.config["seed"],
    download_table=snakemake.input[0],
)
manifest.write(rows, snakemake.output[0])
