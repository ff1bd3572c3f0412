from pathlib import Path

from pico import logs, pretrain

logs.setup(snakemake.log[0])
cfg = {
    "model": snakemake.params.model,
    "pretrain": snakemake.config["pretrain"],
}
pretrain.launch(
    list(snakemake.input.pairs),
    cfg,
    snakemake.output.model,
    snakemake.output.metrics,
    Path(snakemake.params.work) / "work",
    snakemake.resources.gpu // snakemake.resources.nodes,  # processes per node: its GPUs
    snakemake.resources.nodes,
)
