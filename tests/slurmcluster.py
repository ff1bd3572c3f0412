"""A real single-node SLURM cluster from Debian's packages, on 127.0.0.1, for the tests.

munged, MariaDB, slurmdbd, slurmctld and slurmd run in the foreground as children of this
process (they die with it), every file (config, key, state, spool, logs, database) in one
folder of its own, on free ports; the only file outside it is the link SYSTEM_CONF, and a
machine with a SLURM of its own is refused. Accounting runs through slurmdbd on MariaDB as on
real clusters: snakemake-executor-plugin-slurm asks ``sacct`` for job states, and with
accounting off every query fails and Snakemake waits forever. There is no systemd here, so the
daemons are started by hand; ``stop`` cancels the cluster's jobs, ends exactly the processes
``start`` spawned and removes the link and the folder.

Run ``python tests/slurmcluster.py`` to keep one up by hand (Ctrl-C stops it).
"""

from __future__ import annotations

import ctypes
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Self

# snakemake-executor-plugin-slurm-jobstep drops SLURM_CONF before its srun inside each job, so
# jobs find the configuration only where a real cluster keeps it: this path, a link to ours
# while the cluster runs.
SYSTEM_CONF = Path("/etc/slurm/slurm.conf")
PACKAGES = ("munge", "mariadb-server", "slurmdbd", "slurmctld", "slurmd", "slurm-client")
COMMANDS = ("munged", "mariadbd", "mariadb-install-db", "slurmdbd", "slurmctld", "slurmd", "sbatch", "sacct")


class Unavailable(RuntimeError):
    """This machine cannot run the cluster (not root, or Debian's packages not installed)."""


def check_machine() -> None:
    """Raise ``Unavailable`` naming what is missing."""
    if os.geteuid() != 0:
        raise Unavailable("the SLURM cluster needs root (its daemons run as root, munge and mysql)")
    missing = [d for d in COMMANDS if shutil.which(d, path=f"{os.environ.get('PATH', '')}:/usr/sbin:/usr/bin") is None]
    if missing:
        raise Unavailable(f"missing {', '.join(missing)}: apt-get install {' '.join(PACKAGES)} (make test does)")
    if SYSTEM_CONF.is_symlink() and "/pico-slurm-" in os.readlink(SYSTEM_CONF) and not controller_alive():
        SYSTEM_CONF.unlink()  # left by a test cluster that was killed before its tear-down
    if SYSTEM_CONF.exists() or SYSTEM_CONF.is_symlink():
        raise Unavailable(
            f"{SYSTEM_CONF} exists: this machine runs another SLURM (or another test cluster), "
            "which the jobs would reach"
        )


def controller_alive() -> bool:
    """Whether the test cluster that ``SYSTEM_CONF`` links to still runs (its slurmctld
    removes its pid file when it stops)."""
    pid_file = Path(os.readlink(SYSTEM_CONF)).parents[1] / "run/slurmctld.pid"
    try:
        os.kill(int(pid_file.read_text()), 0)
    except (OSError, ValueError):
        return False
    return True


def die_with_parent() -> None:
    """In a daemon's child process: SIGTERM when the process that started it dies, so a
    killed test run leaves no daemons behind (prctl PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what: str, ready, timeout: float = 60.0, log: Path | None = None) -> None:
    """Poll ``ready()`` until true; on timeout fail with ``log``'s tail."""
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
            raise RuntimeError(f"{what} not ready after {timeout:.0f} s\n{tail}")
        time.sleep(0.2)


