from pico import logs
from pico.evaluation import demo_data

logs.setup(snakemake.log[0])
args, kwargs = demo_data.rule_arguments(snakemake.params)
demo_data.WRITERS[snakemake.params.kind](snakemake.output[0], *args, **kwargs)
