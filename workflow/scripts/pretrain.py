from pathlib import Path

from pico import logs
from pico.config import rule_config
from pico.learn import launch

logs.setup(snakemake.log[0], threads=snakemake.threads)
launch.launch(
    list(snakemake.input.pairs),
    rule_config(snakemake.config, snakemake.params, "pretrain"),
    out=snakemake.output.model,
    metrics_out=snakemake.output.metrics,
    work_dir=Path(snakemake.params.work) / "work",
    processes=snakemake.resources.gpu // snakemake.resources.nodes,  # per node: its GPUs
    nodes=snakemake.resources.nodes,
    heldout_files=list(snakemake.input.heldout),
)
