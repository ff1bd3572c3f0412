"""The mini-reproduction (docs/reproduction.md): Table 1's comparison and Figures 4-5 repeated
over seeds, each number as its mean, standard deviation and every seed's value.

For every seed of ``reproduction.seeds`` each model of Table 1 (PiCO, Static (Video), Static
(Frame)) and each point of the configured figures is pretrained with ``pretrain.seed`` = that
seed and probed on the COCO linear probe (mIoU, fIoU) with the probe seeded by it too; Table
1's models are also scored on the correspondence benchmark (``pck4``). The Snakefile imports
this module: only the standard library is loaded at parse time (pico.reporting.plots when plotting).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from pico.config import grids_outside_config
from pico.reporting import ablations

#: The figures a reproduction can repeat (``reproduction.figure4`` / ``figure5``).
FIGURES = ("figure4", "figure5")
TITLE = "Mini-reproduction: Table 1 (COCO linear probe) and dense correspondence over seeds"
PROBE_METRICS = ("mIoU", "fIoU")


def figures(spec: dict) -> dict[str, list[str]]:
    """{figure: the model of every point} of the figures a ``reproduction`` block names."""
    return {figure: ablations.models(spec[figure]) for figure in FIGURES if figure in spec}


def problems(config: dict) -> list[str]:
    """A reproduction's figures pretrain on a configured dataset, on cuts within the raw tracks'
    bounds (checked as ``ablations`` are)."""
    spec = config["reproduction"]
    return grids_outside_config(config, "reproduction", {figure: spec[figure] for figure in FIGURES if figure in spec})


def across_seeds(values: dict[int, float]) -> dict:
    """``{"mean", "std", "seeds", "values"}`` of one number over seeds: the sample standard
    deviation (n - 1 in the denominator; None for one seed), seeds in ascending order."""
    seeds = sorted(values)
    data = [float(values[s]) for s in seeds]
    return {
        "mean": statistics.fmean(data),
        "std": statistics.stdev(data) if len(data) > 1 else None,
        "seeds": seeds,
        "values": data,
    }


def paired(first: dict, other: dict) -> dict:
    """``across_seeds`` of first - other, seed by seed (two ``across_seeds`` of one metric). A
    seed fixes the random encoder, the decoder's initialisation and the probe's draws for every
    method alike, so the per-seed difference cancels what the methods share."""
    if first["seeds"] != other["seeds"]:
        raise ValueError(f"paired difference over different seeds: {first['seeds']} and {other['seeds']}")
    return across_seeds({s: a - b for s, a, b in zip(first["seeds"], first["values"], other["values"])})


def pck(result: dict, pixels: int = 4) -> float:
    """A correspondence result's share of points within ``pixels`` px over all its pairs: each
    pair's ``pck{pixels}`` weighted by its number of scored points ``n``."""
    pairs = result["pairs"]
    total = sum(p["n"] for p in pairs)
    if not total:
        raise ValueError(f"correspondence result of {result.get('model')}: no scored points")
    return sum(p[f"pck{pixels}"] * p["n"] for p in pairs) / total


def _metric(results: dict[tuple[int, str], dict], model: str, seeds: list[int], read) -> dict:
    """``across_seeds`` of ``read(result)`` for ``model`` over ``seeds``."""
    return across_seeds({seed: read(results[seed, model]) for seed in seeds})


def table(
    *,
    seeds: list[int],
    table_models: list[str],
    figure_models: dict[str, list[str]],
    probes: dict[tuple[int, str], dict],
    correspondences: dict[tuple[int, str], dict],
    figure_specs: dict[str, dict],
    config: dict,
    demo: bool,
) -> dict:
    """``results/reproduction.json``: per Table 1 model (method) mIoU, fIoU and pck4 over seeds;
    the first method's paired difference to each other method (``paired``); per figure point
    mIoU and fIoU over seeds; the seeds and the config. ``probes`` and ``correspondences`` map
    (seed, model name) to the benchmark results."""

    def probe_metrics(model: str) -> dict:
        return {m: _metric(probes, model, seeds, lambda r, m=m: r[m]) for m in PROBE_METRICS}

    methods = [
        {
            "method": model.split("/")[0],
            "model": model,
            **probe_metrics(model),
            "pck4": _metric(correspondences, model, seeds, pck),
        }
        for model in table_models
    ]
    first = methods[0] if methods else None
    differences = [
        {
            "method": first["method"],
            "minus": m["method"],
            **{k: paired(first[k], m[k]) for k in (*PROBE_METRICS, "pck4")},
        }
        for m in methods[1:]
    ]
    figures_out = {}
    for figure, models in figure_models.items():
        points = []
        for model in models:
            row = probes[seeds[0], model]
            points.append(
                {k: row[k] for k in ("method", "dataset", "sampling", "gamma", "delta")}
                | {"model": model, **probe_metrics(model)}
            )
        points.sort(key=lambda p: (p["sampling"], p["gamma"], p["delta"]))
        figures_out[figure] = {"title": ablations.TITLES[figure], "spec": figure_specs[figure], "points": points}
    title = TITLE + (" -- DEMO: the synthetic world's benchmarks, not COCO" if demo else "")
    return {
        "reproduction": title,
        "demo": demo,
        "seeds": sorted(seeds),
        "methods": methods,
        "differences": differences,
        "figures": figures_out,
        "config": config,
    }


