import shutil

from pico import logs
from pico.data import download, yt8m
from pico.store import manifest

logs.setup(snakemake.log[0])
entries, failed = snakemake.params.entries, []
if snakemake.params.source == "yt8m":
    entries, failed = yt8m.download_entries(
        yt8m.read_lookup(snakemake.input.lookup[0]),
        snakemake.config["datasets"][snakemake.wildcards.dataset]["url_template"],
    )
rows = download.run_shard(
    entries,
    snakemake.params.source,
    snakemake.output.media,
    snakemake.config["download"],
    seed=snakemake.config["seed"],
    root=snakemake.params.root,
    journal=download.journal_folder(snakemake.output.table),
)
manifest.write(rows + failed, snakemake.output.table)
shutil.rmtree(download.journal_folder(snakemake.output.table), ignore_errors=True)  # the shard is done
