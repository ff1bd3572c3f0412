from pico import logs
from pico.data import yt8m

logs.setup(snakemake.log[0])
download = snakemake.config["download"]
ranked = yt8m.read_sample(snakemake.input[0], snakemake.params.ranks)
rows = yt8m.lookup_shard(
    ranked,
    yt8m.Cache(snakemake.params.cache),
    template=snakemake.params.template,
    rate=download["lookup_rate"],
    timeout=download["socket_timeout"],
    deadline=download["lookup_deadline_seconds"],
    retries=download["retries"],
    backoff=download["retry_backoff_seconds"],
)
yt8m.write_lookup(rows, snakemake.output[0])
