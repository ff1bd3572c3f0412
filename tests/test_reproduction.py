"""The mini-reproduction (rules/reproduction.smk, pico.reporting.reproduction): what it plans, and how it
aggregates over seeds."""

import math
import re
import shutil

import pytest

from pico.reporting import reproduction
from picotest import REPO, run_snakemake, scheduled


def _dry_run(tmp_path, *targets, configs=("config.yaml",)):
    shutil.copytree(REPO / "config", tmp_path / "config")
    files = [str(tmp_path / "config" / name) for name in configs]
    return run_snakemake(tmp_path, *targets, "-n", "--configfile", *files).stdout


def test_the_mini_config_plans_three_methods_by_three_seeds_and_the_figures(tmp_path):
    out = _dry_run(tmp_path, "reproduction", configs=("config.yaml", "mini.yaml"))
    jobs = scheduled(out)
    # per seed Table 1's 3 models and the figures' 3 further points (pico: anchor d1; random
    # d1, d4), each pretrained and probed once; Table 1's 3 also on correspondence
    assert jobs["reproduction_pretrain"] == jobs["reproduction_probe"] == 3 * 6
    assert jobs["reproduction_correspondence"] == 3 * 3
    assert jobs["reproduction_figure"] == 2 and jobs["reproduction_table"] == jobs["reproduction_report"] == 1
    assert "pretrain_model" not in jobs and "probe_model" not in jobs  # the demo's own models are not built
    models = set(re.findall(r"results/reproduction/seed(\d+)/models/(\S+)/model\.pt", out))
    expected = {
        (str(seed), f"{method}/demo/anchor/g0_d4")
        for seed in (0, 1, 2)
        for method in ("pico", "static_video", "static_frame")
    }
    expected |= {
        (str(seed), f"pico/demo/{sampling}/g0_d{delta}")
        for seed in (0, 1, 2)
        for sampling in ("anchor", "random")
        for delta in (1, 4)
    }
    assert models == expected


def test_without_seeds_nothing_is_planned_and_the_default_target_has_no_reproduction_job(tmp_path):
    assert scheduled(_dry_run(tmp_path / "off", "reproduction")) == {"reproduction": 1}  # the target alone
    jobs = scheduled(_dry_run(tmp_path / "all"))
    assert jobs and not [job for job in jobs if job.startswith("reproduction")]


def _probe(model, mIoU, fIoU):
    method, dataset, sampling, cut = model.split("/")
    gamma, delta = cut.removeprefix("g").split("_d")
    return {
        "method": method,
        "dataset": dataset,
        "sampling": sampling,
        "gamma": float(gamma),
        "delta": float(delta),
        "mIoU": mIoU,
        "fIoU": fIoU,
        "model": model,
    }


def test_the_aggregation_gives_mean_sample_std_and_every_seed():
    table_models = ["pico/d/anchor/g0_d4", "static_frame/d/anchor/g0_d4"]
    figure = ["pico/d/random/g0_d8", "pico/d/random/g0_d1", "pico/d/anchor/g0_d4"]
    seeds = [2, 0, 1]
    miou = {(0, table_models[0]): 10.0, (1, table_models[0]): 14.0, (2, table_models[0]): 12.0}
    probes = {}
    for seed in seeds:
        for i, model in enumerate(table_models + figure):
            probes[seed, model] = _probe(model, miou.get((seed, model), 1.0 * seed + i), 50.0 + seed)
    # pck4 of a model: its pairs' pck4 weighted by their points: (1 * 10 + 0.5 * 30) / 40
    correspondences = {
        (seed, m): {"model": m, "pairs": [{"pck4": 1.0, "n": 10}, {"pck4": 0.5 - 0.1 * seed, "n": 30}]}
        for seed in seeds
        for m in table_models
    }
    spec = {"dataset": "d", "method": "pico", "sampling": ["random"], "gammas": [0], "deltas": [1, 8]}
    data = reproduction.table(
        seeds=seeds,
        table_models=table_models,
        figure_models={"figure4": figure},
        probes=probes,
        correspondences=correspondences,
        figure_specs={"figure4": spec},
        config={"seed": 0},
        demo=True,
    )
    assert data["demo"] is True and data["seeds"] == [0, 1, 2] and data["config"] == {"seed": 0}
    pico = data["methods"][0]
    assert pico["method"] == "pico" and pico["model"] == table_models[0]
    assert pico["mIoU"] == {"mean": 12.0, "std": 2.0, "seeds": [0, 1, 2], "values": [10.0, 14.0, 12.0]}
    assert pico["fIoU"]["values"] == [50.0, 51.0, 52.0] and pico["fIoU"]["std"] == pytest.approx(1.0)
    assert pico["pck4"]["values"] == pytest.approx([25 / 40, 22 / 40, 19 / 40])
    assert pico["pck4"]["std"] == pytest.approx(math.sqrt(((3 / 40) ** 2 * 2) / 2))
    # paired by seed: static_frame's mIoU is seed + 1 (model index 1), PiCO's 10, 14, 12
    (difference,) = data["differences"]
    assert (difference["method"], difference["minus"]) == ("pico", "static_frame")
    assert difference["mIoU"]["values"] == [9.0, 12.0, 9.0] and difference["fIoU"]["values"] == [0.0, 0.0, 0.0]
    assert difference["pck4"]["values"] == pytest.approx([0.0, 0.0, 0.0])
    points = data["figures"]["figure4"]["points"]
    assert [(p["sampling"], p["delta"]) for p in points] == [("anchor", 4.0), ("random", 1.0), ("random", 8.0)]
    assert points[1]["mIoU"]["values"] == [3.0, 4.0, 5.0]  # g0_d1 is the 4th model: seed + 3
    assert reproduction.across_seeds({5: 3.0})["std"] is None  # one seed has no spread
    rows = reproduction.report_rows(data)["rows"]
    assert rows[0]["mIoU"] == "12 ± 2 (10, 14, 12)" and len(rows) == 2 + 1 + 3
    assert rows[2]["method"] == "pico - static_frame" and rows[2]["mIoU"] == "10 ± 1.73 (9, 12, 9)"


def test_a_correspondence_result_without_points_is_an_error_naming_the_model():
    with pytest.raises(ValueError, match="pico/d/anchor/g0_d4"):
        reproduction.pck({"model": "pico/d/anchor/g0_d4", "pairs": [{"pck4": 0.0, "n": 0}]})
