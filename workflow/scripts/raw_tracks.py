from pico import logs
from pico.data import tracks
from pico.store import manifest

logs.setup(snakemake.log[0])
tracks.run_shard(manifest.read(snakemake.input[0]), snakemake.params.tracking, snakemake.output[0])
