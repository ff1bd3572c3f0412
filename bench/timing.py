"""Shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable


def best_time(repeat: int, run: Callable[[], object]) -> float:
    """The shortest wall-clock time of ``repeat`` calls of ``run()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)
