"""pico.plan (what a config builds), pico.rerun (what reruns) and pico.flow_backends, without dry runs."""

import pytest
import yaml

from pico import config as pcfg
from pico import plan, rerun
from pico.flow_backends import BACKENDS
from picotest import REPO

SCHEMA = REPO / "workflow/schemas/config.schema.yaml"


def validate(cfg):
    return pcfg.validate(cfg, SCHEMA)


def demo_plan(**overrides) -> plan.Plan:
    """The demo config's plan, with ``overrides`` (top-level blocks) laid over it."""
    cfg = yaml.safe_load((REPO / "config/config.yaml").read_text())
    return plan.Plan(validate({**cfg, **overrides}))


def test_the_demo_plan_names_its_shards_cuts_and_models():
    demo = demo_plan()
    cfg = demo.config
    assert list(demo.shards) == ["demo"] and list(demo.shards["demo"]) == ["00000", "00001"]
    assert sum(map(len, demo.shards["demo"].values())) == cfg["datasets"]["demo"]["synthetic"]["videos"]
    assert list(demo.cuts) == [pcfg.cut_name(g, d) for g, d in cfg["tracking"]["thresholds"]]
    assert [m.name for m in demo.table_models] == [
        f"{method}/demo/{cfg['sampling']['strategy']}/{cut}" for method in cfg["methods"] for cut in demo.cuts
    ]
    assert demo.table_pair_names == [
        f"{m}/{cfg['sampling']['strategy']}/{c}" for m in cfg["methods"] for c in demo.cuts
    ]
    # the tables' models first, then every ablation point beyond them, each once
    assert list(demo.models)[: len(demo.table_models)] == [m.name for m in demo.table_models]
    points = {name for names in demo.ablation_models.values() for name in names}
    assert set(demo.models) == {m.name for m in demo.table_models} | points
    cuts = demo.model_cuts["demo"]
    assert cuts == sorted(cuts, key=lambda c: tuple(map(float, c[1:].split("_d"))))  # loosest last
    assert demo.health_pair_sets["demo"] == [f"{m.method}/{m.sampling}/{m.cut}" for m in demo.models.values()]
    assert [series.rsplit("/", 1)[1] for series in demo.health_cut_series["demo"]] == cuts


def test_table_pair_sets_are_read_per_shard_and_any_other_per_group_of_shards():
    demo = demo_plan()
    demo.pair_groups["demo"] = ["00000-00001"]  # as with shards_per_pair_job: 2
    table_set = demo.table_pair_names[0]
    pattern = "results/{dataset}/pairs/{name}/{shard}.parquet"
    assert demo.pair_files_of("demo", [table_set], pattern) == [
        f"results/demo/pairs/{table_set}/00000.parquet",
        f"results/demo/pairs/{table_set}/00001.parquet",
    ]
    other = "pico/random/g0.5_d9"
    assert demo.pair_files_of("demo", [other], pattern) == [f"results/demo/pairs/{other}/00000-00001.parquet"]
    assert demo.per_model("{model}") == [m.name for m in demo.table_models]


def test_a_group_of_shards_is_named_by_its_first_and_last_shard():
    names = list(plan.shards([{"video": str(i)} for i in range(11)], 1))
    groups = plan.shard_groups(names, 4)
    assert groups == ["00000-00003", "00004-00007", "00008-00010"]
    assert [s for g in groups for s in plan.grouped(g)] == names  # every shard once, in order
    assert plan.shard_groups(names, 1) == names and plan.grouped("00007") == ["00007"]


def test_the_ablation_pair_method_constraint_leaves_table_1s_sets_to_cut_pairs():
    import re

    demo = demo_plan()
    method = re.compile(demo.ablation_pair_method)
    strategy = demo.config["sampling"]["strategy"]
    for name in demo.table_pair_names:
        assert not method.match(name + "/00000.parquet"), name
    assert method.match(f"pico/{strategy}/g0.5_d9/00000.parquet")  # an ablation's cut
    other = "random" if strategy == "anchor" else "anchor"
    assert method.match(f"pico/{other}/{next(iter(demo.cuts))}/00000.parquet")  # another sampling on a tables' cut


def test_the_reproduction_plan_and_its_checks():
    demo = demo_plan(reproduction={"seeds": [0, 1], "methods": ["pico", "shuffled"], "figure4": {"dataset": "demo"}})
    strategy = demo.config["sampling"]["strategy"]
    assert demo.reproduction.table == [
        f"{method}/demo/{strategy}/{cut}" for cut in demo.cuts for method in ("pico", "shuffled")
    ]
    assert demo.reproduction.scored == [(s, m) for s in (0, 1) for m in demo.reproduction.table]
    probed = [m for s, m in demo.reproduction.probed if s == 0]
    assert probed[: len(demo.reproduction.table)] == demo.reproduction.table and len(probed) == len(set(probed))
    assert set(demo.reproduction.figures["figure4"]) <= set(probed)
    with pytest.raises(pcfg.ConfigError, match="must start with pico and hold shuffled"):
        demo_plan(reproduction={"seeds": [0], "methods": ["pico", "static_video"]})
    with pytest.raises(pcfg.ConfigError, match="reproduction.figure4.dataset: 'nowhere'"):
        demo_plan(reproduction={"seeds": [0], "methods": ["pico", "shuffled"], "figure4": {"dataset": "nowhere"}})


