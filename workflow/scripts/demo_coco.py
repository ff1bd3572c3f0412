from pico import datasets, logs

logs.setup(snakemake.log[0])
demo = snakemake.params.demo
datasets.write_demo_coco(snakemake.output[0], snakemake.params.seed, demo["train"], demo["val"], demo["width"], demo["height"])
