"""Configuration: JSON-schema validation with defaults, plus checks that need the file system."""

from __future__ import annotations

import copy
import json
import math
import os
import string
import sys
from pathlib import Path
from typing import NamedTuple

import jsonschema
import yaml

#: Pretraining methods (Sections 3-4): PiCO, the two static baselines and the negative control
#: ``shuffled`` (wrong correspondences, ``pico.data.pairs``).
METHODS = ("pico", "static_video", "static_frame", "shuffled")
#: The mini-reproduction's negative control among ``reproduction.methods``, which its gate
#: compares PiCO with (``pico.reporting.reproduction``).
CONTROL = "shuffled"
#: The figures a reproduction can repeat (``reproduction.figure4`` / ``figure5``).
REPRODUCTION_FIGURES = ("figure4", "figure5")

#: Benchmarks without a MoCo-v2 row: Mask R-CNN's FPN would be untrained (Table 2 has none).
WITHOUT_MOCO_V2 = ("coco_maskrcnn",)
#: The demo correspondence pairs' frame rate: ``benchmarks.correspondence.demo_gaps`` counts its frames.
DEMO_FPS = 30


def cut_name(gamma: float | str, delta: float | str) -> str:
    """A (gamma, delta) cut of Eq. 3 as paths name it: ``g{gamma}_d{delta}``, numbers as
    ``format(x, "g")``; strings (a path's wildcards) are read as numbers."""
    return f"g{float(gamma):g}_d{float(delta):g}"


def model_name(method: str, dataset: str, sampling: str, gamma: float | str, delta: float | str) -> str:
    """A pretrained model as paths name it: ``method/dataset/sampling/g{gamma}_d{delta}``
    (``results/models/{model}/model.pt``, ``results/benchmarks/{benchmark}/{model}.json``)."""
    return f"{method}/{dataset}/{sampling}/{cut_name(gamma, delta)}"


class Model(NamedTuple):
    """One pretrained model of the workflow: what it is trained with, and so where it lives
    (``results/models/{name}/model.pt``)."""

    method: str  # one of METHODS
    dataset: str  # a key of config["datasets"]
    sampling: str  # "anchor" or "random" (Section 3.3)
    gamma: float  # Eq. 3's thresholds of the tracks it is trained on
    delta: float

    @property
    def name(self) -> str:
        """``model_name`` of its fields: ``method/dataset/sampling/g{gamma}_d{delta}``."""
        return model_name(*self)

    @property
    def cut(self) -> str:
        """``cut_name`` of its thresholds: ``g{gamma}_d{delta}``."""
        return cut_name(self.gamma, self.delta)


def _demo_gap_in_frames(config: dict) -> list[str]:
    """The deprecated ``demo_gap`` (seconds) must be a whole number of frames at DEMO_FPS."""
    gap = config["benchmarks"]["correspondence"]["demo_gap"]
    if gap is None or (round(gap * DEMO_FPS) >= 1 and abs(gap * DEMO_FPS - round(gap * DEMO_FPS)) < 1e-6):
        return []
    return [
        f"benchmarks.correspondence.demo_gap: {gap:g} s is not a whole number of frames at {DEMO_FPS} Hz "
        "(it is deprecated: give benchmarks.correspondence.demo_gaps, in frames)"
    ]


class ConfigError(ValueError):
    """An invalid configuration; the message names every offending key."""


#: The most values (mappings, lists and scalars) a config may hold, each counted at every place
#: it appears: a YAML alias repeats a value wherever it is named, so a few hundred bytes of
#: nested aliases ("billion laughs") stand for billions of values, which validation would walk.
#: config/paper.yaml with its ablations holds about 360 once the defaults are filled in.
MAX_VALUES = 100_000
#: The deepest a value may lie (keys and list indices on its way); the schema's deepest lies 6 down.
MAX_DEPTH = 20
#: The longest string a config may hold: Linux's longest path (PATH_MAX).
MAX_STRING = 4096
#: The longest line of an error: a huge value in it is cut out of the middle.
MAX_LINE = 500
#: The most problems one error lists (the first ones), then how many more there are.
MAX_PROBLEMS = 50
#: The placeholders of a dataset's URL templates, as pico.data.sources and pico.data.yt8m fill
#: them in; {id} must be among them, or every video would have the same URL.
URL_PLACEHOLDERS = {"url_template": ("id",), "lookup_url": ("prefix", "id")}


