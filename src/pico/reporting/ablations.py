"""Section 4.3's ablations (Figures 3-5): COCO linear probing of models pretrained over a grid of
Eq. 3's tracking thresholds (gamma, delta) and Section 3.3's frame sampling (anchor or random).

A figure's config (``ablations.figureN``) names a dataset, a method and the grid's axes; every
point is one pretrained model (``results/models/{model}/model.pt``) probed like Table 1's models
(``results/benchmarks/coco_probe/{model}.json``), so a point shared with Table 1 or with another
figure is trained once. The grids' models are planned in ``pico.plan``.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from pico.reporting import plots

#: The paper's captions (Section 4.3).
TITLES = {
    "figure3": "Figure 3: COCO linear probe varying the tracking thresholds gamma and delta (Eq. 3)",
    "figure4": "Figure 4: COCO linear probe with finer-grained variation in delta",
    "figure5": "Figure 5: COCO linear probe with and without anchor sampling",
}
METRICS = ("mIoU", "fIoU")
POINT_KEYS = ("gamma", "delta", "sampling", "dataset", "method", "mIoU", "fIoU", "model")


def table(figure: str, results: list[dict], demo: bool) -> dict:
    """``{"figure", "demo", "points": [...]}`` from the probe results of a figure's models,
    sorted by sampling, gamma, delta; metrics in percent as the probe gives them."""
    title = TITLES[figure] + (" -- DEMO: the synthetic world's benchmark, not COCO" if demo else "")
    points = sorted(
        ({k: r[k] for k in POINT_KEYS} for r in results), key=lambda p: (p["sampling"], p["gamma"], p["delta"])
    )
    return {"figure": title, "demo": demo, "points": points}


def plot(data: dict, path: str | Path) -> None:
    """mIoU and fIoU against delta, one line per (sampling, gamma) series; PNG, atomically."""
    plt = plots.pyplot()
    series: dict[tuple[str, float], list[dict]] = {}
    for p in data["points"]:
        series.setdefault((p["sampling"], p["gamma"]), []).append(p)
    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.5 * len(METRICS), 3.6), layout="constrained")
    for ax, metric in zip(axes, METRICS):
        for (sampling, gamma), points in series.items():
            ax.plot(
                [p["delta"] for p in points],
                [p[metric] for p in points],
                marker="o",
                label=f"{sampling}, gamma = {gamma:g}",
            )
        ax.set_xlabel("delta (Eq. 3)")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize="small")
    first = data["points"][0]
    title = textwrap.fill(f"{data['figure']}; {first['method']} pretrained on {first['dataset']}", 90)
    fig.suptitle(title, fontsize="medium")
    plots.save(fig, path)
