"""Pre-emption as SLURM does it: SIGTERM (pre-emption) or SIGUSR1 (the time-limit warning) to
every process of the job, data-loader workers included. Each training loop (pretraining, the
stand-in encoder, a linear probe) runs in a child process with loader workers, in a process
group of its own; the signal goes to the whole group once the run's first checkpoint is
there. The child must save a checkpoint where it stopped and exit cleanly, and its rerun must
end exactly as an uninterrupted run does. And a damaged file that pico wrote: the command its error
names rebuilds it."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest
import torch

from pico.store import checkpoint, files, framestore
from test_encoder import config as encoder_config
from test_encoder import frame_dirs  # noqa: F401  (a fixture)
from test_evaluation import PROBE, demo_coco  # noqa: F401  (demo_coco: a fixture)
from test_pretrain import config as pretrain_config
from test_pretrain import pair_files  # noqa: F401  (a fixture)

WORKERS = 2
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}

ENCODER_JOB = """
import json, sys
from pico import logs
from pico.learn import encoder
logs.setup(None)
frames, config, out = json.loads(sys.argv[1]), json.loads(open(sys.argv[2]).read()), sys.argv[3]
encoder.train(frames, config, f"{out}/moco_v2.pth", f"{out}/metrics.csv", f"{out}/work")
"""

PROBE_JOB = """
import json, sys
from pico import logs
from pico.evaluation import registry
logs.setup(None)
root, settings, work = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
print(json.dumps(registry.evaluate("coco_probe", None, None, root, cfg=settings, seed=0, work=work)))
"""


def group(pgid: int) -> list[int]:
    """The live processes of process group ``pgid``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(stat[2]) == pgid and stat[0] != "Z":
            found.append(int(pid))
    return found


def preempted(cmd: list[str], first_checkpoint: Path, sig: signal.Signals) -> tuple[int, str]:
    """Run ``cmd`` in a session (process group) of its own; once ``first_checkpoint`` exists,
    ``sig`` to the whole group, as SLURM signals a job. (Exit status, stderr.) The main
    process and its loader workers must all have been signalled, and none may outlive it."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=ENV, start_new_session=True
    )
    deadline = time.monotonic() + 60
    while not first_checkpoint.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-3000:]
        time.sleep(0.01)
    signalled = group(proc.pid)
    os.killpg(proc.pid, sig)
    _, stderr = proc.communicate(timeout=60)
    assert len(signalled) == 1 + WORKERS, signalled  # the workers were there to be signalled
    while group(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # the workers, stopped by the main process, exit as it does
    assert not group(proc.pid)
    return proc.returncode, stderr


def assert_stopped_cleanly(status: int, stderr: str, sig: signal.Signals, work: Path, total: int) -> int:
    """The run exited saying where it stopped (no crash), with a checkpoint of that iteration,
    past the first periodic one (so it was saved on the signal); that iteration."""
    said = f"pre-empted by {sig.name} at iteration "
    assert status == 1 and said in stderr and "Traceback" not in stderr, stderr[-3000:]
    stopped = int(stderr.split(said)[1].split(":")[0])
    assert 2 < stopped < total and checkpoint.load(work / "checkpoint.pt")["iteration"] == stopped
    return stopped


def resumed(cmd: list[str], stopped: int) -> str:
    """The rerun of ``cmd``: it resumes at ``stopped`` and finishes; its stdout."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0 and "resuming from " in out.stderr, out.stderr[-3000:]
    assert f"at iteration {stopped}\n" in out.stderr.split("resuming from ")[1], out.stderr[-3000:]
    return out.stdout


def wall_clock_free(metrics: Path) -> list[list[str]]:
    """metrics.csv less its wall-clock columns (seconds, per-second rate)."""
    return [row[:4] + row[6:] for row in (line.split(",") for line in metrics.read_text().splitlines())]


PRETRAIN = pretrain_config(iterations=6, checkpoint_every=2, workers=WORKERS)


def pretraining_job(folder: Path, pairs: list[str]) -> list[str]:
    """The command of a pretraining run (``python -m pico.learn.launch``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pairs.txt").write_text("\n".join(pairs))
    (folder / "config.json").write_text(json.dumps(PRETRAIN))
    args = ["pairs.txt", "config.json", "model.pt", "metrics.csv", "work", "pairs.txt"]  # held out: the same pairs
    return [sys.executable, "-m", "pico.learn.launch", *(str(folder / name) for name in args)]


def run_job(cmd: list[str]) -> str:
    """``cmd`` run to its end, in the environment of the signalled runs (one thread: the same
    sums in the same order); its stdout."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


