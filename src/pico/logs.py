"""Logging to a rule's log file, and progress lines for long loops."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
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


def progress(items: Iterable[T], total: int, desc: str, log: logging.Logger) -> Iterator[T]:
    """Yield ``items`` and log ``desc: i/total`` with rate and ETA after each one."""
    start = time.perf_counter()
    for i, item in enumerate(items, 1):
        yield item
        elapsed = time.perf_counter() - start
        eta = elapsed / i * (total - i)
        log.info("%s: %d/%d (%.1f s elapsed, ETA %.1f s)", desc, i, total, elapsed, eta)
