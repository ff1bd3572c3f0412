"""The config contract: schema defaults, clear errors naming the key, checks before any job."""

import copy
import functools
import time
from pathlib import Path

import pytest
import yaml

from pico import config as pcfg
from picotest import REPO, run_snakemake

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"
NAN, INF = float("nan"), float("inf")


def validate(cfg):
    return pcfg.validate(cfg, SCHEMA)


def test_a_config_naming_only_datasets_gets_every_default():
    cfg = validate({"datasets": {"d": {"source": "synthetic"}}})
    assert cfg["seed"] == 0
    assert cfg["frames"] == {"fps": 30, "short_side": 256, "jpeg_quality": 95, "min_motion": None}
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
        # NaN and infinity pass every bound (a comparison with NaN is false): refused, wherever they are
        ({"datasets": {"d": {"source": "synthetic"}}, "frames": {"fps": NAN}}, "frames.fps", "not a finite number"),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "tracking": {"max_gamma": NAN}},
            "tracking.max_gamma",
            "nan is not a finite number",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"demo": {"world": {"growth": [-INF, 1]}}}},
            "benchmarks.demo.world.growth.0",
            "-inf is not a finite number",
        ),
        (
            {
                "datasets": {"d": {"source": "synthetic"}},
                "ablations": {"figure3": {"dataset": "d", "gammas": [0, NAN]}},
            },
            "ablations.figure3.gammas.1",
            "not a finite number",
        ),
        # sizes and rates have upper bounds
        (
            {"datasets": {"d": {"source": "synthetic"}}, "frames": {"short_side": 20000}},
            "frames.short_side",
            "greater than the maximum of 4096",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "frames": {"fps": 1e18}},
            "frames.fps",
            "greater than the maximum",
        ),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "pretrain": {"iterations": 10**18}},
            "pretrain.iterations",
            "greater than the maximum of 10000000",
        ),
        # a URL template takes its placeholders alone, plain, {id} among them
        (
            {"datasets": {"d": {"source": "synthetic", "url_template": "https://y/{idd}"}}},
            "datasets.d.url_template",
            "has the placeholder {idd}; its placeholders: {id}",
        ),
        (
            {"datasets": {"d": {"source": "synthetic", "url_template": "https://y/{id"}}},
            "datasets.d.url_template",
            "is not a template (expected '}' before end of string",
        ),
        (
            {"datasets": {"d": {"source": "synthetic", "url_template": "https://y/{id.__class__}"}}},
            "datasets.d.url_template",
            "has the placeholder {id.__class__}",
        ),
        (
            {"datasets": {"d": {"source": "synthetic", "url_template": "https://y/v"}}},
            "datasets.d.url_template",
            "has no {id}: every video would have the same URL",
        ),
        (
            {"datasets": {"d": {"source": "synthetic", "lookup_url": "http://y/{0}.js"}}},
            "datasets.d.lookup_url",
            "has the placeholder {0}; its placeholders: {prefix}, {id}",
        ),
        # a whole number written as a float is refused: the code would carry the float on
        (
            {"datasets": {"d": {"source": "synthetic"}}, "pretrain": {"iterations": 2.0}},
            "pretrain.iterations",
            "2.0 is not of type 'integer' (write it without a decimal point: 2)",
        ),
        ({"datasets": {"d": {"source": "synthetic"}}, "seed": 1.0}, "seed", "1.0 is not of type 'integer'"),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"probe": {"milestones": [45.0]}}},
            "benchmarks.probe.milestones.0",
            "45.0 is not of type 'integer'",
        ),
        # what else YAML or a pasted value can bring: keys that are not strings, huge strings, deep nesting
        ({"datasets": {True: {"source": "synthetic"}}}, "datasets.True", "the key True (bool) is not a string"),
        (
            {"datasets": {"d": {"source": "local", "path": "a" * 100_000}}},
            "datasets.d.path",
            "100,000 characters, more than a path's 4,096",
        ),
        ({"datasets": {"d": {"source": "local", "path": "a\0b"}}}, "datasets.d.path", "holds a NUL character"),
        ({"datasets": {"d" * 101: {"source": "synthetic"}}}, "datasets", "is too long"),
        (
            {"datasets": {"d": {"source": "synthetic"}}, "seed": functools.reduce(lambda x, _: [x], range(30), 0)},
            "seed.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0",
            "nested deeper than 20 levels",
        ),
    ],
)
def test_invalid_configs_are_rejected_naming_the_key(cfg, key, words):
    with pytest.raises(pcfg.ConfigError) as err:
        validate(cfg)
    message = str(err.value)
    assert f"{key}:" in message and words in message, message


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


def alias_bomb(levels: int) -> list:
    """A list of 9 references to a list of 9 references ... ``levels`` deep: 9^levels values,
    as a few hundred bytes of nested YAML aliases ("billion laughs") load."""
    return functools.reduce(lambda inner, _: [inner] * 9, range(levels), "lol")


