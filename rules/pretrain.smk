# Stage 7 (Section 3.4): pixel contrastive pretraining of decoder + head on a frozen encoder,
# one model per method, dataset, sampling and cut, and its metrics per iteration. Every model
# measures its pretext on held-out videos with PiCO's pairs, the true correspondences. Checkpoints
# live in work/ beside the model (not an output, so a failed or pre-empted job keeps them and
# its rerun resumes).


rule pretrain_model:
    input:
        pairs=pair_files(
            "results/{dataset}/pairs/{name}/{shard}.parquet",
            lambda w: [f"{w.method}/{w.sampling}/g{w.gamma}_d{w.delta}"],
        ),
        # PiCO's pairs of the same sampling and cut: the held-out pretext's true correspondences
        heldout=pair_files(
            "results/{dataset}/pairs/{name}/{shard}.parquet",
            lambda w: [f"pico/{w.sampling}/g{w.gamma}_d{w.delta}"],
        ),
        encoder=local_file(config["model"]["encoder_checkpoint"]),
    output:
        model="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/model.pt",
        metrics="results/models/{method}/{dataset}/{sampling}/g{gamma}_d{delta}/metrics.csv",
    log:
        "logs/pretrain/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.log",
    benchmark:
        "benchmarks/pretrain/{method}/{dataset}/{sampling}/g{gamma}_d{delta}.tsv"
    conda:
        "../envs/gpu.yaml"
    threads: max(1, config["pretrain"]["workers"])
    resources:
        # Several nodes: one task per node with `gpus` GPUs each (--gres counts per node,
        # --gpus for the whole job), and the job runs in its batch step (the SLURM plugin's
        # `mpi` path: no srun around it), where pico.learn.launch starts torchrun on every node
        # through srun.
        **(
            {
                "mpi": "srun",
                "tasks": config["pretrain"]["nodes"],
                "tasks_per_gpu": 0,
                "gres": f"gpu:{config['pretrain']['gpus']}" if PRETRAIN_ON_GPU else "",
            }
            if config["pretrain"]["nodes"] > 1
            else {}
        ),
        gpu=(
            config["pretrain"]["gpus"] * config["pretrain"]["nodes"]
            if PRETRAIN_ON_GPU
            else 0
        ),
        nodes=config["pretrain"]["nodes"],
        # per node: each training process and its data-loader workers
        cpus_per_task=(config["pretrain"]["gpus"] if PRETRAIN_ON_GPU else 1)
        * (config["pretrain"]["workers"] + 1),
        mem_mb=64000 if PRETRAIN_ON_GPU else 8000,
        runtime=lambda w: 60
        + config["pretrain"]["iterations"] // (60 if PRETRAIN_ON_GPU else 10),
    params:
        model=config["model"],
        pretrain={
            k: v
            for k, v in config["pretrain"].items()
            if k not in PRETRAIN_RUNTIME_KEYS
        },
        work=subpath(output.model, parent=True),
    script:
        "../workflow/scripts/pretrain.py"


rule pretrain:
    input:
        per_model("results/models/{model}/model.pt"),
