"""Plots for the report: matplotlib on the Agg backend, PNGs written atomically, the same data
giving the same bytes. matplotlib is imported on first use (``pyplot``), so that the jobs that
only tabulate, importing modules that import this one, never load it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pico.store.files import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: str | Path) -> None:
    """A figure -> PNG atomically, without the creation-software stamp."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)


def histograms(counts: dict[str, np.ndarray], xlabel: str, title: str, path: str | Path, columns: int = 4) -> None:
    """Small multiples, one panel per series: ``counts[name][k]`` = how many items have value k
    (a bincount), drawn as bars with the mean and the item count in the panel's title; PNG."""
    plt = pyplot()
    rows = -(-max(1, len(counts)) // columns)
    cols = min(columns, max(1, len(counts)))
    fig, axes = plt.subplots(
        rows, cols, figsize=(3.2 * cols, 2.4 * rows + 0.6), squeeze=False, sharex=True, layout="constrained"
    )
    for ax, (name, count) in zip(axes.flat, counts.items()):
        values = np.arange(len(count))
        total = int(count.sum())
        mean = float((values * count).sum() / total) if total else float("nan")
        ax.bar(values, count, width=1.0, color="tab:blue")
        ax.set_title(f"{name}\n{total:,} items, mean {mean:.1f}", fontsize="small")
        ax.set_xlabel(xlabel, fontsize="small")
    for ax in axes.flat[len(counts) :]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize="medium")
    save(fig, path)
