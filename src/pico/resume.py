"""Checkpoint and resume for the benchmarks' training loops (A.2: linear probes, Mask R-CNN's
heads), as pretraining does: every iteration's batch is a pure function of (seed, iteration),
so a run resumed from the state saved after iteration k goes on exactly as if never stopped.
A checkpoint is taken every ``every`` iterations and when SLURM signals pre-emption or the
time limit (SIGTERM / SIGUSR1); the job then exits for a rerun to resume.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from pico import checkpoint
from pico.pretrain import Preemption

log = logging.getLogger(__name__)


class Resumable:
    """Checkpoints at ``path`` (None: none) every ``every`` iterations; a checkpoint written
    with another ``fingerprint`` (other settings, model or data) is ignored."""

    def __init__(self, path: str | Path | None = None, fingerprint: str = "", every: int = 1):
        self.path, self.fingerprint, self.every, self.state = path and Path(path), fingerprint, every, {}

    def _restore(self) -> int:
        if self.path is None or not self.path.exists():
            return 0
        saved = checkpoint.load(self.path)
        if saved.get("fingerprint") != self.fingerprint:
            log.warning("%s was written with other settings, model or data; starting over", self.path)
            return 0
        for name, obj in self.state.items():
            obj.load_state_dict(saved["state"][name])
        log.info("resuming from %s at iteration %d", self.path, saved["iteration"])
        return saved["iteration"]

    def _save(self, iteration: int) -> None:
        state = {"state": {name: obj.state_dict() for name, obj in self.state.items()},
                 "iteration": iteration, "fingerprint": self.fingerprint}
        checkpoint.save(state, self.path)

    def iterations(self, total: int, **state):
        """Iterations still to run of a training run whose ``state`` (objects with
        ``state_dict`` / ``load_state_dict``: modules, optimizers) is checkpointed; the body of
        the loop is one training step. The signal handlers are the caller's again at the end."""
        self.state = state
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGUSR1)}
        preempt = Preemption()
        try:
            for i in range(self._restore(), total):
                yield i
                done = i + 1
                if self.path is not None and done < total and (done % self.every == 0 or preempt.signal):
                    self._save(done)
                if preempt.signal and done < total:
                    raise SystemExit(f"pre-empted by {preempt.signal} at iteration {done}: checkpoint {self.path}")
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
