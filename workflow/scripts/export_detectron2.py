from pico import logs
from pico.evaluation import mask_rcnn, probe
from pico.store import checkpoint

logs.setup(snakemake.log[0], threads=snakemake.threads)
backbone = probe.pretrained_features(snakemake.input[0]).backbone
checkpoint.save(mask_rcnn.detectron2_state(backbone), snakemake.output[0])
