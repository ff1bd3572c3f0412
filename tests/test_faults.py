"""Faults: kill -9 of the workflow in every stage then a rerun, truncated and corrupted
intermediates, a full disk, and bad inputs that still get their status (issue 7).

``pytest -s`` prints what each fault did (the README's table is made from it)."""

import base64
import hashlib
import itertools
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pico.data import flow, pairs, tracks
from pico.evaluation import probe
from pico.learn import pretrain
from pico.store import checkpoint, flowstore, framestore, manifest
from pico.store.files import write_parquet
from picotest import run_snakemake, snakemake_command

#: The stages (workflow/scripts/{stage}.py) that the interrupted run must have killed once each.
STAGES = (
    "download",
    "detect_shots",
    "extract_frames",
    "estimate_flow",
    "raw_tracks",
    "draw_pairs",  # rule cut_pairs: Table 1's cut and pair sets
    "pretrain",
    "probe",
    "probe_table",
)
#: The interrupted run's target: Table 1, through every stage (the demo's ablation grid and
#: other benchmarks rerun the same rules on other settings, at several times the cost).
TARGET = "coco_probe"
JOB = re.compile(r"\.snakemake/scripts/tmp[^/.]+\.(\w+)\.py")
MODEL = "results/models/pico/demo/anchor/g0_d4"


# ---------------------------------------------------------------------------------------------
# kill -9 in every stage, then a rerun: the outputs equal the uninterrupted run's


def job_processes(workdir) -> dict[int, str]:
    """The job processes running in ``workdir``: pid -> stage (their script's command line)."""
    found = {}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if str(workdir) in cmdline and (m := JOB.search(cmdline)):
            found[int(pid)] = m[1]
    return found


def running_stages(workdir) -> set[str]:
    return set(job_processes(workdir).values())


def freeze(pids) -> set[int]:
    """SIGSTOP each of ``pids``; those that are stopped, i.e. were still alive (a stopped job
    cannot finish, so what is observed of it holds until the kill)."""
    frozen = set()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGSTOP)
            while (state := Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) not in "TtZX":
                pass  # the stop is delivered asynchronously
        except (OSError, IndexError):
            continue
        if state in "Tt":
            frozen.add(pid)
    return frozen


def thaw(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
        except OSError:
            pass


def partial_files(workdir) -> list[str]:
    """Outputs being written right now (pico.store.files.atomic_path's temporary names)."""
    return sorted(str(p.relative_to(workdir)) for p in (workdir / "results").rglob(".tmp-*"))


def ready_to_kill(stage: str, workdir) -> bool:
    """Whether a job of ``stage``, frozen alive, is a kill worth making: any job is, at any
    point of its life (its outputs are marked incomplete and not yet there); pretraining only
    once it has a checkpoint (the rerun must resume from it)."""
    return stage != "pretrain" or any((workdir / "results/models").glob("*/*/*/*/work/checkpoint.pt"))


def incomplete_outputs(workdir) -> list[str]:
    """Outputs that exist and that Snakemake marked incomplete (a job started, never finished):
    its records in .snakemake/incomplete/, named by the url-safe base64 of the output's path
    (split into '@'-prefixed path parts when longer than a file name may be)."""
    root = workdir / ".snakemake/incomplete"
    marked = []
    for record in root.rglob("*") if root.is_dir() else ():
        if record.is_file() and record.name != "migration_underway":
            key = "".join(part.removeprefix("@") for part in record.relative_to(root).parts)
            marked.append(base64.urlsafe_b64decode(key).decode())
    return sorted(p for p in marked if (workdir / p).exists())


def assert_whole(workdir) -> None:
    """Every file under its final name is complete (atomic writes), whatever was killed."""
    for path in (workdir / "results").rglob("*"):
        if path.is_dir() or path.name.startswith(".tmp-"):
            continue
        if path.suffix == ".parquet":
            pq.read_table(path, page_checksum_verification=True)
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as archive:
                assert archive.testzip() is None, path
        elif path.suffix == ".pt":
            checkpoint.load(path)
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix in (".png", ".jpg"):
            assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED) is not None, path


