"""The config contract: schema defaults, clear errors naming the key, checks before any job."""

import copy
from pathlib import Path

import pytest
import yaml

from pico import config as pcfg
from picotest import REPO, run_snakemake

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def validate(cfg):
    return pcfg.validate(cfg, SCHEMA)


def test_a_config_naming_only_datasets_gets_every_default():
    cfg = validate({"datasets": {"d": {"source": "synthetic"}}})
    assert cfg["seed"] == 0
    assert cfg["frames"] == {"fps": 30, "short_side": 256, "jpeg_quality": 95}
    d = cfg["datasets"]["d"]
    assert (d["shots"], d["snippet_seconds"], d["min_seconds"], d["videos_per_shard"]) == (True, 10, 1, 50)
    assert d["synthetic"]["fps"] == [30]
    assert cfg["download"]["retries"] == 3 and cfg["shot_detection"]["threshold"] == 0.5


@pytest.mark.parametrize(
    "cfg, key, words",
    [
        ({"datasets": {"d": {"source": "vimeo"}}}, "datasets.d.source", "is not one of"),
        ({"datasets": {"d": {"source": "synthetic"}}, "frames": {"fps": -30}}, "frames.fps", "-30"),
        ({"datasets": {"d": {"source": "synthetic"}}, "frames": {"short_side": 0}}, "frames.short_side", "0"),
        ({"datasets": {"d": {"source": "local"}}}, "datasets.d", "'path' is a required property"),
        ({"datasets": {"d": {"source": "local", "path": "no/such/dir"}}}, "datasets.d.path", "does not exist"),
        ({"datasets": {"d": {"source": "youtube", "ids": "no/such.txt"}}}, "datasets.d.ids", "does not exist"),
        ({"datasets": {"d": {"source": "synthetic", "snippet_secs": 3}}}, "datasets.d", "snippet_secs"),
        ({"datasets": {}}, "datasets", "non-empty"),
        ({"datasets": {"bad name": {"source": "synthetic"}}}, "datasets", "bad name"),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "tracking": {"thresholds": [[0, 20]]}},
            "tracking.thresholds.0",
            "max_delta 16",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "tracking": {"thresholds": [[0, 4], [0, 4.0000001]]}},
            "tracking.thresholds.1.1",
            "is named 4 in paths",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "tracking": {"thresholds": [[0, 4], [0.0, 4]]}},
            "tracking.thresholds",
            "non-unique",
        ),
        ({"datasets": {"d": {"source": "synthetic"}}, "flow": {"backend": "pwc"}}, "flow.backend", "is not one of"),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "pretrain": {"videos_per_batch": 2, "gpus": 4}},
            "pretrain.videos_per_batch",
            "4 processes",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "model": {"encoder_checkpoint": "no/moco.pth"}},
            "model.encoder_checkpoint",
            "does not exist",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"coco_root": "no/coco"}},
            "benchmarks.coco_root",
            "does not exist",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"voc": {"root": "no/voc"}}},
            "benchmarks.voc.root",
            "does not exist",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"demo": {"world": {"sped": [0, 1]}}}},
            "benchmarks.demo.world",
            "'sped' was unexpected",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"correspondence": {"demo_gap": 0.11}}},
            "benchmarks.correspondence.demo_gap",
            "not a whole number of frames at 30 Hz",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"correspondence": {"demo_gaps": [0, 3]}}},
            "benchmarks.correspondence.demo_gaps.0",
            "less than the minimum of 1",
        ),
    ],
)
def test_invalid_configs_are_rejected_naming_the_key(cfg, key, words):
    with pytest.raises(pcfg.ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert f"{key}:" in message and words in message, message


def test_the_deprecated_demo_gap_replaces_the_demo_gaps_by_its_one_gap_in_frames():
    def gaps(correspondence):
        cfg = validate({"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"correspondence": correspondence}})
        return pcfg.demo_gaps(cfg["benchmarks"]["correspondence"])

    assert gaps({}) == [3, 6, 12] and gaps({"demo_gaps": [1, 30]}) == [1, 30]
    assert gaps({"demo_gap": 0.5}) == [15] and gaps({"demo_gap": 0.1, "demo_gaps": [1, 30]}) == [3]


def test_the_demo_benchmarks_world_is_the_configured_one_else_the_first_synthetic_datasets():
    mini = {"speed": [0.35, 0.8], "deformation": 0.25}
    cfg = validate(
        {
            "datasets": {
                "k": {"source": "local", "path": str(REPO)},
                "s": {"source": "synthetic", "synthetic": {"world": mini}},
            }
        }
    )
    assert pcfg.demo_world(cfg) == cfg["datasets"]["s"]["synthetic"]["world"]
    assert pcfg.demo_world(cfg)["speed"] == [0.35, 0.8] and pcfg.demo_world(cfg)["pan"] == [0.0, 0.08]
    cfg = validate({"datasets": {"s": {"source": "synthetic"}}, "benchmarks": {"demo": {"world": {"spin": [0, 1]}}}})
    assert pcfg.demo_world(cfg)["spin"] == [0, 1] and pcfg.demo_world(cfg)["speed"] == [0.08, 0.25]
    assert pcfg.demo_world(validate({"datasets": {"k": {"source": "local", "path": str(REPO)}}})) == {}


def test_shipped_configs_are_valid(tmp_path, monkeypatch):
    validate(yaml.safe_load((REPO / "config/config.yaml").read_text()))
    monkeypatch.chdir(tmp_path)  # paper.yaml's inputs, as a user lays them out
    for folder in (
        "data/kinetics400/train",
        "data/yt8m/video",
        "data/coco",
        "data/VOCdevkit/VOC2012",
        "data/cityscapes",
        "data/nyu",
    ):
        Path(folder).mkdir(parents=True)
    Path("data/kinetics400/train.csv").write_text("label,youtube_id,time_start,time_end,split\n")
    Path("data/moco_v2_800ep_pretrain.pth.tar").write_bytes(b"")
    paper = yaml.safe_load((REPO / "config/paper.yaml").read_text())
    cfg = validate(copy.deepcopy(paper))
    assert cfg["frames"]["short_side"] == 256 and cfg["datasets"]["k400"]["shots"] is False
    cfg = validate({**paper, **yaml.safe_load((REPO / "config/paper_ablations.yaml").read_text())})
    assert set(cfg["ablations"]) == {"figure3", "figure4", "figure5"}


def test_snakemake_stops_before_any_job_on_a_bad_config(tmp_path):
    out = run_snakemake(
        tmp_path, "videos", config={"datasets": {"d": {"source": "synthetic"}}, "frames": {"fps": -1}}, check=False
    )
    assert out.returncode != 0
    assert "frames.fps" in out.stderr + out.stdout
    assert not (tmp_path / "results").exists()


def test_a_model_is_named_by_its_fields_as_its_paths_are():
    model = pcfg.Model("static_video", "k400", "anchor", 0.0, 4)
    assert model.name == "static_video/k400/anchor/g0_d4" == pcfg.model_name(*model)
    assert model.cut == "g0_d4" and (model.gamma, model.delta) == (0.0, 4)
    assert pcfg.Model("pico", "demo", "random", "0.01", "0.5").name == "pico/demo/random/g0.01_d0.5"  # wildcards


def test_benchmark_roots_fall_back_to_the_demo_data_only_without_coco():
    cfg = validate({"datasets": {"demo": {"source": "synthetic"}}})
    roots = pcfg.benchmark_roots(cfg)
    assert roots["coco_probe"] == roots["coco_maskrcnn"] == pcfg.DEMO_DATA_ROOTS["coco"]
    assert roots["nyu_depth"] == pcfg.DEMO_DATA_ROOTS["nyu"] and roots["voc"] is None
    assert pcfg.on_demo_data(cfg, "coco_probe") and pcfg.on_demo_data(cfg, "nyu_depth")
    cfg["benchmarks"]["coco_root"] = "/data/coco"
    roots = pcfg.benchmark_roots(cfg)
    assert roots["coco_probe"] == "/data/coco" and roots["nyu_depth"] is None  # no demo NYU beside real COCO
    assert not pcfg.on_demo_data(cfg, "coco_probe")


def test_flow_rerun_settings_are_the_chosen_backends_and_codecs_alone():
    flow = validate({"datasets": {"demo": {"source": "synthetic"}}})["flow"]
    flow.update(backend="dis", device="cuda", batch_size=8)
    flow["codec"].update(scheme="frame_range", bound=40)
    settings = pcfg.flow_rerun_settings(flow)
    assert settings["backend"] == "dis" and {"dis_preset", "dis_refine"} <= settings.keys()
    assert not {"device", "batch_size", "iters", "weights", "threads"} & settings.keys()
    assert "bound" not in settings["codec"]
    assert "step" not in settings["codec"]
    flow["codec"]["scheme"] = "fixed"
    assert pcfg.flow_rerun_settings(flow)["codec"]["bound"] == 40
    flow["codec"].update(scheme="tiled", step=0.05)
    assert {"bound", "step"} & pcfg.flow_rerun_settings(flow)["codec"].keys() == {"step"}


def test_the_configuration_docs_list_every_key_of_the_schema_as_generated():
    schema = yaml.safe_load(SCHEMA.read_text())
    doc = (REPO / "docs/configuration.md").read_text()
    assert pcfg.with_reference(doc, schema) == doc, "docs/configuration.md is stale: run python -m pico.config (docs)"
    table = pcfg.reference(schema)
    for key in ("`seed` | `0`", "`datasets.<name>.sample`", "`flow.codec.bound` | `20`", "`ablations.figure4.deltas`"):
        assert key in table, key
    with pytest.raises(ValueError, match="no '<!-- schema reference"):
        pcfg.with_reference("no markers here", schema)
