from pico import logs
from pico.evaluation import tapvid
from pico.store.files import write_json

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
write_json({**scored, "results": results}, snakemake.output.scores)
