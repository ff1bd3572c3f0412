"""Helpers shared by the tests (importable: pytest puts tests/ on sys.path)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def snakemake_command(workdir: Path, *args: str, config: dict | None = None) -> tuple[list[str], dict]:
    """The command and environment that run the real workflow in ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    # targets and flags first: --configfile takes several values and would swallow them
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--cores", "2"]
    if config is not None:
        (workdir / "config.yaml").write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(workdir / "config.yaml")]
    return cmd, {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}


def run_snakemake(workdir: Path, *args: str, config: dict | None = None, check: bool = True, **popen):
    """Run the real workflow in ``workdir`` (its own .snakemake, results, logs); ``popen``:
    more arguments for ``subprocess.run`` (a ``preexec_fn`` setting limits, say)."""
    cmd, env = snakemake_command(workdir, *args, config=config)
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, **popen)
    if check and out.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{out.stdout[-3000:]}\n{out.stderr[-5000:]}")
    return out


def dry_run_with(workdir, override: dict, target: str):
    """``snakemake -n target`` with ``override`` layered over the demo config."""
    (workdir / "override.yaml").write_text(yaml.safe_dump(override))
    return run_snakemake(
        workdir, target, "-n", "--configfile", str(workdir / "config/config.yaml"), str(workdir / "override.yaml")
    )


def scheduled(dry_run_stdout: str) -> dict[str, int]:
    """Job counts per rule from a dry run's job stats table."""
    table = dry_run_stdout.split("Job stats:")[1].split("\n\n")[0] if "Job stats:" in dry_run_stdout else ""
    return {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.M) if m[1] != "total"}


def random_raw_tracks(height: int, width: int):
    """Raw tracks (``pico.data.tracks``) of 300 points over 16 frames of random smooth forward flow
    and noisy backward flow: tracks of varied lengths, Eq. 3 terms and end reasons."""
    import numpy as np

    from pico.data import tracks

    rng = np.random.default_rng(0)
    flows = [
        (
            rng.normal(0, 2, (2, height, width)).astype(np.float32),
            rng.normal(0, 2, (2, height, width)).astype(np.float32),
        )
        for _ in range(15)
    ]
    t0, x, y = tracks.start_points(300, 16, width, height, rng)
    return tracks.table("v", tracks.track(flows, 16, t0, x, y, 0.5, 16))
