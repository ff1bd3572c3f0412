"""The mini-reproduction (docs/reproduction.md): Table 1's comparison and Figures 4-5 repeated
over seeds, each number as its mean, standard deviation and every seed's value.

For every seed of ``reproduction.seeds`` each model of Table 1 (PiCO, Static (Video), Static
(Frame)) and each point of the configured figures is pretrained with ``pretrain.seed`` = that
seed and probed on the COCO linear probe (mIoU, fIoU) with the probe seeded by it too; Table
1's models are also scored on the correspondence benchmark (``pck4``). The models and seeds
themselves are planned in ``pico.plan``.
"""

from __future__ import annotations

import csv
import random
import statistics
from pathlib import Path

from pico.config import CONTROL
from pico.evaluation.correspondence import ANY_GAP, pck
from pico.reporting import ablations, plots

TITLE = "Mini-reproduction: Table 1 (COCO linear probe) and dense correspondence over seeds"
PROBE_METRICS = ("mIoU", "fIoU")


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


def scene_pck(result: dict, *, region: str, gap: int, pixels: int = 4) -> dict[str, float]:
    """{pair (a scene): pck{pixels}} of a correspondence result's entries of ``region`` and ``gap``."""
    return {
        p["pair"]: p[f"pck{pixels}"] for p in result["pairs"] if p["region"] == region and p["gap"] == gap and p["n"]
    }


def gaps(results: dict) -> list[int]:
    """The demo gaps (frames) that the correspondence results score, ascending."""
    return sorted({p["gap"] for r in results.values() for p in r["pairs"] if p["gap"] is not None})


def _metric(results: dict[tuple[int, str], dict], model: str, seeds: list[int], read) -> dict:
    """``across_seeds`` of ``read(result)`` for ``model`` over ``seeds``."""
    return across_seeds({seed: read(results[seed, model]) for seed in seeds})


#: The gate, fixed before any result was seen (issue 24): PiCO must have learned the pretext,
#: measured on held-out videos, clearly better than the wrong-pairs control before methods are
#: compared. Nats of held-out InfoNCE PiCO must be below ``shuffled``; or, failing that, PiCO's
#: cosine gap at least GATE_COS_GAP while the control's stays within CONTROL_COS_GAP of 0.
GATE_MARGIN_NATS = 0.5
GATE_COS_GAP = 0.1
CONTROL_COS_GAP = 0.02
NOT_LEARNED = "not learned at this scale"


def gate(pretexts: dict[tuple[int, str], dict], *, pico: str, control: str, seeds: list[int]) -> dict:
    """Whether PiCO learned its pretext (the module constants), on the means over seeds of
    each model's held-out InfoNCE and cosine gap (``pretexts``: (seed, model) -> the last held-out
    check, ``infonce`` and ``cos_gap``)."""
    mean = {
        (model, key): statistics.fmean(pretexts[seed, model][key] for seed in seeds)
        for model in (pico, control)
        for key in ("infonce", "cos_gap")
    }
    margin = mean[control, "infonce"] - mean[pico, "infonce"]
    by_gap = mean[pico, "cos_gap"] >= GATE_COS_GAP and abs(mean[control, "cos_gap"]) <= CONTROL_COS_GAP
    return {
        "passed": margin >= GATE_MARGIN_NATS or by_gap,
        "pico_infonce": mean[pico, "infonce"],
        "shuffled_infonce": mean[control, "infonce"],
        "margin_nats": margin,
        "pico_cos_gap": mean[pico, "cos_gap"],
        "shuffled_cos_gap": mean[control, "cos_gap"],
        "rule": (
            f"held-out InfoNCE of PiCO at least {GATE_MARGIN_NATS} nats below {control}'s, or PiCO's cosine "
            f"gap >= {GATE_COS_GAP} while {control}'s is within {CONTROL_COS_GAP} of 0 (means over seeds)"
        ),
    }


def bootstrap(differences: dict[str, float], *, resamples: int = 2000, seed: int = 0) -> dict:
    """The mean of per-scene differences and its 95 % percentile interval over ``resamples``
    resamplings of the scenes with replacement (Efron's bootstrap; scenes in name order, drawn
    from ``seed``): how much the comparison depends on which scenes were drawn."""
    values = [differences[k] for k in sorted(differences)]
    if not values:
        return {"mean": None, "low": None, "high": None, "scenes": 0}
    draw = random.Random(seed)
    means = sorted(statistics.fmean(draw.choices(values, k=len(values))) for _ in range(resamples))
    return {
        "mean": statistics.fmean(values),
        "low": means[int(0.025 * resamples)],
        "high": means[int(0.975 * resamples) - 1],
        "scenes": len(values),
    }


def by_scene(per_seed: dict[int, dict[str, float]], other: dict[int, dict[str, float]]) -> dict[str, float]:
    """{scene: mean over seeds of first - other} for the scenes both score in every seed."""
    scenes = set.intersection(*(set(per_seed[s]) & set(other[s]) for s in per_seed))
    return {k: statistics.fmean(per_seed[s][k] - other[s][k] for s in per_seed) for k in scenes}


def propagation_scenes(result: dict) -> dict[str, float]:
    """{video: J} of a propagation result: each video's mean J over its objects."""
    return {v["video"]: statistics.fmean(o["J"] for o in v["objects"]) for v in result["videos"] if v["objects"]}


