from pico import logs
from pico.data import synthetic
from pico.evaluation import propagation

logs.setup(snakemake.log[0])
p = snakemake.params
propagation.write_demo_videos(
    snakemake.output[0],
    seed=p.seed,
    count=p.videos,
    short_side=p.short_side,
    world=synthetic.World.from_settings(p.world),
)
