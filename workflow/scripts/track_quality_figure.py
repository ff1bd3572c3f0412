from pico import logs
from pico.reporting import track_quality
from pico.store.files import read_json

logs.setup(snakemake.log[0])
track_quality.plot(read_json(snakemake.input[0]), snakemake.output[0])