def last_check(path: str | Path) -> dict:
    """The last held-out pretext check of a pretraining's metrics.csv (``pico.learn.pretrain``:
    the columns heldout_infonce, heldout_chance, heldout_cos_gap, filled where it was measured)."""
    with open(path, newline="") as f:
        checked = [row for row in csv.DictReader(f) if row.get("heldout_infonce")]
    if not checked:
        raise ValueError(f"{path}: no held-out pretext check (pretrain.heldout_videos is 0?): the gate needs one")
    row = checked[-1]
    return {key: float(row[f"heldout_{key}"]) for key in ("infonce", "chance", "cos_gap")}


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
    pretexts: dict[tuple[int, str], dict] | None = None,
    propagations: dict[tuple[int, str], dict] | None = None,
) -> dict:
    """``results/reproduction.json``: per Table 1 model (method) mIoU, fIoU and pck4 over seeds;
    the first method's paired difference to each other method (``paired``); per figure point
    mIoU and fIoU over seeds; the seeds and the config. ``probes``, ``correspondences``,
    ``propagations`` map (seed, model name) to the benchmark results, ``pretexts`` to the last
    held-out pretext check (``infonce``, ``cos_gap``). With pretexts and the control among the
    models, the gate (``gate``) decides whether the comparison is reported at all, a row per
    (method, seed), and per-scene bootstrap intervals of the paired differences."""
    pretexts, propagations = pretexts or {}, propagations or {}

    def probe_metrics(model: str) -> dict:
        return {m: _metric(probes, model, seeds, lambda r, m=m: r[m]) for m in PROBE_METRICS}

    methods = [
        {
            "method": model.split("/")[0],
            "model": model,
            **probe_metrics(model),
            "pck4": _metric(correspondences, model, seeds, lambda r: pck(r, region="all", gap=ANY_GAP)),
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
    data = {
        "reproduction": title,
        "demo": demo,
        "seeds": sorted(seeds),
        "methods": methods,
        "differences": differences,
        "figures": figures_out,
        "config": config,
    }
    by_method = {m.split("/")[0]: m for m in table_models}
    if pretexts and CONTROL in by_method and "pico" in by_method:
        data |= gated(
            seeds=seeds,
            by_method=by_method,
            probes=probes,
            correspondences=correspondences,
            pretexts=pretexts,
            propagations=propagations,
        )
    return data


def gated(*, seeds, by_method, probes, correspondences, pretexts, propagations) -> dict:
    """The gate, a row per (method, seed) and the scene-bootstrapped paired differences of
    PiCO against every other method: object pck4 at each demo gap, propagation J, probe mIoU.
    A failed gate gives the verdict ``NOT_LEARNED`` and no ranking."""
    verdict = gate(pretexts, pico=by_method["pico"], control=by_method[CONTROL], seeds=seeds)
    demo_gaps = gaps(correspondences)
    rows = []
    for method, model in by_method.items():
        for seed in sorted(seeds):
            corr, prop = correspondences[seed, model], propagations.get((seed, model))
            rows.append(
                {
                    "method": method,
                    "seed": seed,
                    "model": model,
                    "heldout_infonce": pretexts[seed, model]["infonce"],
                    "cos_gap": pretexts[seed, model]["cos_gap"],
                    "pck4_object": {str(g): pck(corr, region="object", gap=g) for g in demo_gaps},
                    "propagation_J": prop and prop["J_mean"],
                    "mIoU": probes[seed, model]["mIoU"],
                }
            )

    # Each metric as a reader of one (seed, model): its value, or its value per scene.
    per_seed = {"mIoU": lambda seed, model: probes[seed, model]["mIoU"]}
    per_scene = {}
    for g in demo_gaps:
        per_seed[f"pck4_object@{g}"] = lambda seed, model, g=g: pck(
            correspondences[seed, model], region="object", gap=g
        )
        per_scene[f"pck4_object@{g}"] = lambda seed, model, g=g: scene_pck(
            correspondences[seed, model], region="object", gap=g
        )
    if propagations:
        per_scene["propagation_J"] = lambda seed, model: propagation_scenes(propagations[seed, model])

    def over_seeds(method: str, read) -> dict:
        return {seed: read(seed, by_method[method]) for seed in seeds}

    comparisons = [
        {
            "method": "pico",
            "minus": method,
            "by_seed": {
                name: paired(*(across_seeds(over_seeds(m, read)) for m in ("pico", method)))
                for name, read in per_seed.items()
            },
            "by_scene": {
                name: bootstrap(by_scene(*(over_seeds(m, read) for m in ("pico", method))))
                for name, read in per_scene.items()
            },
        }
        for method in by_method
        if method != "pico"
    ]
    return {
        "gate": verdict,
        "verdict": "learned: the comparison below measures the methods" if verdict["passed"] else NOT_LEARNED,
        "rows": rows,
        "comparisons": comparisons if verdict["passed"] else None,
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
    verdict = ""
    if "gate" in data:
        g = data["gate"]
        verdict = (
            f"; gate {'passed' if g['passed'] else 'FAILED'}: held-out InfoNCE PiCO {g['pico_infonce']:.3f}, "
            f"shuffled {g['shuffled_infonce']:.3f} ({g['margin_nats']:.3f} nats), cosine gap PiCO "
            f"{g['pico_cos_gap']:.3f}, shuffled {g['shuffled_cos_gap']:.3f}: {data['verdict']}"
        )
    return {
        "benchmark": f"{data['reproduction']}; seeds {seeds}; mean ± std (each seed){verdict}",
        "demo": data["demo"],
        "rows": rows,
    }


def plot(data: dict, figure: str, path: str | Path) -> None:
    """One figure of the reproduction: mIoU and fIoU against delta, one line per sampling
    through the means over seeds with ± one standard deviation as error bars and every seed's
    value as a dot; PNG, atomically."""
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