def _cell(stat: dict) -> str:
    """mean +/- std (every seed's value)."""
    spread = f" ± {stat['std']:.3g}" if stat["std"] is not None else ""
    return f"{stat['mean']:.4g}{spread} ({', '.join(f'{v:.4g}' for v in stat['values'])})"


def report_rows(data: dict) -> dict:
    """The reproduction as a ``pico.reporting.tables.to_html`` table: Table 1's methods, then every
    figure point; each metric as mean ± std (every seed's value)."""
    rows = [
        {
            "part": "Table 1",
            "method": m["method"],
            "sampling": None,
            "delta": None,
            **{k: _cell(m[k]) for k in (*PROBE_METRICS, "pck4")},
            "model": m["model"],
        }
        for m in data["methods"]
    ]
    rows += [
        {
            "part": "paired difference",
            "method": f"{d['method']} - {d['minus']}",
            "sampling": None,
            "delta": None,
            **{k: _cell(d[k]) for k in (*PROBE_METRICS, "pck4")},
            "model": None,
        }
        for d in data["differences"]
    ]
    rows += [
        {
            "part": figure,
            "method": p["method"],
            "sampling": p["sampling"],
            "delta": p["delta"],
            **{k: _cell(p[k]) for k in PROBE_METRICS},
            "pck4": None,
            "model": p["model"],
        }
        for figure, spec in data["figures"].items()
        for p in spec["points"]
    ]
    seeds = ", ".join(map(str, data["seeds"]))
    return {
        "benchmark": f"{data['reproduction']}; seeds {seeds}; mean ± std (each seed)",
        "demo": data["demo"],
        "rows": rows,
    }


def plot(data: dict, figure: str, path: str | Path) -> None:
    """One figure of the reproduction: mIoU and fIoU against delta, one line per sampling
    through the means over seeds with ± one standard deviation as error bars and every seed's
    value as a dot; PNG, atomically."""
    from pico.reporting import plots  # numpy and pyarrow (pico.store.files): never at parse time

    plt = plots.pyplot()
    spec = data["figures"][figure]
    fig, axes = plt.subplots(1, len(PROBE_METRICS), figsize=(4.5 * len(PROBE_METRICS), 3.6), layout="constrained")
    for ax, metric in zip(axes, PROBE_METRICS):
        for sampling in dict.fromkeys(p["sampling"] for p in spec["points"]):
            points = [p for p in spec["points"] if p["sampling"] == sampling]
            deltas = [p["delta"] for p in points]
            line = ax.errorbar(
                deltas,
                [p[metric]["mean"] for p in points],
                yerr=[p[metric]["std"] or 0.0 for p in points],
                marker="o",
                capsize=3,
                label=sampling,
            )
            for p in points:
                ax.scatter(
                    [p["delta"]] * len(p[metric]["values"]),
                    p[metric]["values"],
                    s=8,
                    alpha=0.4,
                    color=line[0].get_color(),
                )
        ax.set_xlabel("delta (Eq. 3)")
        ax.set_ylabel(f"{metric} (%)")
        ax.grid(alpha=0.3)
    axes[-1].legend(fontsize="small")
    seeds = ", ".join(map(str, data["seeds"]))
    fig.suptitle(
        f"{spec['title']}\nmean ± std over seeds {seeds}" + (" -- DEMO" if data["demo"] else ""), fontsize="medium"
    )
    plots.save(fig, path)
