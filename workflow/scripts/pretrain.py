from pathlib import Path

from pico import logs, pretrain

logs.setup(snakemake.log[0], threads=snakemake.threads)
cfg = {
    "model": snakemake.params.model,
    # the config's runtime keys with the rule's settings over them (a reproduction seed)
    "pretrain": {**snakemake.config["pretrain"], **snakemake.params.pretrain},
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
