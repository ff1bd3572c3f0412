"""Section 4.3's ablations: the config's grids, their checks, and the demo's Figures 3-5."""

import json
import re
import subprocess
import sys

import cv2
import pytest

from pico import config as pcfg
from pico import plan
from pico.reporting import ablations
from picotest import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
DATASETS = {"k400": {"source": "synthetic"}, "yt8m_s": {"source": "synthetic"}}


def test_each_figure_defaults_to_its_own_grid():
    cfg = pcfg.validate(
        {"datasets": DATASETS, "ablations": {f: {"dataset": "yt8m_s"} for f in ablations.TITLES}}, SCHEMA
    )
    fig3, fig4, fig5 = (cfg["ablations"][f] for f in ("figure3", "figure4", "figure5"))
    assert (fig3["sampling"], fig3["gammas"], fig3["deltas"]) == (["random"], [0, 0.01, 0.1], [1, 4, 16])
    assert (fig4["sampling"], fig4["gammas"]) == (["random"], [0]) and len(fig4["deltas"]) > len(fig3["deltas"])
    assert (fig5["sampling"], fig5["gammas"]) == (["anchor", "random"], [0])
    assert {s["method"] for s in (fig3, fig4, fig5)} == {"pico"}
    assert plan.ablation_models(fig5)[:2] == ["pico/yt8m_s/anchor/g0_d1", "pico/yt8m_s/anchor/g0_d4"]
    assert len(plan.ablation_models(fig3)) == 9
    assert pcfg.validate({"datasets": DATASETS}, SCHEMA)["ablations"] == {}  # none unless asked


def test_the_rules_import_no_heavy_module_at_parse_time():
    """Every SLURM job parses the Snakefile again: the pico modules the rules import
    (pico.plan among them) load none of numpy, pyarrow, matplotlib and torch."""
    rules = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    modules = sorted({m for path in rules for m in re.findall(r"^import (pico(?:\.\w+)+)$", path.read_text(), re.M)})
    assert "pico.plan" in modules
    heavy = "{'numpy', 'pyarrow', 'matplotlib', 'torch'}"
    code = f"import sys, {', '.join(modules)}; print(sorted({heavy} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", (modules, out.stdout)


@pytest.mark.parametrize(
    "ablation, key, words",
    [
        ({"figure3": {"dataset": "youtube"}}, "ablations.figure3.dataset", "'youtube' is not one of datasets"),
        (
            {"figure4": {"dataset": "k400", "deltas": [4, 20]}},
            "ablations.figure4.deltas.1",
            "exceeds tracking.max_delta 16",
        ),
        (
            {"figure3": {"dataset": "k400", "gammas": [0.6]}},
            "ablations.figure3.gammas.0",
            "exceeds tracking.max_gamma 0.5",
        ),
        (
            {"figure5": {"dataset": "k400", "sampling": ["anchor", "uniform"]}},
            "ablations.figure5.sampling.1",
            "is not one of",
        ),
        ({"figure6": {"dataset": "k400"}}, "ablations", "figure6"),
        ({"figure4": {"deltas": [1]}}, "ablations.figure4", "'dataset' is a required property"),
        (
            {"figure3": {"dataset": "k400", "gammas": [0.1, 0.1000001]}},
            "ablations.figure3.gammas.1",
            "0.1000001 is named 0.1 in paths",
        ),
    ],
)
def test_invalid_ablations_are_rejected_naming_the_key(ablation, key, words):
    with pytest.raises(pcfg.ConfigError) as err:
        pcfg.validate({"datasets": DATASETS, "ablations": ablation}, SCHEMA)
    assert f"{key}:" in str(err.value) and words in str(err.value), str(err.value)


def test_demo_ablations_probe_every_point_of_their_grids(demo):
    expected = {
        "figure3": [("random", 0.0, 4.0), ("random", 0.1, 4.0)],
        "figure4": [("random", 0.0, 1.0), ("random", 0.0, 4.0)],
        "figure5": [("anchor", 0.0, 1.0), ("anchor", 0.0, 4.0), ("random", 0.0, 1.0), ("random", 0.0, 4.0)],
    }
    for figure, grid in expected.items():
        data = json.loads((demo / f"results/ablations/{figure}.json").read_text())
        assert data["demo"] is True and data["figure"].startswith(ablations.TITLES[figure]) and "DEMO" in data["figure"]
        assert [(p["sampling"], p["gamma"], p["delta"]) for p in data["points"]] == grid
        for p in data["points"]:
            assert set(p) == set(ablations.POINT_KEYS) and (p["method"], p["dataset"]) == ("pico", "demo")
            assert p["model"] == f"pico/demo/{p['sampling']}/{pcfg.cut_name(p['gamma'], p['delta'])}"
            assert 0 < p["mIoU"] <= 100 and 0 < p["fIoU"] <= 100
            probed = json.loads((demo / f"results/benchmarks/coco_probe/{p['model']}.json").read_text())
            assert (probed["mIoU"], probed["fIoU"]) == (p["mIoU"], p["fIoU"])  # the probe's own numbers
        image = cv2.imread(str(demo / f"results/ablations/{figure}.png"))
        assert image is not None and image.shape == (360, 900, 3)
    # a point shared by figures (and with Table 1: anchor g0_d4) is trained once
    table1 = json.loads((demo / "results/coco_probe.json").read_text())
    (pico,) = [r for r in table1["rows"] if r["method"] == "pico"]
    fig5 = json.loads((demo / "results/ablations/figure5.json").read_text())
    assert [(p["mIoU"], p["fIoU"]) for p in fig5["points"] if p["model"] == pico["model"]] == [
        (pico["mIoU"], pico["fIoU"])
    ]


def test_the_plot_is_the_same_bytes_for_the_same_data(tmp_path, demo):
    data = json.loads((demo / "results/ablations/figure5.json").read_text())
    ablations.plot(data, tmp_path / "again.png")
    assert (tmp_path / "again.png").read_bytes() == (demo / "results/ablations/figure5.png").read_bytes()
