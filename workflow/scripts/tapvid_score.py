import json

from pico import logs
from pico.evaluation import tapvid
from pico.store.files import atomic_path

logs.setup(snakemake.log[0])
w = snakemake.wildcards
p = snakemake.params
results, tables = tapvid.evaluate_set(
    snakemake.input.truth,
    snakemake.input.flow,
    modes=p.modes,
    gamma=float(w.gamma),
    delta=float(w.delta),
    motion_boundaries=p.motion_boundary,
)
tapvid.write_predictions(tables, snakemake.output.predictions)
scored = {"dataset": w.truth, "backend": w.backend, "codec": p.codec, "gamma": float(w.gamma), "delta": float(w.delta)}
with atomic_path(snakemake.output.scores) as tmp:
    tmp.write_text(json.dumps({**scored, "results": results}, indent=2))
