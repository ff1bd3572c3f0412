from pico import checkpoint, detection, logs, probe

logs.setup(snakemake.log[0], threads=snakemake.threads)
backbone = probe.pretrained_features(snakemake.input[0]).backbone
checkpoint.save(detection.detectron2_state(backbone), snakemake.output[0])