def _extend_with_defaults(cls):
    """A validator class that fills each missing property from its schema ``default``."""
    check_properties = cls.VALIDATORS["properties"]

    def properties(validator, props, instance, schema):
        if isinstance(instance, dict):
            for key, sub in props.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, props, instance, schema)

    return jsonschema.validators.extend(cls, {"properties": properties})


def _strict(cls):
    """A validator class whose integers are ints alone, and which checks ``uniqueItems`` only
    on an array within its ``maxItems`` (a longer one is refused by that). JSON Schema counts
    2.0 an integer, but the code would carry the float on (``range(2.0)`` fails in a job, as
    numpy's seeding does on 1.0); jsonschema's uniqueness check is quadratic in an array of
    items it cannot sort: minutes for some thousands."""
    check_unique = cls.VALIDATORS["uniqueItems"]

    def unique_items(validator, unique, instance, schema):
        if not (validator.is_type(instance, "array") and len(instance) > schema.get("maxItems", math.inf)):
            yield from check_unique(validator, unique, instance, schema)

    checker = cls.TYPE_CHECKER.redefine("integer", lambda _, x: isinstance(x, int) and not isinstance(x, bool))
    return jsonschema.validators.extend(cls, {"uniqueItems": unique_items}, type_checker=checker)


_Validator = _strict(_extend_with_defaults(jsonschema.Draft7Validator))


def _key(path) -> str:
    return ".".join(str(p) for p in path) or "<top level>"


def _short(line: str) -> str:
    """``line`` at most about MAX_LINE characters: a huge value in it (aliases expanded, a pasted
    file) is cut out of its middle, so that the line keeps its key and its reason."""
    if len(line) <= MAX_LINE:
        return line
    keep = MAX_LINE // 2
    return f"{line[:keep]} ...[{len(line) - 2 * keep:,} characters]... {line[-keep:]}"


def _error(problems: list[str]) -> ConfigError:
    """A ConfigError listing ``problems`` (at most MAX_PROBLEMS, each line short)."""
    lines = [_short(p) for p in problems[:MAX_PROBLEMS]]
    if len(problems) > MAX_PROBLEMS:
        lines.append(f"... and {len(problems) - MAX_PROBLEMS:,} more problems")
    return ConfigError("invalid pico config:\n  " + "\n  ".join(lines))


def _walk(node, path: tuple = ()):
    """``(path, value)`` of ``node`` and of everything in it, depth first, a value that YAML
    aliases share at every place it appears; a value deeper than MAX_DEPTH is refused."""
    if len(path) > MAX_DEPTH:
        raise _error([f"{_key(path)}: nested deeper than {MAX_DEPTH} levels"])
    yield path, node
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield from _walk(value, (*path, key))


def _within_budget(config: dict) -> None:
    """Refuse a config of more than MAX_VALUES values before anything walks it whole, naming
    the key where the count ran out: with YAML aliases its size on disk bounds nothing."""
    for count, (path, _) in enumerate(_walk(config), start=1):
        if count > MAX_VALUES:
            raise _error(
                [
                    f"{_key(path)}: the config holds more than {MAX_VALUES:,} values by here, each counted "
                    "at every place a YAML alias repeats it (nested aliases?)"
                ]
            )


