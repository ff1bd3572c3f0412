"""track_quality's figure (docs/tapvid.md): Average Jaccard and occlusion accuracy against Eq. 3's
delta, a panel per flow backend, gamma as series: the paper's Figures 3-4 in track terms."""

from __future__ import annotations

import textwrap
from pathlib import Path

from pico.reporting import plots

#: The figure's metrics: ``results/track_quality.json``'s row keys and their axis labels.
METRICS = {"AJ": "Average Jaccard", "OA": "occlusion accuracy"}


def plot(table: dict, path: str | Path) -> None:
    """AJ and OA (rows of panels) against delta, a column per backend; a line per dataset, query
    mode, gamma and motion-boundary setting; PNG, atomically."""
    plt = plots.pyplot()
    backends = list(dict.fromkeys(row["backend"] for row in table["rows"]))
    fig, axes = plt.subplots(
        len(METRICS),
        len(backends),
        figsize=(4.5 * len(backends), 3.2 * len(METRICS) + 0.6),
        squeeze=False,
        layout="constrained",
    )
    for column, backend in enumerate(backends):
        series: dict[tuple, list[dict]] = {}
        for row in table["rows"]:
            if row["backend"] == backend:
                key = (row["dataset"], row["query_mode"], row["gamma"], row["motion_boundary"])
                series.setdefault(key, []).append(row)
        for ax, (metric, label) in zip(axes[:, column], METRICS.items()):
            for (dataset, mode, gamma, boundary), rows in series.items():
                rows = sorted(rows, key=lambda r: r["delta"])
                ax.plot(
                    [r["delta"] for r in rows],
                    [r[metric] for r in rows],
                    marker="o",
                    label=f"{dataset}, {mode}, gamma = {gamma:g}" + (", +MB" if boundary else ""),
                )
            ax.set_title(backend, fontsize="medium")
            ax.set_xlabel("delta (Eq. 3, px squared)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0, -1].legend(fontsize="small")
    fig.suptitle(textwrap.fill(table["benchmark"], 50 * len(backends)), fontsize="medium")
    plots.save(fig, path)