@pytest.fixture(scope="module")
def whole_pretraining(pair_files, tmp_path_factory):  # noqa: F811
    """The uninterrupted run."""
    folder = tmp_path_factory.mktemp("whole")
    run_job(pretraining_job(folder, pair_files))
    return folder


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=lambda sig: sig.name)
def test_pretraining_signalled_with_its_workers_resumes_to_the_uninterrupted_model(
    pair_files,  # noqa: F811
    whole_pretraining,
    tmp_path,
    sig,
):
    cmd = pretraining_job(tmp_path, pair_files)
    status, stderr = preempted(cmd, tmp_path / "work/checkpoint.pt", sig)
    stopped = assert_stopped_cleanly(status, stderr, sig, tmp_path / "work", PRETRAIN["pretrain"]["iterations"])
    assert not (tmp_path / "model.pt").exists()
    resumed(cmd, stopped)
    assert (tmp_path / "model.pt").read_bytes() == (whole_pretraining / "model.pt").read_bytes()
    assert wall_clock_free(tmp_path / "metrics.csv") == wall_clock_free(whole_pretraining / "metrics.csv")


def test_the_stand_in_encoder_signalled_with_its_workers_resumes_to_the_uninterrupted_one(
    frame_dirs,  # noqa: F811
    tmp_path,
):
    cfg = encoder_config(iterations=6, checkpoint_every=2, workers=WORKERS)
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    job = [sys.executable, "-c", ENCODER_JOB, json.dumps(frame_dirs), str(tmp_path / "config.json")]
    run_job([*job, str(whole)])
    status, stderr = preempted([*job, str(cut)], cut / "work/checkpoint.pt", signal.SIGUSR1)
    stopped = assert_stopped_cleanly(status, stderr, signal.SIGUSR1, cut / "work", 6)
    resumed([*job, str(cut)], stopped)
    assert (cut / "moco_v2.pth").read_bytes() == (whole / "moco_v2.pth").read_bytes()
    assert wall_clock_free(cut / "metrics.csv") == wall_clock_free(whole / "metrics.csv")


def test_a_linear_probe_signalled_with_its_workers_resumes_to_the_uninterrupted_probe(
    demo_coco,  # noqa: F811
    tmp_path,
):
    """The MoCo-v2 baseline's probe (``registry.evaluate``, as the probe job runs it)."""
    settings = {**PROBE, "iterations": 6, "milestones": [4], "workers": WORKERS}
    job = [sys.executable, "-c", PROBE_JOB, str(demo_coco), json.dumps(settings)]
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    scores = run_job([*job, str(whole)])
    status, stderr = preempted([*job, str(cut)], cut / "checkpoint.pt", signal.SIGTERM)
    stopped = assert_stopped_cleanly(status, stderr, signal.SIGTERM, cut, 6)
    assert resumed([*job, str(cut)], stopped) == scores
    a, b = (checkpoint.load(folder / "checkpoint.pt")["state"] for folder in (whole, cut))
    assert all(torch.equal(a["classifier"][k], b["classifier"][k]) for k in a["classifier"])


# ---------------------------------------------------------------------------------------------
# a damaged file: the command its error names rebuilds it (Snakemake 9 rebuilds neither a
# deleted intermediate whose products exist nor a file deleted from a directory output)

TINY_WORKFLOW = """
import numpy as np
import pyarrow as pa
from pico.store import files, framestore

rule all:
    input: "results/used.txt"

rule table:
    output: "results/table.parquet"
    run: files.write_parquet(pa.table({"x": [1, 2, 3]}), output[0])

rule frames:
    output: directory("results/frames")
    run: framestore.write(f"{output[0]}/a.frames.zip", np.zeros((2, 8, 8, 3), np.uint8), {"video": "a", "fps": 30.0})

rule use:
    input: "results/table.parquet", "results/frames"
    output: "results/used.txt"
    shell: "touch {output}"
"""


def tiny_snakemake(workdir: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", *args, "--cores", "1", "--directory", str(workdir)]
    out = subprocess.run([*cmd, "-s", str(workdir / "Snakefile")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout + out.stderr


def test_the_command_a_damaged_files_error_names_rebuilds_it(tmp_path, monkeypatch):
    (tmp_path / "Snakefile").write_text(TINY_WORKFLOW)
    tiny_snakemake(tmp_path)
    monkeypatch.chdir(tmp_path)  # a job's working directory: paths relative to the workflow's
    schema = pa.schema([("x", pa.int64())])
    damaged = {
        "results/table.parquet": lambda path: files.read_parquet(path, schema),
        "results/frames/a.frames.zip": lambda path: framestore.FrameStore(path).close(),
    }
    for name, read in damaged.items():
        path = tmp_path / name
        times = os.stat(path)
        path.write_bytes(path.read_bytes()[:-100])
        os.utime(path, ns=(times.st_atime_ns, times.st_mtime_ns))  # as a flipped or lost block leaves it
        with pytest.raises(ValueError, match=re.escape(f"{name}: ")) as error:
            read(name)
        hint = str(error.value).split("; rebuild it: rerun your snakemake command with ")[1]
        assert "Nothing to be done" in tiny_snakemake(tmp_path)  # the same command alone rebuilds nothing
        tiny_snakemake(tmp_path, *hint.split(" (")[0].split())
        read(name)
