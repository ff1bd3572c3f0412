from pico import logs
from pico.data import frames
from pico.store import manifest

logs.setup(snakemake.log[0])
rows = frames.run_shard(manifest.read(snakemake.input[0]), snakemake.params.frames, snakemake.output.frames)
manifest.write(rows, snakemake.output.manifest)
