"""`snakemake --report` on the demo: Tables 1-3 as tables, Figures 1, 3-5, and the data's
health (statuses, flow codec error, track lengths, pairs per video, pretraining loss)."""

import base64
import json
import re

import cv2
import numpy as np
import pyarrow.parquet as pq
import pytest

from pico.data import tracks
from pico.reporting import health, tables
from pico.store import manifest
from picotest import run_snakemake

CUTS = ["g0_d1", "g0_d4", "g0.1_d4"]  # Table 1's g0_d4 and the demo ablations' cuts, loosest last
PAIR_SETS = {
    "pico/anchor/g0_d4",
    "static_video/anchor/g0_d4",
    "static_frame/anchor/g0_d4",  # Table 1
    "pico/random/g0_d4",
    "pico/random/g0.1_d4",
    "pico/random/g0_d1",
    "pico/anchor/g0_d1",
}  # ablations


@pytest.fixture(scope="module")
def report(demo):
    """The demo's report.html and its embedded results {file name: (mime, bytes)}."""
    run_snakemake(demo, "--report", str(demo / "report.html"))
    page = (demo / "report.html").read_text()
    embedded = {
        name: (mime, base64.b64decode(data))
        for mime, name, data in re.findall(
            r"data:([\w/+.-]+);charset=[\w-]+;filename=([^;]+);base64,([A-Za-z0-9+/=]+)", page
        )
    }
    return page, embedded


def test_the_report_holds_the_tables_figures_and_health_plots(demo, report):
    page, embedded = report
    for category in ("Tables", "Figures", "Data health"):
        assert category in page
    pngs = {
        "figure1.png",
        "figure3.png",
        "figure4.png",
        "figure5.png",
        "status.png",
        "flow_codec_error.png",
        "track_lengths.png",
        "pairs_per_video.png",
        "temporal_gaps.png",
        "pretraining_loss.png",
    }
    assert pngs <= set(embedded)
    for name in pngs:
        mime, data = embedded[name]
        assert mime == "image/png" and cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) is not None, name
    benchmark_tables = [path.stem for path in (demo / "results").glob("*.json")]
    assert "coco_probe" in benchmark_tables
    for name in benchmark_tables:  # whichever of Tables 1-3 the demo builds
        assert embedded[f"{name}.html"][0] == "text/html", name
    # each is the synthetic world's data (COCO's panoptic and instances, NYU's depth): each caption says so
    assert {"coco_probe", "coco_maskrcnn", "nyu_depth"} <= set(benchmark_tables)
    assert len(re.findall(r"DEMO: the synthetic world\S* data in the benchmark\S* layout", page)) == len(
        benchmark_tables
    )
    table = embedded["coco_probe.html"][1].decode()
    assert "Table 1" in table and "DEMO" in table
    assert re.findall(r"<tr><td>(\w+)</td>", table) == ["moco_v2", "pico", "static_frame", "static_video"]
    assert "<th>mIoU</th>" in table and "<th>fIoU</th>" in table


def test_any_benchmark_table_renders_from_its_rows():
    html = tables.to_html(
        {
            "benchmark": "NYU-depth <v2> (Table 3)",
            "demo": False,
            "rows": [
                {"method": "moco_v2", "dataset": None, "RMSE": 0.98765},
                {"method": "pico", "dataset": "k400", "RMSE": 0.95, "AP_bb": 10.8},
            ],
        }
    )
    assert "NYU-depth &lt;v2&gt; (Table 3)" in html
    assert re.findall(r"<th>(\w+)</th>", html) == ["method", "dataset", "RMSE", "AP_bb"]
    assert '<tr><td>moco_v2</td><td>–</td><td class="num">0.9877</td><td>–</td></tr>' in html


def summary(path):
    return json.loads(path.read_text())


def pair_sets_of(cut: str) -> list[str]:
    """The demo's pair sets drawn from ``cut``."""
    return sorted(name for name in PAIR_SETS if name.endswith("/" + cut))


