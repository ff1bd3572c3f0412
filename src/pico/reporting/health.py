"""The data's own health, for the report: videos per status, the flow codec's error per video
(Section 3.2's JPEG storage), track lengths per (gamma, delta) cut (Eq. 3), point pairs per
draw, temporal gaps and videos without pairs (Section 3.3) and the pretraining loss (Eq. 1) of every model.

Per shard, the ``*_summary`` functions reduce one stage output each to counts (a few kB of
JSON; a paper shard's cut tracks are tens of millions of rows): the flow table, one cut, one
pair set. The job that writes the output writes its summary beside it (``write_summary``; no
job of its own, which at the paper's scale were a third of the DAG), so a new cut or pair set
adds its own summaries and leaves the others be. A pair set's summary carries the track
lengths of the cut it was drawn from too: a cut that only pair jobs make (an ablation's, which
only the ``tracks`` target writes to a file) is counted there. ``merge``
adds a dataset's summaries up and the ``plot_*`` functions draw its figures from that.
"""

from __future__ import annotations

import csv
import logging
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa

from pico.data.pairs import SCHEMA as PAIRS_SCHEMA
from pico.reporting import plots
from pico.store import manifest
from pico.store.files import damaged, read_json, read_parquet, write_json

log = logging.getLogger(__name__)


def _columns(path: str | Path, schema: pa.Schema, names: list[str]) -> pa.Table:
    """Only the columns ``names`` of a Parquet file of ``schema`` (a pair set's other columns are
    most of its bytes), verified as the stages read them (``pico.store.files.read_parquet``)."""
    return read_parquet(path, pa.schema([schema.field(name) for name in names]))


def pair_counts(pairs_path: str | Path, videos: list[str]) -> dict:
    """A pair set's bincounts: point pairs per draw (before the crops), temporal gap |b - a| per
    frame pair of every draw, and how many of ``videos`` have no draw at all (no PiCO pair in
    any selection: left out of pretraining, ``pico.data.pairs``)."""
    table = _columns(pairs_path, PAIRS_SCHEMA, ["video", "draw", "frame_a", "frame_b"]).to_pandas()
    per_draw = table.groupby(["video", "draw"]).size().to_numpy()
    frame_pairs = table.drop_duplicates(["video", "draw", "frame_a", "frame_b"])
    gaps = (frame_pairs["frame_b"] - frame_pairs["frame_a"]).abs().to_numpy()
    return {
        "pairs_per_draw": np.bincount(per_draw, minlength=1).tolist(),
        "temporal_gaps": np.bincount(gaps, minlength=1).tolist(),
        "videos_without_pairs": len(set(videos) - set(table["video"])),
    }


def flow_summary(table: str | Path) -> dict:
    """One shard's videos: statuses (of the flow table, whose statuses are final) and each
    video's ``flow_epe``."""
    rows = manifest.read(table)
    log.info("%s: %d videos", table, len(rows))
    return {
        "status": dict(Counter(r["status"] for r in rows)),
        "flow_epe": {r["video"]: r["flow_epe"] for r in rows if r["flow_epe"] is not None},
    }


def track_summary(lengths: list[np.ndarray]) -> dict:
    """The track-length bincount (``tracks.lengths``) of one shard's cut (Eq. 3), or the sum
    of the bincounts of a group of shards."""
    total = None
    for counts in lengths:
        total = _add(total, counts)
    log.info("cut: %d tracks", total.sum())
    return {"track_lengths": total.tolist()}


def pair_summary(pairs: str | Path, rows: list[dict], cut: dict) -> dict:
    """One pair file's set (a shard's, or a group of shards') over the ok videos of ``rows``
    (the flow-table rows the pair set was drawn from, ``pair_counts``), with ``cut``, the
    ``track_summary`` of the cut it was drawn from (a group's shards added)."""
    ok = [r["video"] for r in rows if r["status"] == "ok"]
    counts = pair_counts(pairs, ok)
    log.info("%s: %d ok videos, %d without a pair", pairs, len(ok), counts["videos_without_pairs"])
    return {**counts, **cut}


