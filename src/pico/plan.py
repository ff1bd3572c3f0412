"""The plan: everything the workflow builds, computed once from a validated config.

rules/common.smk makes one ``Plan`` at parse time; every rule reads its named fields and the
input functions beside it (``get_*``), and no rules file derives state of its own. The plan is
made wherever Snakemake parses the workflow: once for the run, and again in every cluster job.
So it stays light: it imports the standard library, ``pico.config``, ``pico.rerun``,
``pico.flow_backends``, the source lists of ``pico.data.sources`` and the weights fetch of
``pico.data.weights`` (``tests/test_ablations.py`` checks that no numpy, pyarrow or torch
loads). It sits above every layer of the package and no module of the package imports it.

A model is trained on one (method, dataset, sampling, cut); a cut is one (gamma, delta) of
Eq. 3; a pair set is ``method/sampling/cut`` of a dataset, drawn one shard a job for Table 1's
sets on the tables' cuts and one group of shards a job for any other, an ablation's.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from pico.config import (
    CONTROL,
    DEMO_FPS,
    METHODS,
    REPRODUCTION_FIGURES,
    ConfigError,
    Model,
    cut_name,
    grids_outside_config,
)
from pico.data import sources, weights
from pico.flow_backends import BACKENDS
from pico.rerun import result_settings

#: Where the workflow generates the demo's benchmark data (rules demo_coco, demo_nyu).
DEMO_DATA_ROOTS = {"coco": "results/benchmark_data/demo_coco", "nyu": "results/benchmark_data/demo_nyu"}
#: Label propagation's radius in the literature, px at 480p: 12 cells at stride 8 (Jabri et al. 2020).
PROPAGATION_RADIUS_AT_480P = 96
#: The dataset name of TAP-Vid's own videos (``benchmarks.tapvid.root``) in track_quality's paths.
TAPVID_DATASET = "tapvid"
#: The source size (4:3) of track_quality's synthetic videos for a dataset of real videos.
TAPVID_ASPECT = (4, 3)
#: Where the demo's correspondence pairs and label-propagation videos are generated.
DEMO_CORRESPONDENCE = "results/benchmark_data/demo_correspondence"
DEMO_PROPAGATION = "results/benchmark_data/demo_propagation"


def shards(found: list[dict], per_shard: int) -> dict[str, list[dict]]:
    """Consecutive groups of ``per_shard`` entries, named ``00000``, ``00001``, ..."""
    return {f"{i // per_shard:05d}": found[i : i + per_shard] for i in range(0, len(found), per_shard)}


def shard_groups(names: list[str], per_group: int) -> list[str]:
    """Consecutive groups of ``per_group`` of the shards ``names`` (``shards``' order), each
    named by its first and last shard, ``00000-00003``; with ``per_group`` 1, the shards'
    own names (an ablation's pair files, ``datasets.<name>.shards_per_pair_job``)."""
    if per_group == 1:
        return list(names)
    return [f"{names[i]}-{names[min(i + per_group, len(names)) - 1]}" for i in range(0, len(names), per_group)]


def grouped(group: str) -> list[str]:
    """The shards of a ``shard_groups`` name: ``00004-00006`` -> 00004, 00005, 00006; a
    shard's own name -> itself."""
    first, _, last = group.partition("-")
    return [f"{i:05d}" for i in range(int(first), int(last or first) + 1)]


def ablation_points(spec: dict) -> list[Model]:
    """The model of every point of one figure's grid (Section 4.3, ``ablations.figureN``)."""
    return [
        Model(spec["method"], spec["dataset"], sampling, gamma, delta)
        for sampling, gamma, delta in itertools.product(spec["sampling"], spec["gammas"], spec["deltas"])
    ]


def ablation_models(spec: dict) -> list[str]:
    """The name of every point's model of one figure's grid (``pico.config.Model.name``)."""
    return [point.name for point in ablation_points(spec)]


def evaluation_roots(config: dict) -> dict[str, str | None]:
    """Each benchmark's data root (``pico.evaluation.registry.TITLES`` names them): the
    configured one; without ``benchmarks.coco_root`` the COCO benchmarks run on the demo's
    generated COCO, and NYU-depth on the demo's NYU unless its root is set. None: not run."""
    benchmarks = config["benchmarks"]
    coco = benchmarks["coco_root"] or DEMO_DATA_ROOTS["coco"]
    nyu = benchmarks["nyu"]["root"] or (DEMO_DATA_ROOTS["nyu"] if benchmarks["coco_root"] is None else None)
    return {
        "coco_probe": coco,
        "coco_maskrcnn": coco,
        "voc": benchmarks["voc"]["root"],
        "cityscapes": benchmarks["cityscapes"]["root"],
        "nyu_depth": nyu,
    }


def on_demo_data(config: dict, benchmark: str) -> bool:
    """Whether ``benchmark`` runs on the demo's generated data (its outputs then say so)."""
    return evaluation_roots(config)[benchmark] in DEMO_DATA_ROOTS.values()


def evaluation_settings(config: dict, benchmark: str) -> dict:
    """The settings of one benchmark (``pico.evaluation.registry.TITLES`` names them) from ``benchmarks``."""
    b = config["benchmarks"]
    return {
        "coco_probe": b["probe"],
        "coco_maskrcnn": b["maskrcnn"],
        "voc": b["voc"]["probe"],
        "cityscapes": b["cityscapes"]["probe"],
        "nyu_depth": {**b["nyu"]["probe"], "depth_scale": b["nyu"]["depth_scale"]},
    }[benchmark]


def demo_world(config: dict) -> dict:
    """The ``world`` settings the demo benchmarks are drawn from: ``benchmarks.demo.world`` where
    set, else the first synthetic dataset's (evaluation images from the pretraining videos'
    world), else ``{}`` (the default ``synthetic.World()``)."""
    if "world" in config["benchmarks"]["demo"]:
        return config["benchmarks"]["demo"]["world"]
    synthetic = [d["synthetic"]["world"] for d in config["datasets"].values() if d["source"] == "synthetic"]
    return synthetic[0] if synthetic else {}


def demo_gaps(correspondence: dict) -> list[int]:
    """The demo correspondence pairs' gaps in frames at DEMO_FPS (``benchmarks.correspondence``):
    ``demo_gaps``, or where the deprecated ``demo_gap`` (seconds) is set, that one gap alone
    (0.1 s = 3 frames)."""
    gap = correspondence["demo_gap"]
    return list(correspondence["demo_gaps"]) if gap is None else [round(gap * DEMO_FPS)]


def correspondence_settings(config: dict) -> dict:
    """``benchmarks.correspondence`` as its jobs score with it, the settings that change the
    scores (rerun triggers): the deprecated ``demo_gap`` through the gaps it gives, ``short_side``
    resolved (null: ``frames.short_side``), and with soft-argmax refinement the pretext's temperature."""
    settings = config["benchmarks"]["correspondence"]
    resolved = {
        **result_settings("correspondence", settings),
        "demo_gaps": demo_gaps(settings),
        "short_side": settings["short_side"] or config["frames"]["short_side"],
    }
    if settings["refinement"] == "soft_argmax":
        resolved["temperature"] = config["pretrain"]["temperature"]
    return resolved


def propagation_settings(config: dict) -> dict:
    """``benchmarks.propagation`` as its jobs use it, the settings that change the scores (rerun
    triggers): ``short_side`` (null: ``frames.short_side``) and ``radius_px`` (null: 96 px at
    480p scaled to that short side) resolved; ``demo_videos`` changes nothing when a root is set."""
    settings = config["benchmarks"]["propagation"]
    short_side = settings["short_side"] or config["frames"]["short_side"]
    return {
        **{
            k: v
            for k, v in result_settings("propagation", settings).items()
            if not (k == "demo_videos" and settings["root"])
        },
        "short_side": short_side,
        "radius_px": settings["radius_px"] or PROPAGATION_RADIUS_AT_480P * short_side / 480,
    }


def tapvid_sets(config: dict) -> dict[str, dict]:
    """track_quality's ground-truth sets, {dataset name in paths: what makes its videos} (the
    rerun triggers of its ``tapvid_truth`` job): with ``benchmarks.tapvid.root``, TAP-Vid's
    pickles as ``tapvid``; else per configured dataset fresh scenes of its synthetic world (a
    dataset of real videos: ``demo_world``'s, 4:3) at ``frames.fps``, rendered at the size of its
    frames (``source_size`` scaled to ``short_side``)."""
    tapvid = config["benchmarks"]["tapvid"]
    if tapvid["root"]:
        return {TAPVID_DATASET: {"root": tapvid["root"]}}
    common = {
        "seed": config["seed"],
        **{k: tapvid[k] for k in ("videos", "frames", "points")},
        "fps": config["frames"]["fps"],
        "short_side": config["frames"]["short_side"],
    }
    sets = {}
    for name, ds in config["datasets"].items():
        synthetic = ds["synthetic"] if ds["source"] == "synthetic" else None
        size = [synthetic["width"], synthetic["height"]] if synthetic else list(TAPVID_ASPECT)
        sets[name] = {**common, "source_size": size, "world": synthetic["world"] if synthetic else demo_world(config)}
    return sets


def tapvid_backends(config: dict) -> list[str]:
    """track_quality's flow backends: ``benchmarks.tapvid.grid.backends``, else ``flow.backend``."""
    return config["benchmarks"]["tapvid"]["grid"]["backends"] or [config["flow"]["backend"]]


def tapvid_cuts(config: dict) -> dict[str, dict]:
    """track_quality's cuts, {``cut_name``: {gamma, delta, motion_boundary: [settings]}}: one per
    (γ, δ) of ``benchmarks.tapvid.grid.cuts`` (else of ``tracking.thresholds`` with
    ``tracking.motion_boundary``), each with the motion-boundary settings asked for at it."""
    grid = config["benchmarks"]["tapvid"]["grid"]["cuts"]
    if grid is None:
        mb = config["tracking"]["motion_boundary"]
        grid = [{"gamma": g, "delta": d, "motion_boundary": mb} for g, d in config["tracking"]["thresholds"]]
    cuts: dict[str, dict] = {}
    for cut in grid:
        entry = cuts.setdefault(
            cut_name(cut["gamma"], cut["delta"]),
            {"gamma": float(cut["gamma"]), "delta": float(cut["delta"]), "motion_boundary": []},
        )
        entry["motion_boundary"] = sorted({*entry["motion_boundary"], cut["motion_boundary"]})
    return cuts


def tapvid_flow(config: dict, backend: str) -> dict:
    """The ``flow`` settings track_quality estimates with for ``backend``: the configured ones,
    that backend. Another backend than ``flow.backend`` takes its default weights, since
    ``flow.weights`` names a file of the configured backend (raft and raft_small differ)."""
    flow = config["flow"]
    return {**flow, "backend": backend, "weights": flow["weights"] if backend == flow["backend"] else "default"}


def local_file(path: str | None) -> list[str]:
    """A file the config names (weights, a checkpoint, TAP-Vid's root) as an input: replacing
    it reruns its users. Nothing for torchvision's default weights or an unset key."""
    return [] if path in (None, "default") else [path]


def flow_weights(flow: dict) -> list[str]:
    """The weights file a flow job with the settings ``flow`` reads, as an input: RAFT's fetched
    default or the configured file; nothing for a backend without weights."""
    if not BACKENDS[flow["backend"]].url:
        return []
    return [weights.default_file(flow["backend"])] if flow["weights"] == "default" else local_file(flow["weights"])


def flow_on_gpu(flow: dict) -> bool:
    """Whether flow jobs with the settings ``flow`` ask for a GPU."""
    return BACKENDS[flow["backend"]].on_gpu and flow["device"] != "cpu"


@dataclass(frozen=True)
class Reproduction:
    """The mini-reproduction (rules/reproduction.smk, docs/reproduction.md)."""

    seeds: list[int]
    #: Table 1's model of each of ``reproduction.methods`` at the tables' first cut
    table: list[str]
    #: {figure: the model of every point}
    figures: dict[str, list[str]]
    #: every (seed, model) pretrained and probed: the table's models and the figures' points, each once
    probed: list[tuple[int, str]]
    #: every (seed, model) also scored on correspondence and label propagation: the table's
    scored: list[tuple[int, str]]


@dataclass(frozen=True)
class TrackQuality:
    """Pico's tracks scored as TAP-Vid scores point tracking (rules/track_quality.smk)."""

    sets: dict[str, dict]
    backends: list[str]
    #: {backend: the ``flow`` settings its tapvid_flow jobs estimate with (``tapvid_flow``)}
    flows: dict[str, dict]
    cuts: dict[str, dict]
    #: every score file of the table
    scores: list[str]
    #: the flow codec as the table's rows name it
    codec: str
    demo: bool


class Plan:
    """What one config builds (module docstring). Every field is computed on construction."""

    def __init__(self, config: dict):
        self.config = config
        #: {dataset: {shard name: its videos (``pico.data.sources.entries``)}}
        self.shards = {
            name: shards(sources.cached_entries(ds, config["seed"], name=name), ds["videos_per_shard"])
            for name, ds in config["datasets"].items()
        }
        #: {dataset: the shard groups an ablation's pair set is drawn in, a job each}
        self.pair_groups = {
            name: shard_groups(list(found), config["datasets"][name]["shards_per_pair_job"])
            for name, found in self.shards.items()
        }
        #: the tables' (gamma, delta) cuts, ``tracking.thresholds``: {cut name: (gamma, delta)}
        self.cuts = {cut_name(g, d): (float(g), float(d)) for g, d in config["tracking"]["thresholds"]}
        strategy = config["sampling"]["strategy"]
        #: Table 1's pair sets without their cut, ``method/sampling``; and with each of the tables' cuts
        self.table_pair_sets = [f"{method}/{strategy}" for method in config["methods"]]
        self.table_pair_names = [f"{pair_set}/{cut}" for pair_set in self.table_pair_sets for cut in self.cuts]
        #: every model of the benchmark tables (Tables 1-3)
        self.table_models = [
            Model(method, dataset, strategy, gamma, delta)
            for method in config["methods"]
            for dataset in self.shards
            for gamma, delta in config["tracking"]["thresholds"]
        ]
        #: Section 4.3's ablation grids: {figure: the model of every point}
        self.ablation_models = {figure: ablation_models(spec) for figure, spec in config["ablations"].items()}
        #: every configured model, each once, {name: Model}: the tables' models, then the ablation points beyond them
        self.models = {
            model.name: model
            for model in self.table_models
            + [point for spec in config["ablations"].values() for point in ablation_points(spec)]
        }
        #: {dataset: the cuts its configured models train on, loosest last}
        self.model_cuts = {
            dataset: list(
                dict.fromkeys(
                    model.cut
                    for model in sorted(self.models.values(), key=lambda m: (m.gamma, m.delta))
                    if model.dataset == dataset
                )
            )
            for dataset in self.shards
        }
        #: the settings of a pair set's draws (a rerun trigger): the seed and the sampling block
        #: less the strategy, which the set's path names
        self.pair_settings = {
            "seed": config["seed"],
            **{k: v for k, v in config["sampling"].items() if k != "strategy"},
        }
        #: the tracking settings of the raw tracks; the cuts take the thresholds and motion_boundary
        self.raw_tracking = {k: config["tracking"][k] for k in ("points_per_video", "seed", "max_gamma", "max_delta")}
        # A lookahead from {method} over the rest of the path: any pair set but Table 1's on a
        # tables' cut, which rule cut_pairs writes.
        self.ablation_pair_method = "(?!(?:{})/)(?:{})".format(
            "|".join(map(re.escape, self.table_pair_names)), "|".join(METHODS)
        )
        self._plan_health()
        self.track_quality = self._track_quality()
        self._plan_flow()
        self._plan_evaluation()
        self.reproduction = self._reproduction()

    def _plan_health(self) -> None:
        models = self.models.values()
        #: {dataset: the pair sets of every configured model, the data health page's}
        self.health_pair_sets = {
            dataset: [f"{m.method}/{m.sampling}/{m.cut}" for m in models if m.dataset == dataset]
            for dataset in self.shards
        }
        # An ablation's cut is made by its pair jobs and has no file of its own, so each cut's
        # track lengths are read from the summaries of the first pair set drawn from it.
        self.health_cut_series = {
            dataset: [
                next(f"{m.method}/{m.sampling}/{m.cut}" for m in models if m.dataset == dataset and m.cut == cut)
                for cut in self.model_cuts[dataset]
            ]
            for dataset in self.shards
        }

    def _plan_flow(self) -> None:
        flow = self.config["flow"]
        #: the flow settings of every flow job: the flow stage's, and track_quality's per backend
        self.flow_settings = [flow, *self.track_quality.flows.values()]
        #: the default weights the run fetches once (rule flow_weights), {file name: backend}
        self.fetched_weights = {
            BACKENDS[f["backend"]].weights_file: f["backend"]
            for f in self.flow_settings
            if BACKENDS[f["backend"]].url and f["weights"] == "default"
        }
        self.flow_on_gpu = flow_on_gpu(flow)
        #: generous minutes per snippet of a flow job, on the device it asks for
        backend = BACKENDS[flow["backend"]]
        self.flow_minutes = backend.gpu_minutes if self.flow_on_gpu else backend.cpu_minutes

    def _plan_evaluation(self) -> None:
        config, benchmarks = self.config, self.config["benchmarks"]
        #: whether pretraining and the benchmarks beyond the paper ask for a GPU
        self.pretrain_on_gpu = config["pretrain"]["device"] != "cpu"
        self.correspondence_on_gpu = benchmarks["correspondence"]["device"] != "cpu"
        self.propagation_on_gpu = benchmarks["propagation"]["device"] != "cpu"
        #: {benchmark: its data root or None}, and the benchmarks that run
        self.evaluation_roots = evaluation_roots(config)
        self.evaluations = [name for name, root in self.evaluation_roots.items() if root]
        #: whether the COCO probe (so the ablations and the reproduction) runs on demo data
        self.demo_benchmark = on_demo_data(config, "coco_probe")
        #: the demo data's size and the world it is drawn from
        self.demo_settings = {k: v for k, v in benchmarks["demo"].items() if k != "world"}
        self.demo_world = demo_world(config)
        #: Table 1's MoCo-v2 encoder file, an input where one is named
        self.moco_v2_file = local_file(benchmarks["moco_v2_checkpoint"] or config["model"]["encoder_checkpoint"])
        self.encoder_file = local_file(config["model"]["encoder_checkpoint"])
        correspondence = benchmarks["correspondence"]
        names = [pair["name"] for pair in correspondence["pairs"]]
        clashes = sorted({n for n in names if names.count(n) > 1} | {n for n in names if n.startswith("demo")})
        if clashes:
            raise ConfigError(
                "benchmarks.correspondence.pairs: names must be unique and not start with 'demo' "
                f"(the demo pairs' names): {', '.join(clashes)}"
            )
        #: every file the configured correspondence pairs name, as inputs: replacing one reruns the benchmark
        self.correspondence_files = [
            pair[key]
            for pair in correspondence["pairs"]
            for key in ("image_a", "image_b", "disparity", "flow")
            if key in pair
        ]
        self.correspondence_settings = correspondence_settings(config)
        self.correspondence_demo = bool(correspondence["demo_pairs"])
        self.propagation_settings = propagation_settings(config)
        self.propagation_demo = benchmarks["propagation"]["root"] is None
        self.propagation_data = benchmarks["propagation"]["root"] or DEMO_PROPAGATION
        #: what the config says that still works but is on its way out
        self.warnings = (
            []
            if correspondence["demo_gap"] is None
            else [
                "benchmarks.correspondence.demo_gap is deprecated: the demo pairs use its one gap, "
                f"{demo_gaps(correspondence)[0]} frames, in place of demo_gaps; "
                "give benchmarks.correspondence.demo_gaps (frames at 30 Hz) instead"
            ]
        )

    def _reproduction(self) -> Reproduction:
        spec = self.config["reproduction"]
        problems = grids_outside_config(
            self.config, "reproduction", {figure: spec[figure] for figure in REPRODUCTION_FIGURES if figure in spec}
        )
        if spec["methods"][0] != "pico" or CONTROL not in spec["methods"]:
            problems.append(
                f"reproduction.methods: {spec['methods']} must start with pico and hold {CONTROL} (the gate's control)"
            )
        if problems:
            raise ConfigError("; ".join(problems))
        first = self.table_models[0].method
        table = [
            Model(method, m.dataset, m.sampling, m.gamma, m.delta).name
            for m in self.table_models
            if m.method == first
            for method in spec["methods"]
        ]
        figures = {figure: ablation_models(spec[figure]) for figure in REPRODUCTION_FIGURES if figure in spec}
        probed = list(dict.fromkeys(table + [m for ms in figures.values() for m in ms]))
        return Reproduction(
            seeds=spec["seeds"],
            table=table,
            figures=figures,
            probed=[(seed, model) for seed in spec["seeds"] for model in probed],
            scored=[(seed, model) for seed in spec["seeds"] for model in table],
        )

    def _track_quality(self) -> TrackQuality:
        config = self.config
        sets, backends, cuts = tapvid_sets(config), tapvid_backends(config), tapvid_cuts(config)
        codec = config["flow"]["codec"]
        return TrackQuality(
            sets=sets,
            backends=backends,
            flows={backend: tapvid_flow(config, backend) for backend in backends},
            cuts=cuts,
            scores=[
                f"results/track_quality/{truth}/{backend}/{cut}.json"
                for truth in sets
                for backend in backends
                for cut in cuts
            ],
            codec=f"{codec['scheme']} q{codec['quality']}",
            demo=config["benchmarks"]["tapvid"]["root"] is None,
        )

    def unfetchable(self, fetched) -> list[str]:
        """Why each default weights file of ``fetched`` (file names the run fetches now) cannot be
        fetched from this machine, where it cannot (``pico.data.weights.check_fetchable``)."""
        backends = {self.fetched_weights[name] for name in fetched}
        found = (weights.check_fetchable(f) for f in self.flow_settings if f["backend"] in backends)
        return list(dict.fromkeys(problem for problem in found if problem))

    def per_shard(self, pattern: str, **fixed) -> list[str]:
        """``pattern`` for every shard of every configured dataset (other fields from ``fixed``)."""
        return [
            pattern.format(dataset=name, shard=shard, **fixed) for name, found in self.shards.items() for shard in found
        ]

    def per_model(self, pattern: str) -> list[str]:
        """``pattern`` with {model} = the name of every model of the benchmark tables."""
        return [pattern.format(model=m.name) for m in self.table_models]

    def pair_files_of(self, dataset: str, names: list[str], pattern: str, **fields) -> list[str]:
        """``pattern`` for every file ({shard}) of every pair set {name} of ``dataset``: a
        shard's for Table 1's sets on the tables' cuts, a group's for any other."""
        return [
            pattern.format(name=name, shard=s, dataset=dataset, **fields)
            for name in names
            for s in (self.shards[dataset] if name in self.table_pair_names else self.pair_groups[dataset])
        ]

    def model_cut_files(self, pattern: str) -> list[str]:
        """``pattern`` for every shard of every cut a configured model trains on ({dataset}, {cut}, {shard})."""
        return [
            pattern.format(dataset=dataset, cut=cut, shard=shard)
            for dataset, cuts in self.model_cuts.items()
            for cut in cuts
            for shard in self.shards[dataset]
        ]