def real_memory_mb() -> int:
    """What slurmd may offer: 95 % of MemTotal (slurmd drains a node that claims more)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 95 // 100 // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


class Cluster:
    """``with Cluster() as c:`` a running cluster; ``c.env`` for its clients (SLURM_CONF)."""

    def __init__(self, partition: str = "debug", cluster_name: str = "pico"):
        self.partition = partition
        self.name = cluster_name
        self.host = socket.gethostname().split(".")[0]
        self.cpus = os.cpu_count() or 1
        self.memory_mb = real_memory_mb()
        self.root: Path | None = None
        self.procs: list[tuple[str, subprocess.Popen]] = []

    # -- set-up -------------------------------------------------------------------------
    def start(self) -> Self:
        check_machine()
        # world-traversable (0755) so munge and mysql reach their own subfolders
        self.root = Path(tempfile.mkdtemp(prefix="pico-slurm-"))
        self.root.chmod(0o755)
        for sub in ("etc", "log", "run", "spool/ctld", "spool/d"):
            (self.root / sub).mkdir(parents=True)
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "etc/slurm.conf")}
        self.env["PATH"] = f"{self.env.get('PATH', '')}:/usr/sbin:/usr/bin"
        try:
            self._munge()
            self._mariadb()
            self._slurmdbd()
            self._slurmctld()
            self._slurmd()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str, cmd: list[str], user: str | None = None) -> None:
        with open(self.root / "log" / f"{name}.out", "ab") as log:
            self.procs.append(
                (
                    name,
                    subprocess.Popen(
                        cmd,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        env=self.env,
                        user=user,
                        start_new_session=True,
                        preexec_fn=die_with_parent,
                    ),
                )
            )  # noqa: PLW1509 (no threads)

    def _alive(self, name: str) -> None:
        for n, p in self.procs:
            if n == name and p.poll() is not None:
                out = (self.root / "log" / f"{name}.out").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {p.returncode}\n{out}")

    def _munge(self) -> None:
        d = self.root / "munge"
        d.mkdir()
        d.chmod(0o711)  # munged: the socket folder must be searchable by every user
        key = d / "munge.key"
        key.write_bytes(secrets.token_bytes(1024))
        key.chmod(0o400)
        uid, gid = pwd.getpwnam("munge")[2:4]
        for path in (d, key):
            os.chown(path, uid, gid)
        self.munge_socket = d / "munge.socket"
        self._spawn(
            "munged",
            [
                "munged",
                "--foreground",
                f"--key-file={key}",
                f"--socket={self.munge_socket}",
                f"--pid-file={d / 'munged.pid'}",
                f"--seed-file={d / 'munged.seed'}",
                f"--log-file={d / 'munged.log'}",
            ],
            user="munge",
        )

        def ready():
            self._alive("munged")
            return self.munge_socket.exists()

        wait_for("munged", ready, log=self.root / "log/munged.out")

    def _mariadb(self) -> None:
        d = self.root / "mysql"
        d.mkdir()
        shutil.chown(d, "mysql", "mysql")
        self.db_socket = d / "mysqld.sock"
        self.db_port = free_port()
        subprocess.run(
            [
                "mariadb-install-db",
                "--no-defaults",
                "--user=mysql",
                f"--datadir={d / 'data'}",
                "--skip-test-db",
                "--auth-root-authentication-method=socket",
            ],
            check=True,
            capture_output=True,
            env=self.env,
        )
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                f"--datadir={d / 'data'}",
                f"--socket={self.db_socket}",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                f"--pid-file={d / 'mysqld.pid'}",
                "--innodb-lock-wait-timeout=900",
            ],  # what slurmdbd asks for
            user="mysql",
        )

        def sql(statement: str) -> subprocess.CompletedProcess:
            return subprocess.run(
                ["mariadb", "--no-defaults", f"--socket={self.db_socket}", "-u", "root", "-e", statement],
                check=False,
                capture_output=True,
                text=True,
                env=self.env,
            )

        def ready():
            self._alive("mariadbd")
            return sql("SELECT 1").returncode == 0

        wait_for("MariaDB", ready, log=self.root / "log/mariadbd.out")
        self.db_password = secrets.token_hex(16)
        out = sql(
            f"CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY '{self.db_password}'; "
            "GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';"
        )
        if out.returncode:
            raise RuntimeError(f"MariaDB user: {out.stderr}")

    def _slurmdbd(self) -> None:
        self.dbd_port = free_port()
        conf = self.root / "etc/slurmdbd.conf"
        conf.write_text(
            "\n".join(
                [
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "DbdHost=localhost",
                    "DbdAddr=127.0.0.1",
                    f"DbdPort={self.dbd_port}",
                    "SlurmUser=root",
                    "StorageType=accounting_storage/mysql",
                    "StorageHost=127.0.0.1",
                    f"StoragePort={self.db_port}",
                    "StorageUser=slurm",
                    f"StoragePass={self.db_password}",
                    "StorageLoc=slurm_acct_db",
                    f"PidFile={self.root / 'run/slurmdbd.pid'}",
                    f"LogFile={self.root / 'log/slurmdbd.log'}",
                    "",
                ]
            )
        )
        conf.chmod(0o600)  # slurmdbd refuses a readable one: it holds the database password
        self._spawn("slurmdbd", ["slurmdbd", "-D"])

        def ready():
            self._alive("slurmdbd")
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.dbd_port)) == 0

        wait_for("slurmdbd", ready, log=self.root / "log/slurmdbd.log")

    def _slurmctld(self) -> None:
        r = self.root
        (r / "etc/slurm.conf").write_text(
            "\n".join(
                [
                    f"ClusterName={self.name}",
                    f"SlurmctldHost={self.host}(127.0.0.1)",
                    f"SlurmctldPort={free_port()}",
                    f"SlurmdPort={free_port()}",
                    "AuthType=auth/munge",
                    f"AuthInfo=socket={self.munge_socket}",
                    "CredType=cred/munge",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "MpiDefault=none",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "SchedulerType=sched/backfill",
                    "ReturnToService=2",
                    "JobAcctGatherType=jobacct_gather/linux",
                    "JobAcctGatherFrequency=5",
                    "AccountingStorageType=accounting_storage/slurmdbd",
                    "AccountingStorageHost=127.0.0.1",
                    f"AccountingStoragePort={self.dbd_port}",
                    "AccountingStoreFlags=job_comment",
                    # the munge socket for slurmdbd connections (AuthInfo covers the others)
                    f"AccountingStoragePass={self.munge_socket}",
                    f"StateSaveLocation={r / 'spool/ctld'}",
                    f"SlurmdSpoolDir={r / 'spool/d'}",
                    f"SlurmctldPidFile={r / 'run/slurmctld.pid'}",
                    f"SlurmdPidFile={r / 'run/slurmd.pid'}",
                    f"SlurmctldLogFile={r / 'log/slurmctld.log'}",
                    f"SlurmdLogFile={r / 'log/slurmd.log'}",
                    f"NodeName={self.host} NodeAddr=127.0.0.1 CPUs={self.cpus} "
                    f"RealMemory={self.memory_mb} State=UNKNOWN",
                    f"PartitionName={self.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )
        SYSTEM_CONF.parent.mkdir(parents=True, exist_ok=True)
        SYSTEM_CONF.symlink_to(r / "etc/slurm.conf")
        self._spawn("slurmctld", ["slurmctld", "-D", "-i"])

        def ready():
            self._alive("slurmctld")
            return self.run("scontrol", "ping", check=False).returncode == 0

        wait_for("slurmctld", ready, log=r / "log/slurmctld.log")

    def _slurmd(self) -> None:
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.host])

        def ready():
            self._alive("slurmd")
            state = self.run("sinfo", "-h", "-N", "-o", "%T", check=False).stdout.strip()
            return state == "idle"

        wait_for("slurmd", ready, log=self.root / "log/slurmd.log")

    # -- use ----------------------------------------------------------------------------
    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        """A SLURM client command against this cluster."""
        out = subprocess.run(cmd, check=False, capture_output=True, text=True, env=self.env)
        if check and out.returncode:
            raise RuntimeError(f"{' '.join(cmd)}: {out.stderr}")
        return out

    def sacct(self, fields: tuple[str, ...] = ("JobID", "JobName", "Comment", "State", "ExitCode")) -> list[dict]:
        """Every job and step in the accounting database (all users, all days), one dict per row."""
        out = self.run("sacct", "-a", "-P", "-n", "--starttime=2000-01-01", f"--format={','.join(fields)}")
        return [dict(zip(fields, line.split("|"))) for line in out.stdout.splitlines() if line]

    def logs(self) -> str:
        """The tails of the daemons' logs, for a failure message."""
        return "\n".join(
            f"== {f.name}\n{f.read_text(errors='replace')[-2000:]}" for f in sorted((self.root / "log").iterdir())
        )

    # -- tear-down ----------------------------------------------------------------------
    def stop(self) -> None:
        if any(n == "slurmctld" and p.poll() is None for n, p in self.procs):
            # every job of this private cluster is ours: end them before their slurmd goes
            deadline = time.monotonic() + 30
            while (
                jobs := self.run("squeue", "-h", "-o", "%i", check=False).stdout.split()
            ) and time.monotonic() < deadline:
                self.run("scancel", *jobs, check=False)
                time.sleep(0.5)
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        if self.root is not None:
            if SYSTEM_CONF.is_symlink() and Path(os.readlink(SYSTEM_CONF)) == self.root / "etc/slurm.conf":
                SYSTEM_CONF.unlink()
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


if __name__ == "__main__":
    with Cluster() as cluster:
        print(f"SLURM cluster up until Ctrl-C: export SLURM_CONF={cluster.env['SLURM_CONF']}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