def test_shard_health_counts_the_demo_data(demo):
    folder = demo / "results/demo/health"
    # one summary per shard and pair set, exactly the configured ones, each with the track
    # lengths of its cut; one per shard and tables' cut (an ablation's cut is made by its pair
    # jobs, not written: counted in its pair sets' summaries alone)
    assert [p.parent.name for p in folder.glob("tracks/*/00000.json")] == ["g0_d4"]
    assert {
        p.parent.relative_to(folder / "pairs").as_posix() for p in folder.glob("pairs/*/*/*/00000.json")
    } == PAIR_SETS
    for shard in ("00000", "00001"):
        videos = summary(folder / f"flow/{shard}.json")
        rows = manifest.read(demo / f"results/demo/flow/{shard}.parquet")
        assert videos["status"] == {"ok": 4}
        # the codec's own error, recorded at write time: well under the README's 0.1 px goal
        assert {r["video"]: r["flow_epe"] for r in rows} == videos["flow_epe"]
        assert all(0 < e < 0.05 for e in videos["flow_epe"].values())
        means = []
        raw = tracks.read(demo / f"results/demo/tracks/raw/{shard}.parquet")
        for cut in CUTS:
            drawn = [summary(folder / f"pairs/{name}/{shard}.json")["track_lengths"] for name in pair_sets_of(cut)]
            lengths = np.array(drawn[0])
            assert all(d == drawn[0] for d in drawn) and lengths.sum() == 4 * 1000  # every start point is a track
            gamma, delta = (float(x[1:]) for x in cut.split("_"))
            kept = (lengths * np.arange(len(lengths))).sum()
            assert kept == tracks.cut(raw, gamma, delta, motion_boundary=True).num_rows  # the demo's setting
            if cut == "g0_d4":  # Table 1's: written, with a summary of its own
                assert summary(folder / f"tracks/{cut}/{shard}.json")["track_lengths"] == drawn[0]
                assert pq.read_table(demo / f"results/demo/tracks/{cut}/{shard}.parquet").num_rows == kept
            means.append(kept / lengths.sum())
        assert means == sorted(means)  # a looser cut keeps each track's longer prefix
        for name in PAIR_SETS:
            counts = summary(folder / f"pairs/{name}/{shard}.json")
            per_draw, gaps = np.array(counts["pairs_per_draw"]), np.array(counts["temporal_gaps"])
            pairs = pq.read_table(demo / f"results/demo/pairs/{name}/{shard}.parquet").to_pandas()
            draws = pairs.groupby(["video", "draw"]).size()
            assert per_draw.sum() == len(draws) == 4 * 32 - 32 * counts["videos_without_pairs"]
            assert (per_draw * np.arange(len(per_draw))).sum() == len(pairs)
            assert gaps.sum() == len(pairs.drop_duplicates(["video", "draw", "frame_a", "frame_b"]))
            assert (gaps[0] > 0) == name.startswith("static_frame")  # one frame: gap 0, and only there


def test_health_plots_and_loss_curves_come_from_every_model(demo):
    folder = demo / "results/demo/health"
    for name in ("status", "flow_codec_error", "track_lengths", "pairs_per_video", "temporal_gaps"):
        assert cv2.imread(str(folder / f"{name}.png")) is not None
    merged = health.merge(
        sorted(folder.glob("flow/*.json")),
        health.by_series(CUTS, [p for cut in CUTS for p in folder.glob(f"pairs/{pair_sets_of(cut)[0]}/*.json")]),
        health.by_series(sorted(PAIR_SETS), folder.glob("pairs/**/*.json")),
    )
    assert dict(merged["status"]) == {"ok": 8} and len(merged["flow_epe"]) == 8
    assert set(merged["track_lengths"]) == set(CUTS) and merged["track_lengths"]["g0_d4"].sum() == 8000
    assert (
        set(merged["pairs_per_draw"])
        == set(merged["temporal_gaps"])
        == set(merged["videos_without_pairs"])
        == PAIR_SETS
    )
    assert all(
        c.sum() == 32 * (8 - merged["videos_without_pairs"][name]) for name, c in merged["pairs_per_draw"].items()
    )
    iterations, losses, n_pairs = health.read_losses(demo / "results/models/pico/demo/random/g0_d1/work/metrics.csv")
    assert list(iterations) == list(range(1, 21)) and np.isfinite(losses).all()
    assert (n_pairs > 0).all() and (n_pairs <= 1024).all()  # the demo's pretrain.max_pairs
    assert cv2.imread(str(demo / "results/models/pretraining_loss.png")) is not None


def test_damaged_health_inputs_are_errors_naming_the_file(tmp_path):
    (tmp_path / "00000.json").write_text('{"status": {"ok": 4}}')
    with pytest.raises(ValueError, match=r"00000\.json: not a shard health summary"):
        health.merge([tmp_path / "00000.json"], {}, {})
    (tmp_path / "g0_d4").mkdir()
    (tmp_path / "g0_d4/00001.json").write_text('{"track_lengths": [0, "many"]}')
    with pytest.raises(ValueError, match=r"00001\.json: not a shard health summary"):
        health.merge([], {"g0_d4": [tmp_path / "g0_d4/00001.json"]}, {})
    with pytest.raises(ValueError, match=r"00001\.json: a summary of none of the series \['g0_d1'\]"):
        health.by_series(["g0_d1"], [tmp_path / "g0_d4/00001.json"])
    (tmp_path / "metrics.csv").write_text("iteration,lr\n1,0.03\n")
    with pytest.raises(ValueError, match=r"metrics\.csv: no iteration/loss/pairs rows"):
        health.read_losses(tmp_path / "metrics.csv")
