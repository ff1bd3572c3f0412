from pico import logs
from pico.data import tracks
from pico.reporting import figures
from pico.store import manifest

logs.setup(snakemake.log[0])
frames_of = {r["video"]: r["frames"] for r in manifest.read(snakemake.input.table) if r["status"] == "ok"}
image = figures.figure1(tracks.read(snakemake.input.tracks), frames_of)
figures.write_png(image, snakemake.output[0])
