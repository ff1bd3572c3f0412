from pathlib import Path

from pico import logs
from pico.config import rule_config
from pico.learn import pretrain

logs.setup(snakemake.log[0], threads=snakemake.threads)
pretrain.launch(
    list(snakemake.input.pairs),
    rule_config(snakemake.config, snakemake.params, "pretrain"),
    snakemake.output.model,
    snakemake.output.metrics,
    Path(snakemake.params.work) / "work",
    snakemake.resources.gpu // snakemake.resources.nodes,  # processes per node: its GPUs
    snakemake.resources.nodes,
)