def kill_group(proc: subprocess.Popen, workdir) -> None:
    """SIGKILL to Snakemake's whole process group, jobs included; none may survive it."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    for _ in range(100):
        if not running_stages(workdir):
            return
        time.sleep(0.05)
    raise AssertionError(f"jobs survived the kill: {running_stages(workdir)}")


def interrupted_run(workdir, log) -> list[dict]:
    """Run the demo to TARGET, killing it (kill -9, process group) in the middle of a job of
    each of STAGES in turn (a stage also counts when a job of it was killed with another), each
    time then ``--unlock`` and a rerun with ``--rerun-incomplete``. Kills are chosen on observed
    state, not on a clock: a job is frozen (SIGSTOP) when it is seen, and killed if it is ready
    (``ready_to_kill``); at the kill every live job is frozen first, so the stages reported
    killed are exactly those with a job alive at the kill. After every kill, a dry run without
    ``--rerun-incomplete`` refuses to go on exactly when an output that Snakemake marked
    incomplete exists (outputs are written atomically, so often none does), and plans the rest
    of the run otherwise."""
    cmd, env = snakemake_command(workdir, TARGET, "--rerun-incomplete")
    kills, seen = [], set()
    while True:
        leftovers = partial_files(workdir)
        with open(log, "a") as out:
            proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        victim = None
        while victim is None and proc.poll() is None:
            jobs = {
                pid: stage for pid, stage in job_processes(workdir).items() if stage in STAGES and stage not in seen
            }
            frozen = freeze(jobs)
            victim = next((jobs[pid] for pid in sorted(frozen) if ready_to_kill(jobs[pid], workdir)), None)
            if victim is None:
                thaw(frozen)
                time.sleep(0.03)
        if victim is None:
            assert proc.returncode == 0, log.read_text()[-5000:]
            return kills
        alive = job_processes(workdir)
        frozen |= freeze(set(alive) - frozen)  # every other job stops where it is, too
        middle = sorted({stage for pid, stage in alive.items() if pid in frozen and stage in STAGES})
        writing = sorted(set(partial_files(workdir)) - set(leftovers))
        kill_group(proc, workdir)
        seen |= set(middle)
        assert_whole(workdir)
        run_snakemake(workdir, "--unlock")
        marked = incomplete_outputs(workdir)
        planned = run_snakemake(workdir, TARGET, "-n", check=False)
        said = planned.stdout + planned.stderr
        if marked:
            assert planned.returncode != 0 and "incomplete" in said, (marked, said[-2000:])
        else:
            assert planned.returncode == 0, said[-2000:]
        kills.append({"stage": victim, "middle": middle, "writing": writing, "incomplete": marked})


def canonical(path) -> bytes:
    """A file's bytes, less what legitimately differs between two runs: wall-clock fields
    (``seconds`` in benchmark results, ``seconds``/``pairs_per_s`` in metrics.csv) and the
    resume fingerprint in checkpoint.pt (pretraining's holds the pair files' modification times)
    and the wall-clock columns of the metrics rows a checkpoint holds."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if isinstance(data, dict):
            data.pop("seconds", None)
        return json.dumps(data, sort_keys=True).encode()
    if path.name == "metrics.csv":
        return "\n".join(",".join(line.split(",")[:4]) for line in path.read_text().splitlines()).encode()
    if path.name == "checkpoint.pt":
        state = checkpoint.load(path)
        state.pop("fingerprint", None)
        if "metrics" in state["state"]:  # seconds and throughput are columns 4 and 5 of each row
            state["state"]["metrics"]["rows"] = [row[:4] + row[6:] for row in state["state"]["metrics"]["rows"]]
        return tensors_bytes(state)
    return path.read_bytes()


def tensors_bytes(obj) -> bytes:
    if isinstance(obj, torch.Tensor):
        return str((obj.dtype, tuple(obj.shape))).encode() + obj.numpy().tobytes()
    if isinstance(obj, dict):
        return b"".join(repr(k).encode() + tensors_bytes(v) for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0])))
    if isinstance(obj, (list, tuple)):
        return b"".join(tensors_bytes(v) for v in obj)
    return repr(obj).encode()


def digest(path) -> str:
    return hashlib.sha256(canonical(path)).hexdigest()


def digests(workdir, under: str = "results") -> dict[str, str]:
    """sha256 of every output under ``under`` (``canonical``); TensorBoard's event files
    (wall-clock times in every record) and temporary files left by kill -9 (never read) are
    not outputs."""
    return {
        str(p.relative_to(workdir)): digest(p)
        for p in sorted((workdir / under).rglob("*"))
        if p.is_file() and not p.name.startswith(".tmp-") and "tensorboard" not in p.parts
    }