def test_an_alias_bomb_or_a_long_list_is_refused_at_once_in_a_short_message():
    text = yaml.safe_dump({"datasets": {"d": {"source": "synthetic"}}, "seed": alias_bomb(9)})
    assert len(text) < 2000  # 9^9 = 387 million values, in aliases
    cases = [
        (yaml.safe_load(text), r"seed(\.\d)+: the config holds more than 100,000 values by here"),
        # 9^5 = 59,049 values, within the budget: the message cuts the value short
        (
            {"datasets": {"d": {"source": "synthetic"}}, "seed": alias_bomb(5)},
            r"seed: \[\[\[.* \.\.\.\[[\d,]+ characters\]\.\.\. .* is not of type 'integer'",
        ),
        # items jsonschema cannot sort: its uniqueness check would be quadratic (minutes)
        (
            {
                "datasets": {"d": {"source": "synthetic"}},
                "methods": [[i] if i % 2 else {"m": i} for i in range(20_000)],
            },
            r"methods: .* is too long",
        ),
    ]
    for cfg, message in cases:
        start = time.perf_counter()
        with pytest.raises(pcfg.ConfigError, match=message) as err:
            validate(cfg)
        assert time.perf_counter() - start < 3 and len(str(err.value)) < 30_000


def test_aliased_values_get_their_own_defaults_and_negative_zero_is_zero():
    cfg = validate(
        yaml.safe_load(
            "datasets: {d: {source: synthetic}}\n"
            "tracking: {thresholds: [[-0.0, 4]]}\n"
            "ablations: {figure3: &grid {dataset: d}, figure4: *grid}\n"
        )
    )
    assert cfg["ablations"]["figure4"]["deltas"] == [1, 2, 4, 6, 8, 12, 16]  # figure4's default, not figure3's
    assert cfg["ablations"]["figure3"]["deltas"] == [1, 4, 16]
    assert pcfg.cut_name(*cfg["tracking"]["thresholds"][0]) == "g0_d4"  # not g-0_d4, another cut


def test_every_number_of_the_schema_is_bounded_and_every_unique_list_capped():
    """NaN aside (refused anywhere), a number's bounds are the schema's: each needs both, and
    each list of unique items a maxItems (jsonschema's uniqueness check is quadratic)."""

    def nodes(node):
        if isinstance(node, dict):
            yield node
        for child in node.values() if isinstance(node, dict) else node if isinstance(node, list) else ():
            yield from nodes(child)

    def types(node) -> list:
        return node.get("type") if isinstance(node.get("type"), list) else [node.get("type")]

    schema = yaml.safe_load(SCHEMA.read_text())
    numbers = [n for n in nodes(schema) if {"number", "integer"} & set(types(n))]
    assert len(numbers) > 100
    for n in numbers:
        assert {"minimum", "exclusiveMinimum"} & n.keys() and {"maximum", "exclusiveMaximum"} & n.keys(), n
    assert all("maxItems" in n for n in nodes(schema) if n.get("uniqueItems")), "uniqueItems without maxItems"


@pytest.mark.parametrize(
    "override, key",
    [
        ({"frames": {"fps": -1}}, "frames.fps"),
        ({"frames": {"fps": NAN}}, "frames.fps"),
        ({"pretrain": {"iterations": 2.0}}, "pretrain.iterations"),
        (
            {"datasets": {"y": {"source": "youtube", "ids": "ids.txt", "url_template": "{idd}"}}},
            "datasets.y.url_template",
        ),
        ({"seed": alias_bomb(9)}, "the config holds more than 100,000 values"),
    ],
)
def test_snakemake_stops_before_any_job_on_a_bad_config(tmp_path, override, key):
    (tmp_path / "ids.txt").write_text("dQw4w9WgXcQ\n")
    config = {"datasets": {"d": {"source": "synthetic"}}, **override}
    out = run_snakemake(tmp_path, "videos", config=config, check=False, timeout=60)
    assert out.returncode != 0
    assert key in out.stderr + out.stdout and "Traceback" not in out.stderr + out.stdout, out.stderr[-3000:]
    assert not (tmp_path / "results").exists()


def test_a_model_is_named_by_its_fields_as_its_paths_are():
    model = pcfg.Model("static_video", "k400", "anchor", 0.0, 4)
    assert model.name == "static_video/k400/anchor/g0_d4" == pcfg.model_name(*model)
    assert model.cut == "g0_d4" and (model.gamma, model.delta) == (0.0, 4)
    assert pcfg.Model("pico", "demo", "random", "0.01", "0.5").name == "pico/demo/random/g0.01_d0.5"  # wildcards


def test_the_configuration_docs_list_every_key_of_the_schema_as_generated():
    schema = yaml.safe_load(SCHEMA.read_text())
    doc = (REPO / "docs/configuration.md").read_text()
    assert pcfg.with_reference(doc, schema) == doc, "docs/configuration.md is stale: run python -m pico.config (docs)"
    table = pcfg.reference(schema)
    for key in ("`seed` | `0`", "`datasets.<name>.sample`", "`flow.codec.bound` | `20`", "`ablations.figure4.deltas`"):
        assert key in table, key
    rows = {row.split("`")[1]: row for row in table.splitlines()[2:]}
    assert rows["frames.short_side"].endswith(" At least 8, at most 4,096. |")  # the bounds, as the schema's
    assert "Each above 0, at most 1,000." in rows["datasets.<name>.synthetic.fps"]  # a list's items'
    with pytest.raises(ValueError, match="no '<!-- schema reference"):
        pcfg.with_reference("no markers here", schema)
