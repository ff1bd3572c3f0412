from pico import logs
from pico.evaluation import demo_data

logs.setup(snakemake.log[0])
params = snakemake.params
args, kwargs = demo_data.rule_arguments(seed=params.seed, demo=params.demo, world=params.world)
demo_data.WRITERS[params.kind](snakemake.output[0], *args, **kwargs)
