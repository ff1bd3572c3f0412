# Config validation and the shard layout, fixed at parse time from the input lists.
import re

import pico.config
import pico.sources
from snakemake.exceptions import WorkflowError

try:
    pico.config.validate(
        config, workflow.source_path("../workflow/schemas/config.schema.yaml")
    )
    SHARDS = {
        name: pico.sources.shards(
            pico.sources.entries(ds, config["seed"]), ds["videos_per_shard"]
        )
        for name, ds in config["datasets"].items()
    }
except (pico.config.ConfigError, ValueError, OSError) as e:
    raise WorkflowError(str(e)) from None


wildcard_constraints:
    dataset="|".join(map(re.escape, SHARDS)),
    shard=r"\d{5}",


def per_shard(pattern):
    """``pattern`` for every shard of every configured dataset."""
    return [
        pattern.format(dataset=name, shard=shard)
        for name, shards in SHARDS.items()
        for shard in shards
    ]


def shard_entries(wildcards):
    return SHARDS[wildcards.dataset][wildcards.shard]


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]
