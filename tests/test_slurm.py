"""The Snakemake profiles, and the demo through a real SLURM cluster (tests/slurmcluster.py).

The cluster test needs root and Debian's SLURM packages (``make test`` installs them). In CI
(``CI`` set) a machine that cannot run the cluster fails the test, so a green CI means the
demo did run through SLURM; elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections import Counter
from types import SimpleNamespace

import pytest
import yaml
from snakemake_executor_plugin_slurm.submit_string import get_submit_command
from snakemake_executor_plugin_slurm.utils import set_gres_string

from picotest import REPO, run_snakemake, scheduled
from slurmcluster import Cluster, Unavailable, check_machine

SLURM_PROFILE = str(REPO / "profiles/slurm")
DEMO = yaml.safe_load((REPO / "config/config.yaml").read_text())


def small_demo() -> dict:
    """The demo with one shard of 4 videos and one method: every stage once, and a table
    of pico against the MoCo-v2 baseline."""
    config = copy.deepcopy(DEMO)
    config["datasets"]["demo"]["synthetic"]["videos"] = 4
    config["methods"] = ["pico"]
    return config


@pytest.mark.parametrize("profile", ["local", "slurm"])
def test_profile_keys_are_accepted(tmp_path, monkeypatch, profile):
    """Every key of the profile is an option Snakemake or the SLURM plugin knows (an unknown
    one is a usage error), and account and partition come from SLURM's own variables."""
    monkeypatch.setenv("SBATCH_ACCOUNT", "proj42")
    monkeypatch.setenv("SBATCH_PARTITION", "gpu-a100")
    out = run_snakemake(tmp_path, "coco_probe", "-n", "--profile", str(REPO / "profiles" / profile), config=DEMO)
    assert scheduled(out.stdout)["pretrain_model"] == len(DEMO["methods"])
    if profile == "slurm":
        resources = re.findall(r"resources: (.*)", out.stdout)
        assert resources and all("slurm_account=proj42" in r and "slurm_partition=gpu-a100" in r for r in resources)


def test_slurm_profile_without_account_variables(tmp_path, monkeypatch):
    """Unset, nothing is passed: the plugin guesses the account, SLURM's default partition."""
    monkeypatch.delenv("SBATCH_ACCOUNT", raising=False)
    monkeypatch.delenv("SBATCH_PARTITION", raising=False)
    out = run_snakemake(tmp_path, "coco_probe", "-n", "--profile", SLURM_PROFILE, config=DEMO)
    assert "resources:" in out.stdout and "slurm_account" not in out.stdout and "slurm_partition" not in out.stdout


class Resources(dict):
    """A job's resources as the SLURM plugin reads them (``.get`` and attributes)."""

    __getattr__ = dict.__getitem__


@pytest.mark.parametrize(("nodes", "gpus"), [(1, 8), (2, 4)])
def test_pretraining_request(tmp_path, nodes, gpus):
    """The sbatch line the plugin builds for pretraining on ``gpus`` GPUs per node: one task
    per node, ``gpus`` on each (Slurm 22.05 rejects --gpus=4 --gres=gpu:4 on 2 nodes, and
    --gpus=4 alone spreads 4 over both), every process's loader CPUs; across nodes the job
    runs in its batch step (the jobstep plugin's ``mpi`` path), where pico's srun can start
    a step on every node."""
    pretrain = {**DEMO["pretrain"], "nodes": nodes, "gpus": gpus, "device": "cuda", "workers": 3, "videos_per_batch": 8}
    out = run_snakemake(tmp_path, "pretrain", "-n", "--profile", SLURM_PROFILE, config={**DEMO, "pretrain": pretrain})
    listed = re.search(r"rule pretrain_model:.*?resources: (.*?)\n", out.stdout, re.DOTALL)[1]
    resources = Resources((k, int(v) if v.isdigit() else v) for k, v in (kv.split("=", 1) for kv in listed.split(", ")))
    job = SimpleNamespace(resources=resources, threads=3)
    params = {
        "run_uuid": "r",
        "slurm_logfile": "log",
        "comment_str": "c",
        "account": "",
        "partition": "",
        "workdir": ".",
    }
    sbatch = (get_submit_command(job, params) + set_gres_string(job)).split()
    assert f"--gpus={gpus * nodes}" in sbatch and f"--nodes={nodes}" in sbatch
    assert f"--cpus-per-task={gpus * 4}" in sbatch and not any(a.startswith("--ntasks-per-gpu") for a in sbatch)
    if nodes > 1:
        assert {f"--gres=gpu:{gpus}", f"--ntasks={nodes}"} <= set(sbatch) and "mpi" in resources
    else:
        assert not any(a.startswith("--gres") for a in sbatch) and "mpi" not in resources


@pytest.fixture(scope="module")
def cluster():
    try:
        check_machine()
    except Unavailable as e:
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the SLURM test: {e}")
        pytest.skip(str(e))
    with Cluster() as running:
        yield running


