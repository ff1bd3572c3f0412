from pico import logs
from pico.data import synthetic
from pico.evaluation import demo_correspondence

logs.setup(snakemake.log[0])
p = snakemake.params
demo_correspondence.write_demo_pairs(
    snakemake.output[0],
    seed=p.seed,
    count=p.pairs,
    gaps=p.gaps,
    short_side=p.short_side,
    world=synthetic.World.from_settings(p.world),
)
