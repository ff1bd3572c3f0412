from pathlib import Path

from pico import health, logs

logs.setup(snakemake.log[0])
runs = {name: Path(model).parent / "work" / "metrics.csv" for name, model in zip(snakemake.params.models, snakemake.input)}
health.plot_losses(runs, snakemake.output[0])
