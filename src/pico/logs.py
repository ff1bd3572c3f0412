"""Logging to a rule's log file, and progress lines for long loops."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def setup(log_file: str | None = None, level: int = logging.INFO, *, threads: int | None = None) -> None:
    """Send pico's log records, and an uncaught exception's traceback, to ``log_file`` (the
    rule's ``log:``) and to stderr. ``threads``: the job's share of the cores (the rule's
    ``threads``), to which torch's and OpenCV's thread pools are limited: both default to every
    core, so two jobs side by side would each run as many threads as there are cores (on 2
    cores a demo pretraining step took 1.0 s beside another job, 0.57 s on one thread)."""
    if threads is not None:
        import cv2
        import torch

        cv2.setNumThreads(threads)
        torch.set_num_threads(threads)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_file, mode="w"))
    logging.basicConfig(level=level, format=FORMAT, handlers=handlers, force=True)
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught


def _log_uncaught(kind, error, traceback) -> None:
    """A job's fatal error, traceback included, goes to its log file too, not only to stderr."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    logging.getLogger("pico").critical("job failed", exc_info=(kind, error, traceback))


class Progress:
    """The progress lines of a loop over ``total`` items, each
    ``desc: done/total (item) detail (elapsed, ETA)``, throttled so that a long loop's log
    stays readable (a paper-scale pretraining's log had 90,000 lines, one per iteration).

    The first item and the last always get a line; any other item gets one only when
    ``seconds`` have passed since the last line and another ``fraction`` of ``total`` is done
    since: by default at most one line every 5 s and about 100 in all. ``start``: the items
    done before this run (a resumed one), which the ETA's rate leaves out. ``clock``: the time
    source, in seconds (a test passes its own). A ``detail`` that costs something to build (a
    value read back from the GPU, say) is passed as a function, called only for a line logged."""

    def __init__(
        self,
        log: logging.Logger,
        desc: str,
        total: int,
        *,
        start: int = 0,
        seconds: float = 5.0,
        fraction: float = 0.01,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log, self.desc, self.total, self.start = log, desc, total, start
        self.seconds, self.items = seconds, fraction * total
        self.clock, self.began = clock, clock()
        self.last: tuple[int, float] | None = None  # the item and the time of the last line

    def due(self, done: int, now: float) -> bool:
        """Whether item ``done`` gets a line at time ``now``."""
        if self.last is None or done >= self.total:
            return True
        return now - self.last[1] >= self.seconds and done - self.last[0] >= self.items

    def update(self, done: int, *, item: object = None, detail: str | Callable[[], str] = "") -> bool:
        """Item ``done`` (1-based) is finished: log its line, naming ``item`` and adding
        ``detail`` (or ``detail()``), when it is due; whether it was logged."""
        now = self.clock()
        if not self.due(done, now):
            return False
        self.last = (done, now)
        elapsed = now - self.began
        eta = elapsed / max(done - self.start, 1) * (self.total - done)
        named = f" ({item})" if item is not None else ""
        detail = detail() if callable(detail) else detail
        detail = f" {detail}" if detail else ""
        self.log.info(
            "%s: %d/%d%s%s (%.1f s elapsed, ETA %.1f s)", self.desc, done, self.total, named, detail, elapsed, eta
        )
        return True


def progress(
    items: Iterable[T],
    total: int,
    desc: str,
    log: logging.Logger,
    *,
    name: Callable[[T], object] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[T]:
    """Yield ``items``; after each, its progress line when due (``Progress``), naming the item
    by ``name(item)`` (the video of a row, say)."""
    lines = Progress(log, desc, total, clock=clock)
    for i, item in enumerate(items, 1):
        yield item
        lines.update(i, item=name(item) if name else None)
