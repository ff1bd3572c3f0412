# The stand-in for IN-1K MoCo-v2 where no weights are at hand (pico.learn.encoder): image-level
# MoCo-v2 on a dataset's frames, written as an official MoCo checkpoint. Built only when
# model.encoder_checkpoint (or benchmarks.moco_v2_checkpoint) names its output.


rule encoder_moco:
    input:
        frames=get_dataset_files("results/{dataset}/frames/{shard}"),
    output:
        checkpoint="results/encoder/{dataset}/moco_v2.pth",
        metrics="results/encoder/{dataset}/metrics.csv",
    log:
        "logs/encoder_moco/{dataset}.log",
    benchmark:
        "benchmarks/encoder_moco/{dataset}.tsv"
    # first of the jobs ready with it: it needs only the frames, and every model waits for it
    priority: 10
    conda:
        "../envs/gpu.yaml"
    threads: max(config["encoder"]["threads"], config["encoder"]["workers"])
    resources:
        gpu=0 if config["encoder"]["device"] == "cpu" else 1,
        mem_mb=16000,
        runtime=lambda w: 60 + config["encoder"]["iterations"] // 20,
    params:
        model=config["model"],
        encoder=pico.rerun.result_settings("encoder", config["encoder"]),
        work=subpath(output.checkpoint, parent=True),
    script:
        "../workflow/scripts/encoder_moco.py"
