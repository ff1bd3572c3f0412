import logging

from pico import logs
from pico.reporting import reproduction
from pico.store.files import read_json, write_json

logs.setup(snakemake.log[0])
params = snakemake.params


def read(paths, keys):
    """{(seed, model): result} of the benchmark results, in the order the rule lists them."""
    return {(seed, model): read_json(path) for (seed, model), path in zip(keys, paths)}


config = snakemake.config
data = reproduction.table(
    seeds=list(params.seeds),
    table_models=list(params.table),
    figure_models=dict(params.figures),
    probes=read(snakemake.input.probes, params.probed),
    correspondences=read(snakemake.input.correspondences, params.scored),
    pretexts={key: reproduction.last_check(path) for key, path in zip(params.scored, snakemake.input.metrics)},
    propagations=read(snakemake.input.propagations, params.scored),
    figure_specs={f: config["reproduction"][f] for f in params.figures},
    config=config,
    demo=params.demo,
)
write_json(data, snakemake.output[0])
logging.getLogger("pico.reporting.reproduction").info(
    "%d methods, %d figures over seeds %s; %s (%s)",
    len(data["methods"]),
    len(data["figures"]),
    data["seeds"],
    data.get("verdict"),
    data.get("gate"),
)
