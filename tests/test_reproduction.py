"""The mini-reproduction (rules/reproduction.smk, pico.reporting.reproduction): what it plans, and how it
aggregates over seeds."""

import math
import re
import shutil

import pytest

from pico.evaluation import correspondence
from pico.reporting import reproduction
from picotest import REPO, run_snakemake, scheduled


def _dry_run(tmp_path, *targets, configs=("config.yaml",)):
    shutil.copytree(REPO / "config", tmp_path / "config")
    files = [str(tmp_path / "config" / name) for name in configs]
    return run_snakemake(tmp_path, *targets, "-n", "--configfile", *files).stdout


def test_the_mini_config_plans_four_methods_by_three_seeds_and_the_figures(tmp_path):
    out = _dry_run(tmp_path, "reproduction", configs=("config.yaml", "mini.yaml"))
    jobs = scheduled(out)
    # per seed the 4 methods (Table 1's 3 and the shuffled control) and the figures' 3 further
    # points (pico: anchor d1; random d1, d4), each pretrained and probed once; the 4 methods
    # also on correspondence and label propagation
    assert jobs["reproduction_pretrain"] == jobs["reproduction_probe"] == 3 * 7
    assert jobs["reproduction_correspondence"] == jobs["reproduction_propagation"] == 3 * 4
    assert jobs["reproduction_figure"] == 2 and jobs["reproduction_table"] == jobs["reproduction_report"] == 1
    assert "pretrain_model" not in jobs and "probe_model" not in jobs  # the demo's own models are not built
    models = set(re.findall(r"results/reproduction/seed(\d+)/models/(\S+)/model\.pt", out))
    expected = {
        (str(seed), f"{method}/demo/anchor/g0_d4")
        for seed in (0, 1, 2)
        for method in ("pico", "static_video", "static_frame", "shuffled")
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
        (seed, m): {
            "model": m,
            "pairs": [
                {"pck4": 1.0, "n": 10, "region": "all", "gap": 3},
                {"pck4": 0.5 - 0.1 * seed, "n": 30, "region": "all", "gap": 12},
            ],
        }
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
        correspondence.pck(
            {"model": "pico/d/anchor/g0_d4", "pairs": [{"pck4": 0.0, "n": 0, "region": "all", "gap": 3}]},
            region="all",
            gap=correspondence.ANY_GAP,
        )


def _gated_inputs(pico_infonce, control_infonce, *, control_gap=0.0):
    """Two seeds of PiCO, Static (Video) and the control: probes, correspondences (two scenes,
    object and background entries at gaps 3 and 12) and held-out checks."""
    models = {m: f"{m}/d/anchor/g0_d4" for m in ("pico", "static_video", "shuffled")}
    skill = {"pico": 0.8, "static_video": 0.5, "shuffled": 0.1}
    probes, correspondences, pretexts = {}, {}, {}
    for seed in (0, 1):
        for method, model in models.items():
            probes[seed, model] = _probe(model, 30.0 + 10 * skill[method] + seed, 50.0)
            correspondences[seed, model] = {
                "model": model,
                "pairs": [
                    {"pair": scene, "region": region, "gap": gap, "pck4": skill[method] / (1 + k) - 0.01 * gap, "n": 10}
                    for k, scene in enumerate(("demo00", "demo01"))
                    for region in ("object", "background", "all")
                    for gap in (3, 12)
                ],
            }
            pretexts[seed, model] = {
                "infonce": {"pico": pico_infonce, "static_video": 7.0, "shuffled": control_infonce}[method],
                "cos_gap": {"pico": 0.05, "static_video": 0.02, "shuffled": control_gap}[method],
            }
    return list(models.values()), probes, correspondences, pretexts


def _gated(*args, **kwargs):
    models, probes, correspondences, pretexts = _gated_inputs(*args, **kwargs)
    skill = {"pico": 0.9, "static_video": 0.6, "shuffled": 0.2}
    propagations = {
        key: {
            "J_mean": skill[model.split("/")[0]],
            "videos": [
                {"video": video, "objects": [{"object": 1, "J": skill[model.split("/")[0]] - k / 10, "F": 0.5}]}
                for k, video in enumerate(("v0", "v1", "v2"))
            ],
        }
        for key, model in ((k, k[1]) for k in probes)
    }
    return reproduction.table(
        seeds=[0, 1],
        table_models=models,
        figure_models={},
        probes=probes,
        correspondences=correspondences,
        figure_specs={},
        config={},
        demo=True,
        pretexts=pretexts,
        propagations=propagations,
    )


def test_the_gate_passes_on_half_a_nat_and_then_compares_by_seed_and_by_scene():
    data = _gated(6.0, 6.6)
    assert data["gate"]["passed"] and data["gate"]["margin_nats"] == pytest.approx(0.6)
    assert data["verdict"].startswith("learned")
    rows = {(r["method"], r["seed"]): r for r in data["rows"]}
    assert len(rows) == 6 and rows["pico", 1]["heldout_infonce"] == 6.0
    assert rows["pico", 0]["pck4_object"] == {"3": pytest.approx(0.6 - 0.03), "12": pytest.approx(0.6 - 0.12)}
    assert rows["shuffled", 1]["mIoU"] == pytest.approx(32.0)
    video = next(c for c in data["comparisons"] if c["minus"] == "static_video")
    assert video["by_seed"]["mIoU"]["values"] == pytest.approx([3.0, 3.0])
    # scenes: pico - static_video is 0.3 on demo00 and 0.15 on demo01 at every gap
    interval = video["by_scene"]["pck4_object@12"]
    assert interval["mean"] == pytest.approx(0.225) and interval["scenes"] == 2
    assert 0.15 - 1e-9 <= interval["low"] <= interval["mean"] <= interval["high"] <= 0.3 + 1e-9
    assert video["by_scene"]["propagation_J"]["mean"] == pytest.approx(0.3)  # every video 0.3 apart
    assert rows["static_video", 0]["propagation_J"] == 0.6


def test_a_failed_gate_reports_not_learned_and_no_ranking():
    data = _gated(8.1, 8.3)  # 0.2 nats apart, PiCO's cosine gap 0.05
    assert not data["gate"]["passed"] and data["verdict"] == reproduction.NOT_LEARNED
    assert data["comparisons"] is None and len(data["rows"]) == 6  # every seed's numbers, no comparison
    assert not _gated(8.1, 8.3, control_gap=0.3)["gate"]["passed"]


def test_the_gate_reads_the_last_held_out_check_of_the_metrics(tmp_path):
    path = tmp_path / "metrics.csv"
    header = (
        "iteration,loss,lr,pairs,seconds,pairs_per_s,queue_similarity,heldout_infonce,heldout_chance,heldout_cos_gap"
    )
    path.write_text(
        f"{header}\n1,8,0.01,100,1,100,0.5,,,\n2,7,0.01,100,1,100,0.4,6.5,8.3,0.2\n3,7,0,100,1,100,0.4,6.0,8.3,0.3\n"
    )
    assert reproduction.last_check(path) == {"infonce": 6.0, "chance": 8.3, "cos_gap": 0.3}
    path.write_text(f"{header}\n1,8,0.01,100,1,100,0.5,,,\n")
    with pytest.raises(ValueError, match="no held-out pretext check"):
        reproduction.last_check(path)