def test_kill_9_in_every_stage_then_rerun_gives_the_uninterrupted_outputs(demo, tmp_path):
    workdir = tmp_path / "killed"
    shutil.copytree(demo / "config", workdir / "config")
    kills = interrupted_run(workdir, tmp_path / "snakemake.log")
    for kill in kills:
        print(
            f"kill -9 in {kill['stage']}; in the middle: {kill['middle']}; half-written: "
            f"{kill['writing'] or 'none'}; marked incomplete and present: {kill['incomplete'] or 'none'}"
        )
    leftovers = partial_files(workdir)
    print(f"{len(kills)} kills; temporary files left behind (never read): {leftovers}")
    assert set(STAGES) <= {stage for kill in kills for stage in kill["middle"]}, kills
    assert any("resuming from" in log.read_text() for log in workdir.glob("logs/pretrain/**/*.log"))
    got = digests(workdir)
    assert f"results/{TARGET}.json" in got
    assert [k for k in got if not (demo / k).is_file() or digest(demo / k) != got[k]] == []  # the demo has more
    assert "Nothing to be done" in run_snakemake(workdir, TARGET, "-n").stdout


# ---------------------------------------------------------------------------------------------
# truncated or corrupted intermediates: an error naming the file when read, never data


def read_pair_frames(path):
    return pairs.read(str(path).removesuffix(".frames.parquet") + ".parquet")