def write_pair_summaries(
    pair_sets: list[str], summaries: list[str], rows: list[dict], lengths: list[np.ndarray]
) -> None:
    """Write the ``pair_summary`` of each pair set of ``pair_sets`` to the matching path of
    ``summaries``. The sets were drawn (``pairs.draw_sets``) from the flow-table ``rows`` and
    from cuts whose track-length bincounts are ``lengths``."""
    cut = track_summary(lengths)
    for pairs, summary in zip(pair_sets, summaries, strict=True):
        write_summary(pair_summary(pairs, rows, cut), summary)


def write_summary(summary: dict, path: str | Path) -> None:
    """A shard's summary as JSON, atomically (its stage's job writes it beside its output)."""
    write_json(summary, path, indent=1)


def _add(total: np.ndarray | None, count: list[int]) -> np.ndarray:
    count = np.asarray(count, np.int64)
    if total is None:
        return count
    size = max(len(total), len(count))
    return np.pad(total, (0, size - len(total))) + np.pad(count, (0, size - len(count)))


@contextmanager
def _summary(path: str | Path):
    """A summary's JSON (``read_json``); any error adding it names the file."""
    summary = read_json(path)
    try:
        yield summary
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise damaged(path, f"not a shard health summary ({e!r})") from e


def by_series(names: list[str], paths: list[str | Path]) -> dict[str, list[Path]]:
    """``paths`` grouped by the series each lies in, ``{name: [path, ...]}`` for every name of
    ``names``: a summary of series ``name`` is ``.../{name}/{shard}.json`` (a cut ``g0_d4``,
    or a pair set ``method/sampling/cut``). A path in none of them is an error naming it."""
    groups = {name: [] for name in names}
    for path in map(Path, paths):
        folder = path.parent.as_posix()
        owners = [name for name in names if folder == name or folder.endswith("/" + name)]
        if len(owners) != 1:
            raise ValueError(f"{path}: a summary of none of the series {names}")
        groups[owners[0]].append(path)
    return groups


def merge(flow: list[str | Path], tracks: dict[str, list], pairs: dict[str, list]) -> dict:
    """One dataset's summaries added up: statuses and codec errors from the ``flow`` summaries;
    track-length, pairs-per-draw and temporal-gap bincounts (padded to the longest) and videos
    without pairs per series: ``tracks`` maps each cut to its shards' summaries, ``pairs`` each
    pair set (``by_series``)."""
    merged = {
        "status": Counter(),
        "flow_epe": {},
        "track_lengths": {},
        "pairs_per_draw": {},
        "temporal_gaps": {},
        "videos_without_pairs": Counter(),
    }
    for path in flow:
        with _summary(path) as shard:
            merged["status"].update(shard["status"])
            merged["flow_epe"].update(shard["flow_epe"])
    # (bincounts added up, a count added up or None, {series: summaries}) of each stage
    stages = (("track_lengths",), None, tracks), (("pairs_per_draw", "temporal_gaps"), "videos_without_pairs", pairs)
    for keys, counted, series_paths in stages:
        for series, paths in series_paths.items():
            for path in paths:
                with _summary(path) as shard:
                    for key in keys:
                        merged[key][series] = _add(merged[key].get(series), shard[key])
                    if counted:
                        merged[counted][series] += shard[counted]
    return merged


def plot_status(merged: dict, dataset: str, path: str | Path) -> None:
    """Videos per status, every status listed (zeros included)."""
    plt = plots.pyplot()
    counts = [merged["status"].get(s, 0) for s in manifest.STATUSES]
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    bars = ax.barh(manifest.STATUSES, counts, color=["tab:green"] + ["tab:red"] * (len(counts) - 1))
    ax.bar_label(bars, [f"{c:,}" for c in counts], padding=2)
    ax.invert_yaxis()
    ax.set_xlabel("videos")
    ax.set_title(f"{dataset}: {sum(counts):,} videos by status", fontsize="medium")
    plots.save(fig, path)