def _own_copies(node):
    """``node`` with each mapping and list its own copy, and -0.0 as 0.0. YAML aliases share one
    among several places, and the defaults filled into one would land in all (figure3's grid
    in a figure4 that aliases it); paths would name -0.0 ``-0``, another cut than 0."""
    if isinstance(node, dict):
        return {key: _own_copies(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_own_copies(value) for value in node]
    return node + 0.0 if isinstance(node, float) else node  # -0.0 + 0.0 is 0.0


def _value_problems(config: dict) -> list[str]:
    """What no schema keyword catches: NaN and infinity, which pass every bound (a comparison
    with NaN is false); keys that are not strings (YAML reads yes, no, on, off, numbers and
    dates so, unquoted); strings longer than MAX_STRING or holding a NUL."""
    problems = []
    for path, value in _walk(config):
        if isinstance(value, dict):
            problems += [
                f"{_key((*path, key))}: the key {key!r} ({type(key).__name__}) is not a string "
                "(YAML reads yes, no, on, off, numbers and dates so: quote it)"
                for key in value
                if not isinstance(key, str)
            ]
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{_key(path)}: {value} is not a finite number (YAML's .nan, .inf)")
        elif isinstance(value, str) and len(value) > MAX_STRING:
            problems.append(f"{_key(path)}: {len(value):,} characters, more than a path's {MAX_STRING:,}")
        elif isinstance(value, str) and "\0" in value:
            problems.append(f"{_key(path)}: {value!r} holds a NUL character, which no path or URL can")
    return problems


def _message(error: jsonschema.ValidationError) -> str:
    """jsonschema's message for ``error``, with a hint where a whole number is written as a float."""
    expected = error.validator_value if error.validator == "type" else ()
    if "integer" in expected and isinstance(error.instance, float) and error.instance.is_integer():
        return f"{error.message} (write it without a decimal point: {int(error.instance)})"
    return error.message


def validate(config: dict, schema_path: str | os.PathLike) -> dict:
    """Validate ``config`` in place against the schema, fill defaults, check paths exist.

    Raises ConfigError listing every problem as ``key: reason``; a config of more than
    MAX_VALUES values (YAML aliases counted wherever they repeat one) before walking it whole.
    """
    _within_budget(config)
    config.update(_own_copies(config))
    # libyaml's loader, where PyYAML has it: the pure-Python one takes 0.1 s of every parse
    schema = yaml.load(Path(schema_path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    problems = _value_problems(config) + [f"{_key(e.absolute_path)}: {_message(e)}" for e in errors]
    if not problems:
        problems = _missing_paths(config) + _thresholds_outside_bounds(config) + _processes_exceed_batch(config)
        problems += grids_outside_config(config, "ablations", config["ablations"]) + _numbers_paths_change(config)
        problems += _demo_gap_in_frames(config) + _template_problems(config)
    if problems:
        raise _error(problems)
    return config


def _template_problems(config: dict) -> list[str]:
    """A dataset's URL templates take their placeholders alone (URL_PLACEHOLDERS), plain, {id}
    among them: a job would fail on any other (KeyError, IndexError, an attribute's text in the
    URL), and without {id} every video would have one URL."""
    return [
        problem
        for name, dataset in config["datasets"].items()
        for key, names in URL_PLACEHOLDERS.items()
        if key in dataset and (problem := _template_problem(f"datasets.{name}.{key}", dataset[key], names))
    ]


def _template_problem(key: str, template: str, names: tuple[str, ...]) -> str | None:
    """What is wrong with the URL template ``template`` of config ``key``, whose placeholders
    are ``names``; None: nothing."""
    allowed = "its placeholders: " + ", ".join("{" + name + "}" for name in names) + " ({id} required)"
    try:
        fields = [field for field in string.Formatter().parse(template) if field[1] is not None]
    except ValueError as e:
        return f"{key}: {template!r} is not a template ({e}; write a literal brace twice); {allowed}"
    for _, name, spec, conversion in fields:
        if name not in names or spec or conversion:
            field = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            return f"{key}: {template!r} has the placeholder {{{field}}}; {allowed}"
    if "id" not in {name for _, name, _, _ in fields}:
        return f"{key}: {template!r} has no {{id}}: every video would have the same URL; {allowed}"
    return None


def _thresholds_outside_bounds(config: dict) -> list[str]:
    """Raw tracks stop at the loosest test, so every cut must be within it."""
    tracking = config["tracking"]
    return [
        f"tracking.thresholds.{i}: [{gamma:g}, {delta:g}] exceeds max_gamma {tracking['max_gamma']:g} "
        f"or max_delta {tracking['max_delta']:g}"
        for i, (gamma, delta) in enumerate(tracking["thresholds"])
        if gamma > tracking["max_gamma"] or delta > tracking["max_delta"]
    ]


def grids_outside_config(config: dict, key: str, grids: dict[str, dict]) -> list[str]:
    """Ablation-style grids (``{figure: {dataset, gammas, deltas, ...}}`` under config ``key``)
    pretrain on a configured dataset, on cuts within the raw tracks' bounds."""
    tracking, problems = config["tracking"], []
    for figure, spec in grids.items():
        if spec["dataset"] not in config["datasets"]:
            problems.append(
                f"{key}.{figure}.dataset: '{spec['dataset']}' is not one of datasets ({', '.join(config['datasets'])})"
            )
        for axis, bound in (("gammas", "max_gamma"), ("deltas", "max_delta")):
            problems += [
                f"{key}.{figure}.{axis}.{i}: {v:g} exceeds tracking.{bound} {tracking[bound]:g}"
                for i, v in enumerate(spec[axis])
                if v > tracking[bound]
            ]
    return problems


def _numbers_paths_change(config: dict) -> list[str]:
    """A cut is named by its numbers as ``format(x, "g")`` (``cut_name``) and computed from that
    name, so a gamma or delta it changes (beyond 6 significant digits) would silently be
    another value, or merge with another grid point: 0.1 and 0.1000001 both give g0.1."""
    numbers = [
        (f"tracking.thresholds.{i}.{j}", x)
        for i, cut in enumerate(config["tracking"]["thresholds"])
        for j, x in enumerate(cut)
    ]
    numbers += [
        (f"ablations.{figure}.{axis}.{i}", x)
        for figure, spec in config["ablations"].items()
        for axis in ("gammas", "deltas")
        for i, x in enumerate(spec[axis])
    ]
    numbers += [
        (f"benchmarks.tapvid.grid.cuts.{i}.{axis}", cut[axis])
        for i, cut in enumerate(config["benchmarks"]["tapvid"]["grid"]["cuts"] or [])
        for axis in ("gamma", "delta")
    ]
    return [
        f"{key}: {x!r} is named {x:g} in paths (6 significant digits), which is what its cut "
        f"would use, shared with any other value named so; give it as {x:g}"
        for key, x in numbers
        if float(f"{x:g}") != x
    ]


def _processes_exceed_batch(config: dict) -> list[str]:
    """Each DDP process takes its share of a batch's videos: none may be left without."""
    p = config["pretrain"]
    if p["gpus"] * p["nodes"] > p["videos_per_batch"]:
        return [
            f"pretrain.videos_per_batch: {p['videos_per_batch']} videos cannot feed "
            f"{p['gpus'] * p['nodes']} processes (gpus x nodes)"
        ]
    return []


def stand_in_encoder(path: str, config: dict) -> bool:
    """Whether ``path`` is the image-level MoCo-v2 stand-in of a configured dataset, which the
    workflow builds (rule encoder_moco, ``pico.learn.encoder``)."""
    return any(os.path.normpath(path) == f"results/encoder/{name}/moco_v2.pth" for name in config["datasets"])


def _missing_paths(config: dict) -> list[str]:
    """Inputs named by the config must exist before any job starts."""
    need = {"path": os.path.isdir, "ids": os.path.isfile, "csv": os.path.isfile, "root": os.path.isdir}
    problems = []
    for name, ds in config["datasets"].items():
        for key, exists in need.items():
            if key == "ids" and ds["source"] == "yt8m":
                exists = os.path.exists  # a text file or a folder of TFRecord files
            if key in ds and not exists(ds[key]):
                kind = {os.path.isdir: "folder", os.path.isfile: "file"}.get(exists, "file or folder")
                problems.append(f"datasets.{name}.{key}: {kind} '{ds[key]}' does not exist")
    files = {
        "model.encoder_checkpoint": config["model"]["encoder_checkpoint"],
        "benchmarks.moco_v2_checkpoint": config["benchmarks"]["moco_v2_checkpoint"],
        "flow.weights": None if config["flow"]["weights"] == "default" else config["flow"]["weights"],
        "download.cookies": config["download"]["cookies"],
    }
    problems += [
        f"{key}: file '{path}' does not exist"
        for key, path in files.items()
        if path and not os.path.isfile(path) and not stand_in_encoder(path, config)
    ]
    b = config["benchmarks"]
    roots = {
        "benchmarks.coco_root": b["coco_root"],
        "benchmarks.voc.root": b["voc"]["root"],
        "benchmarks.cityscapes.root": b["cityscapes"]["root"],
        "benchmarks.nyu.root": b["nyu"]["root"],
        "benchmarks.propagation.root": b["propagation"]["root"],
    }
    problems += [
        f"{key}: folder '{root}' does not exist" for key, root in roots.items() if root and not os.path.isdir(root)
    ]
    tapvid = b["tapvid"]["root"]
    if tapvid and not os.path.exists(tapvid):
        problems.append(f"benchmarks.tapvid.root: file or folder '{tapvid}' does not exist")
    return problems


def _bounds(node: dict, *, each: bool = False) -> str:
    """A number's bounds in the schema ``node`` as a sentence (`` At least 8, at most 4,096.``),
    ``each`` for a list's items; empty without bounds."""
    words = {"minimum": "at least", "exclusiveMinimum": "above", "maximum": "at most", "exclusiveMaximum": "below"}
    text = ", ".join(f"{word} {node[key]:,}" for key, word in words.items() if key in node)
    if not text:
        return ""
    return f" Each {text}." if each else f" {text[0].upper()}{text[1:]}."


def reference(schema: dict) -> str:
    """The schema as a Markdown table, one row per key (its dotted path, ``<name>`` for a
    user's key such as a dataset's name): default, description and bounds, for docs/configuration.md.
    ``$ref`` to ``#/definitions`` and ``allOf`` parts are followed; a part's default of its
    own (a figure's grid) overrides the shared definition's."""

    def resolve(node: dict) -> dict:
        if "$ref" in node:
            node = {
                **schema["definitions"][node["$ref"].split("/")[-1]],
                **{k: v for k, v in node.items() if k != "$ref"},
            }
        for part in node.get("allOf", []):
            part = resolve(part)
            props = {k: {**part.get("properties", {}).get(k, {}), **v} for k, v in node.get("properties", {}).items()}
            node = {**part, **node, "properties": {**part.get("properties", {}), **props}}
        return node

    def cell(text) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    rows = []

    def walk(node: dict, path: str) -> None:
        node = resolve(node)
        for key, sub in node.get("properties", {}).items():
            sub, name = resolve(sub), f"{path}.{key}" if path else key
            default = f"`{json.dumps(sub['default'])}`" if "default" in sub else ""
            choices = f" One of {', '.join(f'`{json.dumps(v)}`' for v in sub['enum'])}." if "enum" in sub else ""
            limits = _bounds(sub) + _bounds(sub.get("items", {}), each=True)
            rows.append(f"| `{name}` | {cell(default)} | {cell(sub.get('description', '') + choices + limits)} |")
            walk(sub, name)
        extra = node.get("additionalProperties")
        if isinstance(extra, dict) and "properties" in resolve(extra):
            walk(extra, f"{path}.<name>")

    walk(schema, "")
    return "\n".join(["| key | default | description |", "|---|---|---|", *rows]) + "\n"


#: docs/configuration.md's generated part lies between these lines.
REFERENCE_MARKERS = (
    "<!-- schema reference: generated by python -m pico.config; do not edit -->",
    "<!-- end of schema reference -->",
)


def with_reference(doc: str, schema: dict) -> str:
    """``doc`` with the text between ``REFERENCE_MARKERS`` replaced by ``reference(schema)``."""
    begin, end = REFERENCE_MARKERS
    head, _, rest = doc.partition(begin + "\n")
    _, found, tail = rest.partition(end)
    if not found:
        raise ValueError(f"the document has no '{begin}' ... '{end}' section")
    return f"{head}{begin}\n{reference(schema)}{end}{tail}"


if __name__ == "__main__":  # python -m pico.config SCHEMA DOC: regenerate DOC's reference section
    schema_path, doc_path = map(Path, sys.argv[1:3])
    doc_path.write_text(with_reference(doc_path.read_text(), yaml.safe_load(schema_path.read_text())))
