from pico import datasets, logs, synthetic

logs.setup(snakemake.log[0])
demo = snakemake.params.demo
write = getattr(datasets, snakemake.params.writer)  # write_demo_coco or write_demo_nyu
write(
    snakemake.output[0],
    snakemake.params.seed,
    demo["train"],
    demo["val"],
    demo["width"],
    demo["height"],
    world=synthetic.World.from_settings(snakemake.params.world),
)
