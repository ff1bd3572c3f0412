"""Checkpoint and resume, the one mechanism of every training loop: pretraining (Section 3.4,
``pico.learn.training.fit``, under DDP too), the stand-in encoder, and the benchmarks' (A.2:
linear probes, Mask R-CNN's heads). Every iteration's batch is a pure function of (seed,
iteration), so a run resumed from the state saved after iteration k goes on exactly as if
never stopped. A checkpoint is taken every ``every`` iterations, after the last one (a job
killed while it evaluates retrains nothing) and when SLURM signals pre-emption or the time
limit (SIGTERM / SIGUSR1); the job then exits for a rerun to resume. SLURM signals every
process of the job, data-loader workers included: they ignore these signals
(``ignoring_preemption``), so that the main process alone stops, after its checkpoint.
"""

from __future__ import annotations

import functools
import logging
import signal
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist

from pico.store import checkpoint
from pico.store.files import damaged

log = logging.getLogger(__name__)

#: SLURM's pre-emption and time-limit warnings.
SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def ignoring_preemption(worker_init: Callable[[int], None] | None = None) -> Callable[[int], None]:
    """A data loader's ``worker_init_fn``: the worker ignores SIGTERM and SIGUSR1, then runs
    ``worker_init`` (if any). SLURM sends them to every process of a job; a worker they ended
    (torch's worker handler of SIGTERM, SIGUSR1's default action) made torch raise a
    RuntimeError in the main process before it could save its checkpoint. The main process
    stops its workers itself as it exits."""
    return functools.partial(_ignore_preemption, worker_init)


def _ignore_preemption(worker_init: Callable[[int], None] | None, worker_id: int) -> None:
    for sig in SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    if worker_init is not None:
        worker_init(worker_id)


class Preemption:
    """Remembers SIGTERM / SIGUSR1 (SLURM's pre-emption and time-limit warnings) while its
    ``with`` block runs; the caller's handlers are back afterwards."""

    def __enter__(self) -> Preemption:
        self.signal = None
        self._previous = {sig: signal.signal(sig, self._note) for sig in SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _note(self, signum, frame) -> None:
        self.signal = signal.Signals(signum).name

    def agreed(self, world: int, device: torch.device) -> str | None:
        """The signal, once any process got one: all DDP processes stop at the same step."""
        if world == 1:
            return self.signal
        flag = torch.tensor([self.signal is not None], dtype=torch.int32, device=device)  # NCCL: on the GPU
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return (self.signal or "SIGTERM") if flag.item() else None


class Resumable:
    """Checkpoints at ``path`` (None: none) every ``every`` iterations; a checkpoint written
    with another ``fingerprint`` (other settings, model or data) is ignored. Under DDP
    (``world`` > 1) every process restores, rank 0 alone saves, and all stop together."""

    def __init__(
        self,
        path: str | Path | None = None,
        fingerprint: str = "",
        every: int = 1,
        *,
        rank: int = 0,
        world: int = 1,
        device: torch.device = torch.device("cpu"),
    ):
        self.path, self.fingerprint, self.every, self.state = path and Path(path), fingerprint, every, {}
        self.rank, self.world, self.device = rank, world, device

    def _restore(self) -> int:
        if self.path is None or not self.path.exists():
            return 0
        saved = checkpoint.load(self.path, map_location=self.device, progress=True)
        if saved.get("fingerprint") != self.fingerprint:
            log.warning("%s was written with other settings, model or data; starting over", self.path)
            return 0
        for name, obj in self.state.items():
            try:
                obj.load_state_dict(saved["state"][name])
            except (KeyError, RuntimeError, ValueError) as e:  # a model of another shape, an older checkpoint
                raise damaged(self.path, f"checkpoint does not fit this {name}: {e!r}", progress=True) from None
        log.info("resuming from %s at iteration %d", self.path, saved["iteration"])
        return saved["iteration"]

    def _save(self, iteration: int) -> None:
        if self.rank == 0:
            self._write(iteration)
        if self.world > 1:
            dist.barrier()  # no process runs ahead of a checkpoint being written

    def _write(self, iteration: int) -> None:
        state = {
            "state": {name: obj.state_dict() for name, obj in self.state.items()},
            "iteration": iteration,
            "fingerprint": self.fingerprint,
        }
        checkpoint.save(state, self.path)

    def iterations(self, total: int, **state) -> Steps:
        """The iterations still to run of a training run whose ``state`` (objects with
        ``state_dict`` / ``load_state_dict``: modules, optimizers) is restored now and
        checkpointed as the loop goes; the body of the loop is one training step."""
        self.state = state
        return Steps(self, self._restore(), total)


class Steps:
    """Iterations ``start`` .. ``total - 1``; after each, a checkpoint when due and a clean exit
    on pre-emption. The signal handlers are the caller's again when the loop ends."""

    def __init__(self, owner: Resumable, start: int, total: int):
        self.owner, self.start, self.total = owner, start, total

    def __iter__(self):
        owner = self.owner
        with Preemption() as preempt:
            for i in range(self.start, self.total):
                yield i
                done = i + 1
                stop = preempt.agreed(owner.world, owner.device)
                if owner.path is not None and (done % owner.every == 0 or done == self.total or stop):
                    owner._save(done)  # also after the last step: a retry goes straight to evaluation
                if stop and done < self.total:
                    log.warning("%s at iteration %d: checkpoint saved, exiting for a rerun to resume", stop, done)
                    raise SystemExit(f"pre-empted by {stop} at iteration {done}: checkpoint {owner.path}")