def test_correspondence_pair_names_must_be_unique_and_not_the_demos():
    cfg = demo_plan().config
    for names, clash in ((["demo_a"], "demo_a"), (["aloe", "aloe"], "aloe")):
        cfg["benchmarks"]["correspondence"]["pairs"] = [
            {"name": n, "image_a": "a.png", "image_b": "b.png"} for n in names
        ]
        with pytest.raises(pcfg.ConfigError, match=f"names must be unique and not start with 'demo'.*: {clash}$"):
            plan.Plan(cfg)


def test_track_quality_scores_every_set_backend_and_cut():
    tq = demo_plan().track_quality
    assert tq.scores == [
        f"results/track_quality/{truth}/{backend}/{cut}.json"
        for truth in tq.sets
        for backend in tq.backends
        for cut in tq.cuts
    ]
    assert tq.demo and tq.codec.startswith("tiled q")


def test_the_deprecated_demo_gap_replaces_the_demo_gaps_by_its_one_gap_in_frames():
    def gaps(correspondence):
        cfg = validate({"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"correspondence": correspondence}})
        return plan.demo_gaps(cfg["benchmarks"]["correspondence"])

    assert gaps({}) == [3, 6, 12] and gaps({"demo_gaps": [1, 30]}) == [1, 30]
    assert gaps({"demo_gap": 0.5}) == [15] and gaps({"demo_gap": 0.1, "demo_gaps": [1, 30]}) == [3]
    settings = plan.correspondence_settings(
        validate({"datasets": {"d": {"source": "synthetic"}}, "benchmarks": {"correspondence": {"demo_gap": 0.1}}})
    )
    assert settings["demo_gaps"] == [3] and not {"demo_gap", "device"} & settings.keys()


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
    assert plan.demo_world(cfg) == cfg["datasets"]["s"]["synthetic"]["world"]
    assert plan.demo_world(cfg)["speed"] == [0.35, 0.8] and plan.demo_world(cfg)["pan"] == [0.0, 0.08]
    cfg = validate({"datasets": {"s": {"source": "synthetic"}}, "benchmarks": {"demo": {"world": {"spin": [0, 1]}}}})
    assert plan.demo_world(cfg)["spin"] == [0, 1] and plan.demo_world(cfg)["speed"] == [0.08, 0.25]
    assert plan.demo_world(validate({"datasets": {"k": {"source": "local", "path": str(REPO)}}})) == {}


def test_evaluation_roots_fall_back_to_the_demo_data_only_without_coco():
    cfg = validate({"datasets": {"demo": {"source": "synthetic"}}})
    roots = plan.evaluation_roots(cfg)
    assert roots["coco_probe"] == roots["coco_maskrcnn"] == plan.DEMO_DATA_ROOTS["coco"]
    assert roots["nyu_depth"] == plan.DEMO_DATA_ROOTS["nyu"] and roots["voc"] is None
    assert plan.on_demo_data(cfg, "coco_probe") and plan.on_demo_data(cfg, "nyu_depth")
    cfg["benchmarks"]["coco_root"] = "/data/coco"
    roots = plan.evaluation_roots(cfg)
    assert roots["coco_probe"] == "/data/coco" and roots["nyu_depth"] is None  # no demo NYU beside real COCO
    assert not plan.on_demo_data(cfg, "coco_probe")
    assert plan.Plan(cfg).evaluations == ["coco_probe", "coco_maskrcnn"]


def test_flow_settings_are_the_chosen_backends_and_codecs_alone():
    flow = validate({"datasets": {"demo": {"source": "synthetic"}}})["flow"]
    flow.update(backend="dis", device="cuda", batch_size=8)
    flow["codec"].update(scheme="frame_range", bound=40)
    settings = rerun.result_settings("flow", flow)
    assert list(settings) == ["backend", "dis_preset", "dis_refine", "codec"]
    assert "bound" not in settings["codec"] and "step" not in settings["codec"]
    flow["codec"]["scheme"] = "fixed"
    assert rerun.result_settings("flow", flow)["codec"]["bound"] == 40
    flow["codec"].update(scheme="tiled", step=0.05)
    assert {"bound", "step"} & rerun.result_settings("flow", flow)["codec"].keys() == {"step"}
    flow["backend"] = "raft_small"
    assert list(rerun.result_settings("flow", flow)) == ["backend", "weights", "iters", "precision", "codec"]
    assert list(rerun.result_settings("flow", {**flow, "backend": "rlof"})) == ["backend", "codec"]


@pytest.mark.parametrize("block", ["pretrain", "encoder", "shot_detection", "correspondence", "propagation"])
def test_a_blocks_result_settings_are_its_keys_but_the_runtime_ones(block):
    cfg = validate({"datasets": {"demo": {"source": "synthetic"}}})
    settings = cfg["benchmarks"][block] if block in ("correspondence", "propagation") else cfg[block]
    kept = rerun.result_settings(block, settings)
    assert set(kept) == set(settings) - set(rerun.RUNTIME_KEYS[block])
    assert set(rerun.RUNTIME_KEYS[block]) <= set(settings)  # every runtime key is a key of the block
    seeded = rerun.job_settings(cfg, block, {**kept, "seed": 7}) if block in ("pretrain", "encoder") else None
    assert seeded is None or (seeded["seed"] == 7 and seeded.keys() == settings.keys())


def test_every_benchmarks_runtime_keys_are_its_own():
    cfg = validate({"datasets": {"demo": {"source": "synthetic"}}})
    for benchmark in ("coco_probe", "coco_maskrcnn", "voc", "cityscapes", "nyu_depth"):
        settings = plan.evaluation_settings(cfg, benchmark)
        assert set(rerun.RUNTIME_KEYS["evaluation"]) <= set(settings), benchmark


def test_the_methods_are_the_schemas():
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["properties"]["methods"]["items"]["enum"] == list(pcfg.METHODS)


def test_the_flow_backends_are_the_schemas_and_torchvisions():
    from torchvision.models import optical_flow as of

    schema = yaml.safe_load(SCHEMA.read_text())
    flow = schema["properties"]["flow"]["properties"]
    assert flow["backend"]["enum"] == list(BACKENDS)
    tapvid = schema["properties"]["benchmarks"]["properties"]["tapvid"]["properties"]["grid"]["properties"]
    assert tapvid["backends"]["items"]["enum"] == list(BACKENDS)
    for backend in BACKENDS.values():
        assert set(backend.settings) <= set(flow), backend.name
        if backend.family == "raft":
            enum, member = backend.default_weights.split(".")
            assert getattr(getattr(of, enum), member).url == backend.url and callable(getattr(of, backend.builder))
            assert backend.on_gpu and backend.weights_file.endswith(f"-{backend.sha256_prefix}.pth")
        else:
            assert not backend.on_gpu and not backend.url
    assert plan.flow_weights({"backend": "raft", "weights": "default"}) == [
        "results/weights/raft_large_C_T_SKHT_V2-ff5fadd5.pth"
    ]
    assert plan.flow_weights({"backend": "raft", "weights": "my.pth"}) == ["my.pth"]
    assert plan.flow_weights({"backend": "dis", "weights": "default"}) == []


def test_the_weights_check_names_only_the_files_the_run_fetches(monkeypatch, tmp_path):
    from pico.data import weights

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(weights, "reachable", lambda url, timeout=3.0: "offline")
    flow = yaml.safe_load((REPO / "config/config.yaml").read_text())["flow"]
    raft = demo_plan(flow={**flow, "backend": "raft_small", "weights": "default"})
    (name,) = raft.fetched_weights
    assert raft.unfetchable([]) == []  # `snakemake videos`: no flow, nothing to fetch
    (problem,) = raft.unfetchable([name])
    assert "flow.weights: default needs" in problem and name in problem


def test_source_lists_are_cached_until_their_file_or_settings_change(tmp_path, monkeypatch):
    from pico.data import sources

    csv_file = tmp_path / "k400.csv"
    csv_file.write_text("label,youtube_id,time_start,time_end,split\nrun,abcdefghijk,0,10,train\n")
    dataset = {"source": "kinetics", "csv": str(csv_file), "url_template": "https://youtu.be/{id}"}
    cache = tmp_path / "cache"
    first = sources.cached_entries(dataset, 0, name="k", cache=cache)
    assert [e["video"] for e in first] == ["abcdefghijk_000000_000010"] and len(list(cache.iterdir())) == 1
    read = []
    monkeypatch.setattr(sources, "entries", lambda *a, **k: read.append(a) or sources.kinetics_entries(csv_file, "x"))
    assert sources.cached_entries(dataset, 0, name="k", cache=cache) == first and not read  # from the cache
    csv_file.write_text(csv_file.read_text() + "jump,bcdefghijkl,5,15,train\n")  # a new row: another size
    assert len(sources.cached_entries(dataset, 0, name="k", cache=cache)) == 2 and len(read) == 1
    for damaged in cache.iterdir():
        damaged.write_bytes(b"\x80not a pickle")
    assert len(sources.cached_entries(dataset, 0, name="k", cache=cache)) == 2 and len(read) == 2  # read afresh
    sources.cached_entries({**dataset, "limit": 1}, 0, name="k", cache=cache)
    assert len(read) == 3  # other settings, another key
