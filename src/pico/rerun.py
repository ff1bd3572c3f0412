"""The rerun policy: of each config block, the settings that decide what its jobs produce.

Snakemake reruns a job whose params changed, so a rule's params carry these settings (named
``rerun_*`` where its script reads the config instead, rules/common.smk). A training job's
checkpoint fingerprint (``pico.learn``) holds the same settings, so a resumed job continues
only what it would have produced anyway. Every other key changes where or how fast a job runs:
changing it reruns nothing. Rules, scripts and fingerprints all ask ``result_settings``;
``tests/test_layout.py`` checks that nothing else filters a block's keys.

Blocks without an entry: ``download`` is never a rerun trigger (tuning retries or timeouts
must not fetch a finished shard again; the synthetic source's seed is, ``pico.plan``);
``tracking``, ``sampling`` and ``model`` change what they produce in every key; ``frames`` in
every key but ``min_motion`` when it is off.
"""

from __future__ import annotations

from pico.flow_backends import BACKENDS

#: Per block, the keys that change how its jobs run, not what they produce. ``evaluation``: the
#: settings of one benchmark (``benchmarks.probe``, ``benchmarks.maskrcnn``, ...).
RUNTIME_KEYS = {
    "shot_detection": ("device", "batch_size"),
    "flow": ("device", "batch_size", "threads", "keep"),
    "pretrain": ("workers", "device", "gpus", "nodes", "checkpoint_every", "keep_footers"),
    "encoder": ("workers", "threads", "device", "checkpoint_every"),
    "evaluation": ("device", "checkpoint_every", "workers"),
    "correspondence": ("device", "demo_gap"),
    "propagation": ("device",),
}

#: Per block, the keys that are off when null and then change nothing: a run from before the
#: key existed keeps its jobs.
OFF_WHEN_NULL = {"frames": ("min_motion",)}

#: The codec key each flow codec scheme alone reads (pico.store.flowstore).
_SCHEME_KEYS = {"fixed": "bound", "tiled": "step"}


def result_settings(block: str, settings: dict) -> dict:
    """``settings`` of config block ``block`` less its ``RUNTIME_KEYS`` and its ``OFF_WHEN_NULL``
    keys that are null; for ``flow``, also less what its backend and codec scheme do not read
    (``flow_settings``)."""
    off = {key for key in OFF_WHEN_NULL.get(block, ()) if settings.get(key) is None}
    kept = {key: value for key, value in settings.items() if key not in RUNTIME_KEYS.get(block, ()) and key not in off}
    return flow_settings(kept) if block == "flow" else kept


def flow_settings(flow: dict) -> dict:
    """The ``flow`` settings that change the stored flow: the backend, the settings it reads
    (``pico.flow_backends``) and the codec, whose ``bound`` counts for the fixed scheme only and
    whose ``step`` for the tiled one only."""
    codec = flow["codec"]
    unused = set(_SCHEME_KEYS.values()) - {_SCHEME_KEYS.get(codec["scheme"])}
    return {
        "backend": flow["backend"],
        **{key: flow[key] for key in BACKENDS[flow["backend"]].settings},
        "codec": {key: value for key, value in codec.items() if key not in unused},
    }


def job_settings(config: dict, block: str, result: dict) -> dict:
    """What a job runs with: ``result`` (its rule's ``result_settings`` of ``block``, a seed
    perhaps changed) over the config's ``block``, whose runtime keys the rule leaves out of its
    params so that they trigger no rerun."""
    return {**config[block], **result}
