# pico: PiCO (Pixel-level Correspondence, Sharma et al.) as one Snakemake workflow.
# Stages live in rules/, one concern per file; the logic lives in the `pico` package.
from snakemake.utils import min_version

min_version("9.0")


configfile: "config/config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/yt8m.smk"
include: "rules/download.smk"
include: "rules/shots.smk"
include: "rules/frames.smk"
include: "rules/encoder.smk"
include: "rules/flow.smk"
include: "rules/tracks.smk"
include: "rules/pairs.smk"
include: "rules/figures.smk"
include: "rules/pretrain.smk"
include: "rules/evaluation.smk"
include: "rules/correspondence.smk"
include: "rules/propagation.smk"
include: "rules/track_quality.smk"
include: "rules/ablations.smk"
include: "rules/reproduction.smk"
include: "rules/health.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        rules.coco_probe.input,
        rules.evaluation.input,
        rules.correspondence.input,
        rules.propagation.input,
        rules.track_quality.input,
        rules.figures.input,
        rules.ablations.input,
        rules.health.input,
        rules.tables.input,