#: name: (file of the demo, the reader its stage uses, files it reads beside it)
INTERMEDIATES = {
    "frames": (
        "results/demo/frames/00000/synth0000.frames.zip",
        lambda p: meta_and(framestore.FrameStore(p), "all"),
        (),
    ),
    "flow": ("results/demo/flow/00000/synth0000.flow.zip", lambda p: meta_and(flowstore.FlowStore(p), "read"), ()),
    "flow table": ("results/demo/flow/00000.parquet", manifest.read, ()),
    "raw tracks": ("results/demo/tracks/raw/00000.parquet", tracks.read, ()),
    "cut tracks": ("results/demo/tracks/g0_d4/00000.parquet", tracks.read, ()),
    "pairs": ("results/demo/pairs/pico/anchor/g0_d4/00000.parquet", pairs.read, ("00000.frames.parquet",)),
    "pair frames": ("results/demo/pairs/pico/anchor/g0_d4/00000.frames.parquet", read_pair_frames, ("00000.parquet",)),
    "checkpoint": (f"{MODEL}/work/checkpoint.pt", checkpoint.load, ()),
    "model": (f"{MODEL}/model.pt", probe.pretrained_features, ()),
}
DAMAGE = {
    "empty": lambda data: b"",
    "truncated to half": lambda data: data[: len(data) // 2],
    "last 100 bytes cut": lambda data: data[:-100],  # the ZIP central directory, Parquet footer, seal
    "a 4 KiB block zeroed": lambda data: zero_block(data, len(data) // 2),  # as a crash can leave it
}


def zero_block(data: bytes, offset: int, size: int = 4096) -> bytes:
    start = offset // size * size
    return data[:start] + bytes(len(data[start : start + size])) + data[start + size :]


@pytest.mark.parametrize("damage", DAMAGE)
@pytest.mark.parametrize("kind", INTERMEDIATES)
def test_a_damaged_intermediate_is_an_error_naming_the_file(demo, tmp_path, kind, damage):
    name, read, beside = INTERMEDIATES[kind]
    source = demo / name
    for sibling in beside:
        shutil.copy(source.with_name(sibling), tmp_path / sibling)
    path = tmp_path / source.name
    path.write_bytes(DAMAGE[damage](source.read_bytes()))
    with pytest.raises(ValueError, match=re.escape(str(path))) as error:
        read(path)
    print(f"{kind}, {damage}: {str(error.value)[:160]}")


def test_a_parquet_file_with_other_columns_is_refused_naming_them(tmp_path):
    table = pa.table({"video": ["v"], "track": pa.array([1], pa.int64()), "t": pa.array([0], pa.int32())})
    write_parquet(table, tmp_path / "tracks.parquet")
    with pytest.raises(
        ValueError, match=r"tracks\.parquet: unexpected columns: track \(int64, expected int32\), x \(missing"
    ):
        tracks.read(tmp_path / "tracks.parquet")


def flips(path, read) -> tuple[int, int]:
    """Flip each bit of ``path`` in turn: (errors naming it, reads that still gave the
    original values); any other outcome fails."""
    data, want = path.read_bytes(), read(path)
    errors = same = 0
    fd = os.open(path, os.O_WRONLY)  # flipped in place: reopening for each flip is slow
    try:
        for i, bit in itertools.product(range(len(data)), range(8)):
            os.pwrite(fd, bytes([data[i] ^ (1 << bit)]), i)
            try:
                got = read(path)
            except ValueError as e:
                assert str(path) in str(e)
                errors += 1
            else:
                assert same_values(got, want), (
                    f"bit {bit} of byte {i} of {path.name} flipped: read without an error, and wrong"
                )
                same += 1
            os.pwrite(fd, data[i : i + 1], i)
    finally:
        os.close(fd)
    return errors, same


def same_values(a, b) -> bool:
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    if isinstance(a, (np.ndarray, torch.Tensor)):
        return bool((a == b).all())
    if isinstance(a, pa.Table):
        return a.equals(b)
    return a == b


def meta_and(store, method: str):
    """A store's meta.json and everything it holds, decoded."""
    with store:
        return store.meta, getattr(store, method)()


def test_every_single_bit_flip_is_detected_or_harmless(tmp_path):
    """Exhaustively, on small files of each format: a frame store, a flow store, a tracks
    table and a checkpoint."""
    rng = np.random.default_rng(0)
    framestore.write(
        tmp_path / "a.frames.zip", rng.integers(0, 255, (2, 8, 8, 3), np.uint8), {"video": "a", "fps": 30.0}
    )
    fields = rng.normal(0, 2, (2, 2, 2, 8, 8)).astype(np.float32)
    flowstore.write(tmp_path / "a.flow.zip", *fields, {"video": "a"}, scheme="frame_range", bound=20, quality=90)
    rows = {
        "track": np.repeat(np.arange(50, dtype=np.int32), 2),
        "t": np.tile(np.arange(2, dtype=np.int32), 50),
        "x": rng.uniform(0, 9, 100).astype(np.float32),
        "y": rng.uniform(0, 9, 100).astype(np.float32),
        "fb_sq": rng.uniform(0, 1, 100).astype(np.float16),
        "mag_sq": rng.uniform(0, 1, 100).astype(np.float16),
        "end": np.tile(np.array([0, 3], np.int8), 50),
        "boundary": rng.uniform(0, 1, 100).astype(np.float16),
    }
    tracks.write(tracks.table("a", rows), tmp_path / "a.parquet")
    checkpoint.save({"w": torch.randn(64), "iteration": 3}, tmp_path / "a.pt")
    for name, read in (
        ("a.frames.zip", lambda p: meta_and(framestore.FrameStore(p), "all")),
        ("a.flow.zip", lambda p: meta_and(flowstore.FlowStore(p), "read")),
        ("a.parquet", tracks.read),
        ("a.pt", checkpoint.load),
    ):
        errors, same = flips(tmp_path / name, read)
        print(f"{name}: {errors + same} single-bit flips, {errors} errors naming the file, {same} harmless")
        assert errors  # and no flip gave wrong values (flips)


def test_a_plain_torch_load_still_opens_a_sealed_file(tmp_path):
    checkpoint.save({"w": torch.arange(3)}, tmp_path / "m.pt")
    assert torch.equal(torch.load(tmp_path / "m.pt", weights_only=True)["w"], torch.arange(3))
    torch.save({"w": torch.arange(3)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="plain.pt: no pico checksum"):
        checkpoint.load(tmp_path / "plain.pt")


# ---------------------------------------------------------------------------------------------
# a full disk: the job fails clearly, nothing half-written remains, earlier outputs intact


@pytest.fixture
def demo_copy(demo, tmp_path):
    """The finished demo's dataset outputs (up to the pairs) and Snakemake's metadata in a
    folder of its own (not the models and benchmarks: a GB)."""
    copy = tmp_path / "demo"
    for folder in ("config", ".snakemake", "results/demo"):
        shutil.copytree(demo / folder, copy / folder, ignore=shutil.ignore_patterns("locks"))
    return copy


def file_size_limit(limit: int):
    """A ``preexec_fn``: RLIMIT_FSIZE for Snakemake and its jobs (writes beyond it fail, EFBIG)."""
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def assert_flow_failed_cleanly(workdir, out, before: dict, message: str) -> None:
    """The flow job failed saying why and where; it left no output (Snakemake removed its
    outputs, pico.store.files.atomic_path its half-written file), only the snippets it finished
    in its shard's folder for a rerun (``flow.partial_dir``), and changed nothing else."""
    text = out.stdout + out.stderr
    assert out.returncode != 0 and message in text, text[-3000:]
    written = r"while writing results/demo/flow/0000\d\.partial/synth\d{4}\.flow\.zip \(left unchanged"
    assert re.search(written, text), text[-3000:]
    assert partial_files(workdir) == []
    after = {k: v for k, v in digests(workdir, "results/demo").items() if ".partial/" not in k}
    assert after.items() <= before.items()  # nothing new but the kept snippets, nothing changed
    # only the failed jobs' outputs are gone: flow fields and tables, and their shards' health summaries
    gone = before.keys() - after.keys()
    assert gone and all(k.startswith(("results/demo/flow/", "results/demo/health/flow/")) for k in gone), sorted(gone)
    print(f"full disk in estimate_flow: {message}; {len(gone)} flow outputs gone, the rest intact")


def test_a_file_size_limit_fails_the_flow_job_clearly_and_a_rerun_recovers(demo, demo_copy):
    before = digests(demo_copy, "results/demo")
    smallest = min(p.stat().st_size for p in (demo_copy / "results/demo/flow").rglob("*.flow.zip"))
    out = run_snakemake(
        demo_copy, "flow", "--forcerun", "estimate_flow", check=False, preexec_fn=file_size_limit(smallest // 2)
    )
    assert_flow_failed_cleanly(demo_copy, out, before, "File too large")
    run_snakemake(demo_copy, "flow")
    assert digests(demo_copy, "results/demo") == digests(demo, "results/demo")


def test_a_full_tmpfs_fails_the_flow_job_clearly(demo_copy):
    """A real ENOSPC: a small tmpfs mounted over the flow folder (needs root, as in CI)."""
    before = digests(demo_copy, "results/demo")
    largest = max(p.stat().st_size for p in (demo_copy / "results/demo/flow").rglob("*.flow.zip"))
    shutil.rmtree(demo_copy / "results/demo/flow")
    mount = demo_copy / "results/demo/flow"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={largest * 3 // 2}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        out = run_snakemake(demo_copy, "flow", check=False)
        assert_flow_failed_cleanly(demo_copy, out, before, "No space left on device")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


# ---------------------------------------------------------------------------------------------
# bad inputs keep their statuses (the others are in test_download, test_workflow, test_config)


def test_a_snippet_with_non_finite_flow_is_flow_failed_and_the_shard_finishes(demo, tmp_path, monkeypatch):
    rows = [{**r, "frames": str(demo / r["frames"])} for r in manifest.read(demo / "results/demo/videos/00000.parquet")]
    dis, calls = flow.estimator({"backend": "dis", "dis_preset": "ultrafast", "dis_refine": 0}), []

    def overflowing(frames):  # the first snippet's flow as an fp16 overflow would leave it
        fwd, bwd = dis(frames)
        if not calls:
            fwd[3, 0, 5, 5] = np.inf
        calls.append(len(frames))
        return fwd, bwd

    monkeypatch.setattr(flow, "estimator", lambda cfg: overflowing)
    cfg = {"backend": "dis", "dis_preset": "ultrafast", "dis_refine": 0}
    cfg["codec"] = {"scheme": "frame_range", "bound": 20, "quality": 90}
    out = flow.run_shard(rows, cfg, tmp_path / "flow")
    assert [r["status"] for r in out] == ["flow_failed", "ok", "ok", "ok"]
    assert "NaN or infinite" in out[0]["reason"] and out[0]["flow"] is None
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == [f"synth000{i}.flow.zip" for i in (1, 2, 3)]


def test_the_probe_rebuilds_the_encoder_pretraining_used(demo):
    """The demo's encoder is random (no MoCo checkpoint) and not stored in model.pt: the probe
    must draw the same one, not another (a bug the interrupted run's hashes found)."""
    path = demo / MODEL / "model.pt"
    trained = pretrain.build(checkpoint.load(path)["config"]).query["net"].state_dict()
    probed = probe.pretrained_features(path).state_dict()
    encoder = [k for k in probed if k.startswith("backbone.body.")]
    assert encoder and all(torch.equal(trained[k], probed[k]) for k in encoder)


def test_a_jobs_fatal_error_reaches_its_log_file(tmp_path):
    """An uncaught exception in a rule's script lands, with its traceback, in the rule's log."""
    log = tmp_path / "logs/job.log"
    code = f"from pico import logs; logs.setup({str(log)!r}); raise ValueError('results/x.parquet: damaged')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 1 and "ValueError: results/x.parquet: damaged" in out.stderr
    text = log.read_text()
    assert (
        "CRITICAL pico: job failed" in text and "Traceback" in text and "ValueError: results/x.parquet: damaged" in text
    )


def test_a_job_runs_torch_and_opencv_on_its_share_of_the_cores(tmp_path):
    """Two jobs side by side must not each run a thread per core (``logs.setup(threads=)``)."""
    code = (
        "import cv2, torch; from pico import logs; logs.setup(None, threads=1); "
        "print(torch.get_num_threads(), cv2.getNumThreads())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )
    assert out.stdout.split() == ["1", "1"]
