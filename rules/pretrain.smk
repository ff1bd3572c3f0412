# Stage 7 (Section 3.4): pixel contrastive pretraining of decoder + head on a frozen encoder,
# one model per method, dataset, sampling and cut, and its metrics per iteration. Every model
# measures its pretext on held-out videos with PiCO's pairs, the true correspondences. Checkpoints
# live in work/ beside the model (not an output, so a failed or pre-empted job keeps them and
# its rerun resumes).


rule pretrain_model:
    input:
        pairs=get_pair_files(
            "results/{dataset}/pairs/{name}/{shard}.parquet",
            lambda w: [f"{w.method}/{w.sampling}/g{w.gamma}_d{w.delta}"],
        ),
        # PiCO's pairs of the same sampling and cut: the held-out pretext's true correspondences
        heldout=get_pair_files(
            "results/{dataset}/pairs/{name}/{shard}.parquet",
            lambda w: [f"pico/{w.sampling}/g{w.gamma}_d{w.delta}"],
        ),
        encoder=PLAN.encoder_file,
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
                "gres": (
                    f"gpu:{config['pretrain']['gpus']}" if PLAN.pretrain_on_gpu else ""
                ),
            }
            if config["pretrain"]["nodes"] > 1
            else {}
        ),
        gpu=(
            config["pretrain"]["gpus"] * config["pretrain"]["nodes"]
            if PLAN.pretrain_on_gpu
            else 0
        ),
        nodes=config["pretrain"]["nodes"],
        # per node: each training process and its data-loader workers
        cpus_per_task=(config["pretrain"]["gpus"] if PLAN.pretrain_on_gpu else 1)
        * (config["pretrain"]["workers"] + 1),
        mem_mb=64000 if PLAN.pretrain_on_gpu else 8000,
        runtime=lambda w: 60
        + config["pretrain"]["iterations"] // (60 if PLAN.pretrain_on_gpu else 10),
    params:
        model=config["model"],
        pretrain=pico.rerun.result_settings("pretrain", config["pretrain"]),
        work=subpath(output.model, parent=True),
    script:
        "../workflow/scripts/pretrain.py"


rule pretrain:
    input:
        PLAN.per_model("results/models/{model}/model.pt"),
