"""Starting a pretraining (rule ``pretrain_model``): in the job's own process, or with one
process per GPU through torchrun, on one node or, under SLURM, on several (one torchrun per
node under ``srun``, meeting at the job's first node). ``main`` is each torchrun process's
entry point: it trains its share of each batch (``pico.learn.pretrain.train``).
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from pico import logs
from pico.learn import pretrain
from pico.store.files import read_json

log = logging.getLogger(__name__)


def torchrun_command(processes: int, nodes: int, head_node: str | None, args: list[str]) -> list[str]:
    """The command that starts ``processes`` training processes per node on ``nodes`` nodes:
    torchrun on this node, or, across nodes of a SLURM allocation, one torchrun per node under
    ``srun`` meeting at ``head_node`` (c10d rendezvous)."""
    run = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={processes}"]
    if nodes <= 1:
        return [*run, "--standalone", "-m", "pico.learn.launch", *args]
    return [
        "srun",
        f"--nodes={nodes}",
        "--ntasks-per-node=1",
        *run,
        f"--nnodes={nodes}",
        "--rdzv_backend=c10d",
        f"--rdzv_endpoint={head_node}:29500",
        "-m",
        "pico.learn.launch",
        *args,
    ]


def head_node() -> str:
    """First host of this SLURM job. Inside a job started by Snakemake's SLURM plugin
    ``SLURM_JOB_NODELIST`` is gone (its jobstep plugin clears it); the job id stays, and
    ``squeue`` gives the node list from it."""
    nodelist = (
        os.environ.get("SLURM_JOB_NODELIST")
        or subprocess.run(
            ["squeue", "-h", "-j", os.environ["SLURM_JOB_ID"], "-o", "%N"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    hosts = subprocess.run(
        ["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True, check=True
    ).stdout.split()
    return hosts[0]


def launch(
    pair_files: list[str],
    config: dict,
    *,
    out: str | Path,
    metrics_out: str | Path,
    work_dir: str | Path,
    processes: int,
    nodes: int = 1,
    heldout_files: list[str] | None = None,
) -> None:
    """Pretrain with ``config`` (``pico.learn.pretrain.train``) in this process, or with several
    processes (GPUs) or nodes through torchrun, which read ``config`` and the file lists from
    ``work_dir``."""
    heldout_files = heldout_files or pair_files
    if processes <= 1 and nodes <= 1:
        pretrain.train(pair_files, config, out, metrics_out, work_dir, heldout_files=heldout_files)
        return
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "pairs.txt").write_text("\n".join(map(str, pair_files)))
    (work_dir / "heldout.txt").write_text("\n".join(map(str, heldout_files)))
    (work_dir / "config.json").write_text(json.dumps(config))
    args = [str(work_dir / name) for name in ("pairs.txt", "config.json")]
    args += [str(out), str(metrics_out), str(work_dir), str(work_dir / "heldout.txt")]
    cmd = torchrun_command(max(1, processes), nodes, head_node() if nodes > 1 else None, args)
    log.info("starting %s", " ".join(cmd))
    subprocess.run(cmd, check=True)


def main() -> None:
    """Entry point of each torchrun process: PAIRS.txt CONFIG.json OUT METRICS WORK HELDOUT.txt."""
    pairs_list, config_file, out, metrics_out, work, heldout_list = sys.argv[1:7]
    logs.setup(None)
    pair_files, heldout_files = (Path(p).read_text().split() for p in (pairs_list, heldout_list))
    pretrain.train(pair_files, read_json(config_file), out, metrics_out, work, heldout_files=heldout_files)


if __name__ == "__main__":
    main()
