"""Shared by the benchmark scripts: best-of timings, wall clock and CPU, and the load that other
processes put on the machine meanwhile."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def best_time(repeat: int, run: Callable[[], object]) -> float:
    """The shortest wall-clock time of ``repeat`` calls of ``run()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def cpu_time() -> float:
    """CPU seconds used so far by every thread of this process and by the child processes it
    waited for."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(run: Callable[[], object]) -> tuple[object, float, float]:
    """``run()``'s result, its wall seconds and its CPU seconds (``cpu_time``)."""
    start, start_cpu = time.perf_counter(), cpu_time()
    result = run()
    return result, time.perf_counter() - start, cpu_time() - start_cpu


def best_timed(repeat: int, run: Callable[[], object]) -> tuple[object, float, float]:
    """The last result of ``repeat`` calls of ``run()``, and the wall and CPU seconds of the
    fastest call (``timed``)."""
    best = None
    for _ in range(repeat):
        result, wall, cpu = timed(run)
        if best is None or wall < best[0]:
            best = (wall, cpu)
    return result, *best


def cpu_seconds() -> tuple[float, float]:
    """CPU seconds used so far by the whole machine (``/proc/stat``) and by this process with its
    finished children (``cpu_time``); their difference over a run is other processes' load."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return busy / os.sysconf("SC_CLK_TCK"), cpu_time()


def others_share(before: tuple[float, float], after: tuple[float, float], elapsed: float) -> float:
    """The share of the machine's cores that other processes used between two ``cpu_seconds``
    readings ``elapsed`` wall seconds apart (0 at least)."""
    (busy, own), (busy_end, own_end) = before, after
    return max(0.0, (busy_end - busy - (own_end - own)) / (elapsed * os.cpu_count()))