def test_profiles_are_found_by_name_and_a_users_own_is_never_replaced(tmp_path, monkeypatch):
    """``make install``'s step (``pico.profiles``): Snakemake itself then resolves ``--profile
    slurm`` to pico's profile from any folder; a profile of the user's stays, a dangling
    link to a deleted clone is replaced."""
    from snakemake.cli import get_profile_dir

    from pico import profiles

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "xdg/snakemake"
    folder.mkdir(parents=True)
    (folder / "local").mkdir()
    (folder / "local/config.yaml").write_text("cores: 1\n")  # the user's own
    (folder / "slurm").symlink_to(tmp_path / "deleted-clone/profiles/slurm")
    lines = profiles.install(REPO / "profiles")
    assert profiles.user_folder() == folder
    found = get_profile_dir("slurm")  # what Snakemake itself resolves --profile slurm to
    assert found[0] == folder / "slurm" and found[1].resolve() == REPO / "profiles/slurm/config.yaml"
    assert (folder / "local/config.yaml").read_text() == "cores: 1\n"
    assert any("local" in line and "left alone" in line and str(REPO / "profiles/local") in line for line in lines)
    assert any(line.endswith("(already)") for line in profiles.install(REPO / "profiles"))  # idempotent


def repository_copy(root):
    """The repository's tracked layout (no venv, results or caches) at ``root``, as a clone is."""
    import shutil

    shutil.copytree(
        REPO,
        root,
        ignore=shutil.ignore_patterns(
            ".git",
            ".venv",
            "results",
            "logs",
            "benchmarks",
            ".snakemake",
            "__pycache__",
            ".pytest_cache",
            "report.html",
        ),
    )
    return root


@pytest.mark.slow
def test_demo_through_slurm(cluster, tmp_path, monkeypatch):
    """The mission's command as typed, ``snakemake --profile slurm results/coco_probe.json``,
    from the root of a copy of the repository after ``make install``'s profile step, then
    SLURM's own accounting: one sbatch job (with its batch step) per Snakemake job, all COMPLETED."""
    import subprocess
    import sys

    from pico import profiles

    root = repository_copy(tmp_path / "pico")
    (root / "config/config.yaml").write_text(yaml.safe_dump(small_demo()))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    profiles.install(root / "profiles")
    expected = scheduled(run_snakemake(root, "results/coco_probe.json", "-n").stdout)
    expected.pop("coco_probe", None)
    # the test node's overrides, as a workflow profile (profiles/default, which Snakemake lays
    # over --profile): no job asks for more than a core's share of its memory, status checks
    # every few seconds instead of 40 s, and no retries, so every job must succeed first time
    (root / "profiles/default").mkdir()
    (root / "profiles/default/config.yaml").write_text(
        yaml.safe_dump(
            {
                "resources": [f"mem_mb={cluster.memory_mb // cluster.cpus}"],
                "slurm-init-seconds-before-status-checks": 1,
                "latency-wait": 5,
                "retries": 0,
            }
        )
    )
    env = {
        **os.environ,
        "SLURM_CONF": cluster.env["SLURM_CONF"],
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{cluster.env['PATH']}",
    }
    out = subprocess.run(
        ["snakemake", "--profile", "slurm", "results/coco_probe.json"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, f"{out.stderr[-4000:]}\n{cluster.logs()}"
    assert "Using profiles slurm and workflow specific profile profiles/default" in out.stderr  # ours, found by name
    table = json.loads((root / "results/coco_probe.json").read_text())
    assert {row["method"] for row in table["rows"]} == {"pico", "moco_v2"}

    submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", out.stderr + out.stdout))
    run_id = re.search(r"SLURM run ID: (pico_\S+)", out.stderr + out.stdout)[1]  # every job's name
    rows = cluster.sacct(("JobID", "JobName", "Comment", "State", "ExitCode", "ReqTRES"))
    jobs = {r["JobID"]: r for r in rows if r["JobName"] == run_id}  # not the other tests' jobs
    batch_steps = {r["JobID"].split(".")[0] for r in rows if r["JobID"].endswith(".batch")} & set(jobs)
    assert set(jobs) == submitted == batch_steps  # every job Snakemake ran, each an sbatch job
    assert {j: r["State"] for j, r in jobs.items() if r["State"] != "COMPLETED"} == {}
    assert all(r["ExitCode"] == "0:0" and "gpu" not in r["ReqTRES"] for r in jobs.values())
    ran = Counter(re.match(r"rule_(\w+?)(_wildcards_.*)?$", r["Comment"])[1] for r in jobs.values())
    assert ran == expected


def test_head_node_inside_a_job_without_its_node_list(cluster, tmp_path):
    """Snakemake's SLURM jobstep clears SLURM_JOB_NODELIST; multi-node pretraining still finds
    its rendezvous host from the job id (a real sbatch job on the test cluster)."""
    import socket
    import sys

    out = tmp_path / "head.txt"
    code = "from pico.learn.launch import head_node; print(head_node())"
    cluster.run(
        "sbatch",
        "--wait",
        "-o",
        str(out),
        "--mem=100",
        f"--wrap=env -u SLURM_JOB_NODELIST {sys.executable} -c '{code}'",
    )
    assert out.read_text().split() == [socket.gethostname().split(".")[0]]
