from pathlib import Path

from pico import logs, rerun
from pico.learn import launch

logs.setup(snakemake.log[0], threads=snakemake.threads)
launch.launch(
    list(snakemake.input.pairs),
    {
        "model": snakemake.params.model,
        "pretrain": rerun.job_settings(snakemake.config, "pretrain", snakemake.params.pretrain),
    },
    out=snakemake.output.model,
    metrics_out=snakemake.output.metrics,
    work_dir=Path(snakemake.params.work) / "work",
    processes=snakemake.resources.gpu // snakemake.resources.nodes,  # per node: its GPUs
    nodes=snakemake.resources.nodes,
    heldout_files=list(snakemake.input.heldout),
)