def plot_flow_error(merged: dict, dataset: str, path: str | Path) -> None:
    """Histogram of the per-video mean end-point error the flow codec added."""
    plt = plots.pyplot()
    epe = np.array(list(merged["flow_epe"].values()), np.float64)
    fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
    if len(epe):
        ax.hist(epe, bins=30, color="tab:blue")
        summary = f"{len(epe):,} videos, mean {epe.mean():.4f} px, max {epe.max():.4f} px"
    else:
        summary = "no video has a recorded codec error"
    ax.set_xlabel("mean end-point error added by the codec (px)")
    ax.set_ylabel("videos")
    ax.set_title(f"{dataset}: flow codec error per video\n{summary}", fontsize="medium")
    plots.save(fig, path)


def read_losses(metrics_csv: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(iteration, loss, point pairs) of a pretraining run's metrics.csv."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"iteration", "loss", "pairs"} <= set(rows[0]):
        raise ValueError(f"{metrics_csv}: no iteration/loss/pairs rows (not a pretraining metrics.csv?)")
    return tuple(np.array([float(r[k]) for r in rows]) for k in ("iteration", "loss", "pairs"))


def read_monitors(metrics_csv: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{monitor: (iterations, values)} of a pretraining run's metrics.csv, for the monitors it
    measured (``queue_similarity`` every iteration, the held-out ones at their checks)."""
    with open(metrics_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    found = {}
    for key in ("queue_similarity", "heldout_infonce", "heldout_chance", "heldout_cos_gap"):
        measured = [r for r in rows if r.get(key)]
        if measured:
            found[key] = (
                np.array([float(r["iteration"]) for r in measured]),
                np.array([float(r[key]) for r in measured]),
            )
    return found


def plot_losses(runs: dict[str, str | Path], path: str | Path) -> None:
    """Pretraining loss (Eq. 1) and the point pairs trained on (the global batch's, after the
    crops and Section 3.4's budget) against iteration, one line per model; below, the collapse
    monitor (the mean cosine of two queued keys) and the pretext on held-out videos (InfoNCE
    against the other points of the key view, dotted at its chance level, and the cosine gap of
    positives over those negatives; ``pico.learn.model.pretext``)."""
    plt = plots.pyplot()
    fig, axes = plt.subplots(5, 1, figsize=(8, 12), sharex=True, layout="constrained")
    loss_ax, pairs_ax, similarity_ax, heldout_ax, gap_ax = axes
    for name, metrics_csv in runs.items():
        iteration, loss, n_pairs = read_losses(metrics_csv)
        (line,) = loss_ax.plot(iteration, loss, label=name, linewidth=1)
        pairs_ax.plot(iteration, n_pairs, linewidth=1)
        monitors = read_monitors(metrics_csv)
        colour = line.get_color()
        if "queue_similarity" in monitors:
            similarity_ax.plot(*monitors["queue_similarity"], linewidth=1, color=colour)
        if "heldout_infonce" in monitors:
            heldout_ax.plot(*monitors["heldout_infonce"], marker="o", markersize=3, linewidth=1, color=colour)
            heldout_ax.plot(*monitors["heldout_chance"], linestyle=":", linewidth=1, color=colour)
            gap_ax.plot(*monitors["heldout_cos_gap"], marker="o", markersize=3, linewidth=1, color=colour)
    loss_ax.set_ylabel("InfoNCE loss (Eq. 1)")
    pairs_ax.set_ylabel("point pairs per iteration")
    similarity_ax.set_ylabel("mean cosine of\ntwo queued keys")
    heldout_ax.set_ylabel("held-out InfoNCE\n(dotted: chance)")
    gap_ax.set_ylabel("held-out cosine gap\n(positive - negative)")
    gap_ax.set_xlabel("iteration")
    loss_ax.set_title(f"Pretraining of {len(runs)} models", fontsize="medium")
    for ax in axes:
        ax.grid(alpha=0.3)
    loss_ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    plots.save(fig, path)
