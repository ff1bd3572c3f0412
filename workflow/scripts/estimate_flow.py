from pico import flow, logs, manifest

logs.setup(snakemake.log[0], threads=snakemake.threads)
rows = flow.run_shard(manifest.read(snakemake.input[0]), snakemake.config["flow"], snakemake.output.flow)
manifest.write(rows, snakemake.output.table)
