"""Real Snakemake runs: the demo end to end, bad inputs, and what a config change reruns."""

import json
import shutil
import subprocess

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from pico.data import synthetic
from pico.reporting import figures
from pico.store import flowstore, framestore, manifest
from picotest import dry_run_with, run_snakemake, scheduled

MANIFEST_COLUMNS = {"video", "status", "reason", "source", "start_s", "end_s", "fps", "n_frames", "width", "height"}


def test_demo_gives_30hz_snippets_inside_one_shot_for_every_video(demo):
    rows = [r for p in sorted((demo / "results/demo/videos").glob("*.parquet")) for r in manifest.read(p)]
    assert MANIFEST_COLUMNS <= set(pq.read_schema(demo / "results/demo/videos/00000.parquet").names)
    assert [r["video"] for r in rows] == [f"synth{i:04d}" for i in range(8)]
    assert {r["status"] for r in rows} == {"ok"}
    assert {r["src_fps"] for r in rows} == {24.0, 25.0, 30.0, 60.0}
    for r in rows:
        assert (r["n_frames"], r["fps"], r["width"], r["height"], r["n_shots"]) == (60, 30.0, 171, 128, 2)
        with framestore.FrameStore(demo / r["frames"]) as store:
            assert len(store) == 60 and store[37].shape == (128, 171, 3)
    for stage in ("download", "detect_shots", "extract_frames"):
        log = (demo / f"logs/{stage}/demo/00000.log").read_text()
        assert "4/4" in log, log  # progress lines reach the rule's log
        assert (demo / f"benchmarks/{stage}/demo/00000.tsv").exists()


def test_a_finished_demo_has_nothing_left_to_do(demo):
    out = run_snakemake(demo, "videos", "-n")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_changing_frame_settings_reruns_only_frame_extraction(demo):
    out = dry_run_with(demo, {"frames": {"jpeg_quality": 80}}, "videos")
    assert scheduled(out.stdout + out.stderr) == {"extract_frames": 2, "videos": 1}


def test_changing_the_flow_codec_reruns_only_flow(demo):
    out = dry_run_with(demo, {"flow": {"codec": {"quality": 80}}}, "flow")
    assert scheduled(out.stdout + out.stderr) == {"estimate_flow": 2, "flow": 1}
    for irrelevant in ({"batch_size": 3}, {"iters": 20}, {"codec": {"bound": 5}}):  # speed, RAFT-only, fixed-only
        out = dry_run_with(demo, {"flow": irrelevant}, "flow")
        assert "Nothing to be done" in out.stdout + out.stderr, irrelevant


def test_demo_flow_matches_the_generators_true_motion(demo):
    """Frames -> DIS -> JPEG codec -> decoded flow against the synthetic world's exact motion."""
    (row,) = [r for r in manifest.read(demo / "results/demo/flow/00000.parquet") if r["video"] == "synth0000"]
    assert row["src_fps"] == 30 and row["flow_bytes"] > 0
    vid = synthetic.make_video(0, "synth0000", 4, 30, 320, 240, cut=True)
    first = round(row["start_s"] * 30)  # output frame k shows source frame first + k
    with flowstore.FlowStore(demo / row["flow"]) as store:
        assert len(store) == row["n_frames"] - 1 == 59
        for k in (5, 30, 58):
            scene, t = vid.at((first + k) / 30)
            truth = scene.render(t, dt=1 / 30)["flow"]
            truth = np.stack([cv2.resize(c, (171, 128), interpolation=cv2.INTER_AREA) for c in truth])
            truth *= np.array([171 / 320, 128 / 240], np.float32)[:, None, None]
            epe = np.hypot(*(store.field("fwd", k) - truth))
            assert np.median(epe) < 0.25, (k, np.median(epe))


@pytest.fixture(scope="module")
def messy_folder(tmp_path_factory, make_video):
    """A local folder of good videos and every kind of bad input."""
    root = tmp_path_factory.mktemp("messy")
    (root / "nested/deeper").mkdir(parents=True)
    for name, (path, _) in {
        "good.mp4": make_video(fps=25, seconds=3.0),
        "nested/deeper/good60.mov": make_video(fps=60, seconds=3.0),
        "cut.mkv": make_video(fps=30, seconds=3.0, cut=True, video_id="c"),
        "short.mp4": make_video(fps=30, seconds=0.5),
    }.items():
        (root / name).write_bytes(path.read_bytes())
    good = (root / "good.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(good[: len(good) // 2])
    (root / "zero.mp4").write_bytes(b"")
    (root / "text.webm").write_text("not a video at all\n")
    (root / "notes.txt").write_text("ignored: not a video extension\n")
    ffmpeg = ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i"]
    subprocess.run([*ffmpeg, "sine=duration=2", str(root / "audio_only.mp4")], check=True)
    subprocess.run(
        [*ffmpeg, "testsrc2=size=64x48:rate=30", "-frames:v", "1", "-pix_fmt", "yuv420p", str(root / "one_frame.mp4")],
        check=True,
    )
    subprocess.run(
        [*ffmpeg, "testsrc2=size=64x48", "-frames:v", "1", "-f", "image2", "-c:v", "png", str(root / "still.avi")],
        check=True,
    )
    return root


def test_bad_inputs_get_their_status_and_the_rest_of_the_shard_finishes(tmp_path, messy_folder):
    config = {
        "datasets": {
            "mine": {
                "source": "local",
                "path": str(messy_folder),
                "shots": True,
                "snippet_seconds": 2.0,
                "videos_per_shard": 6,
            }
        },
        "frames": {"short_side": 32},
    }
    run_snakemake(tmp_path, "flow", config={**config, "flow": {"backend": "dis"}})
    rows = {
        r["video"]: r for p in sorted((tmp_path / "results/mine/videos").glob("*.parquet")) for r in manifest.read(p)
    }
    assert {v: r["status"] for v, r in rows.items()} == {
        "audio_only.mp4": "no_video_stream",
        "cut.mkv": "no_shot",
        "good.mp4": "ok",
        "nested/deeper/good60.mov": "ok",
        "one_frame.mp4": "too_short",
        "short.mp4": "too_short",
        "still.avi": "no_video_stream",
        "text.webm": "corrupt",
        "truncated.mp4": "corrupt",
        "zero.mp4": "corrupt",
    }
    for video, row in rows.items():
        assert (row["status"] == "ok") == (row["reason"] is None), (video, row["reason"])
    assert rows["good.mp4"]["n_frames"] == 60 and rows["nested/deeper/good60.mov"]["n_frames"] == 60
    assert "0 bytes" in rows["zero.mp4"]["reason"] and "audio" in rows["audio_only.mp4"]["reason"]
    reseeded = run_snakemake(tmp_path, "flow", "-n", config={**config, "flow": {"backend": "dis"}, "seed": 7})
    assert "download" not in scheduled(reseeded.stdout + reseeded.stderr)  # local files are not re-fetched
    flows = {
        r["video"]: r for p in sorted((tmp_path / "results/mine/flow").glob("*.parquet")) for r in manifest.read(p)
    }
    assert {v: r["status"] for v, r in flows.items()} == {v: r["status"] for v, r in rows.items()}  # carried through
    assert {v for v, r in flows.items() if r["flow"]} == {"good.mp4", "nested/deeper/good60.mov"}


def test_demo_pairs_for_every_method(demo):
    base = demo / "results/demo/pairs"
    for method in ("pico", "static_video", "static_frame"):
        for shard in ("00000", "00001"):
            table = pq.read_table(base / f"{method}/anchor/g0_d4/{shard}.parquet").to_pandas()
            frames = pq.read_table(base / f"{method}/anchor/g0_d4/{shard}.frames.parquet").to_pandas()
            assert set(table.video) == set(frames.video) and len(set(frames.video)) == 4
            assert (table.groupby("video").draw.nunique() == 32).all()  # sampling.draws_per_video
            for video, group in table.groupby("video"):
                selected = set(frames[frames.video == video].frame)
                assert set(group.frame_a) | set(group.frame_b) == selected
            assert frames.jpeg.map(lambda b: b[:2] == b"\xff\xd8").all()
            if method == "pico":
                tracked = pq.read_table(demo / f"results/demo/tracks/g0_d4/{shard}.parquet").to_pandas()
                tracked = tracked.set_index(["video", "track", "t"])
                row = table.iloc[len(table) // 2]
                assert tracked.loc[(row.video, row.track, row.frame_b), "x"] == row.xb
            else:
                assert (table.xa == table.xb).all() and (
                    table.ya == table.yb
                ).all()  # PiCO's points, mapped to themselves
            assert (table.frame_a == table.frame_b).all() == (method == "static_frame")


# One cut_pairs job per shard writes a tables' cut and its three pair sets.
@pytest.mark.parametrize(
    "tracking, expected",
    [
        ({"thresholds": [[0, 2]]}, {"cut_pairs": 2}),  # one delta changed
        ({"thresholds": [[0.05, 4]]}, {"cut_pairs": 2}),  # one gamma changed (0.1 is the demo ablations')
        ({"thresholds": [[0, 4], [0, 8]]}, {"cut_pairs": 2}),  # a delta added
        ({"max_delta": 12}, {"raw_tracks": 2, "cut_pairs": 2}),  # the bound moved
        ({"motion_boundary": False}, {"cut_pairs": 2}),  # the demo's option off: cuts only
    ],
)
def test_threshold_changes_rerun_only_what_depends_on_them(demo, tracking, expected):
    out = dry_run_with(demo, {"tracking": tracking}, "pairs")
    assert scheduled(out.stdout + out.stderr) == {**expected, "pairs": 1}


def test_a_new_tables_cut_trains_only_on_it_and_leaves_the_ablations_be(demo):
    """Table 1 on another delta: its cut and pair sets (one job a shard), its three models and
    what shows them; the ablations' pair sets, some on the old cut, are not redrawn."""
    out = dry_run_with(demo, {"tracking": {"thresholds": [[0, 2]]}}, "all")
    jobs = scheduled(out.stdout + out.stderr)
    assert {k: jobs[k] for k in ("cut_pairs", "pretrain_model", "figure1")} == {
        "cut_pairs": 2,
        "pretrain_model": 3,
        "figure1": 1,
    }
    assert "point_pairs" not in jobs and "raw_tracks" not in jobs and "cut_tracks" not in jobs


def test_the_tracks_target_cuts_the_ablations_cuts_too(demo):
    """`tracks` is every cut a model trains on: the ablations' (g0_d1, g0.1_d4), which only their
    pair jobs made, are cut to files by cut_tracks."""
    out = run_snakemake(demo, "tracks", "-n")
    assert scheduled(out.stdout + out.stderr) == {"cut_tracks": 4, "tracks": 1}


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({"sampling": {"draws_per_video": 8}}, {"cut_pairs": 2, "pretrain_model": 3}),  # new draws: Table 1's models
        ({"sampling": {"endpoints": "all"}}, {"cut_pairs": 2, "pretrain_model": 3}),
        ({"pretrain": {"max_pairs": 512}}, {"pretrain_model": 3}),  # applied per iteration, in pretraining
    ],
)
def test_sampling_changes_rerun_the_pairs_and_the_budget_only_pretraining(demo, overrides, expected):
    out = dry_run_with(demo, overrides, "pretrain")
    assert scheduled(out.stdout + out.stderr) == {**expected, "pretrain": 1}


def test_adding_a_delta_to_an_ablation_sweep_builds_only_the_new_point(demo):
    out = dry_run_with(demo, {"ablations": {"figure4": {"deltas": [1, 4, 8]}}}, "all")
    assert scheduled(out.stdout + out.stderr) == {
        # the new point, its cut made by its pair jobs, with its health counts (the other cuts'
        # and pair sets' stay)
        "point_pairs": 2,
        "pretrain_model": 1,
        "probe_model": 1,
        "ablation": 1,
        "dataset_health": 1,
        "pretraining_loss": 1,
        "all": 1,  # what shows it
    }


def test_an_ablation_pair_job_over_a_group_of_shards_writes_their_pairs_in_one_file(demo, tmp_path):
    """datasets.<name>.shards_per_pair_job 2: an ablation's pair set over the demo's two shards
    is one job and one file, whose rows are those of the two files a job per shard wrote, in
    order, and whose health counts are theirs added; nothing upstream reruns."""
    for part in ("config", "results/demo", ".snakemake"):
        shutil.copytree(demo / part, tmp_path / part, symlinks=True)
    (tmp_path / "override.yaml").write_text(yaml.safe_dump({"datasets": {"demo": {"shards_per_pair_job": 2}}}))
    configs = ("--configfile", str(tmp_path / "config/config.yaml"), str(tmp_path / "override.yaml"))
    pair_set = "pico/random/g0_d1"  # Figure 4's, not Table 1's
    out = run_snakemake(tmp_path, f"results/demo/pairs/{pair_set}/00000-00001.parquet", *configs)
    assert scheduled(out.stdout + out.stderr) == {"point_pairs": 1}
    for name in ("parquet", "frames.parquet"):
        shards = [pq.read_table(demo / f"results/demo/pairs/{pair_set}/{s}.{name}") for s in ("00000", "00001")]
        group = pq.read_table(tmp_path / f"results/demo/pairs/{pair_set}/00000-00001.{name}")
        assert group.num_rows > 0 and group.equals(pa.concat_tables(shards).combine_chunks()), name
    first, second, both = (
        json.loads((root / f"results/demo/health/pairs/{pair_set}/{name}.json").read_text())
        for root, name in ((demo, "00000"), (demo, "00001"), (tmp_path, "00000-00001"))
    )
    assert both["videos_without_pairs"] == first["videos_without_pairs"] + second["videos_without_pairs"]
    size = max(len(first["track_lengths"]), len(second["track_lengths"]))
    added = sum(np.pad(h["track_lengths"], (0, size - len(h["track_lengths"]))) for h in (first, second))
    assert both["track_lengths"] == added.tolist()


def test_without_kept_flow_the_cuts_and_pairs_are_the_demos_and_the_flow_is_gone(demo, tmp_path):
    """flow.keep false (config/paper.yaml's): a run to the pair sets makes every cut, pair set
    and health summary byte for byte as the demo's run did, and leaves no flow folder. A second
    run has nothing to do; raising max_delta reruns raw_tracks, so it computes the flow again."""
    shutil.copytree(demo / "config", tmp_path / "config")
    config = {"flow": {"keep": False}}
    run_snakemake(tmp_path, "pairs", "figures", config=config)
    for shard in ("00000", "00001"):
        assert (tmp_path / f"results/demo/flow/{shard}.parquet").exists()
        assert not (tmp_path / f"results/demo/flow/{shard}").exists()
    made = sorted(
        p.relative_to(tmp_path)
        for folder in ("results/demo/tracks", "results/demo/pairs", "results/demo/health")
        for p in (tmp_path / folder).rglob("*")
        if p.is_file()
    )
    assert len(made) > 20
    for path in made:
        assert (tmp_path / path).read_bytes() == (demo / path).read_bytes(), path
    assert scheduled(run_snakemake(tmp_path, "pairs", "-n", config=config).stdout) == {}
    config["tracking"] = {"max_delta": 32}
    jobs = scheduled(run_snakemake(tmp_path, "pairs", "-n", config=config).stdout)
    assert jobs["estimate_flow"] == 2 and jobs["raw_tracks"] == 2


def test_figure1_shows_patches_along_long_trajectories(demo):
    image = cv2.imread(str(demo / "results/demo/figures/figure1.png"))
    assert image.shape == (6 * (96 + 4) + 4, 8 * (96 + 4) + 4, 3)
    cut = pq.read_table(demo / "results/demo/tracks/g0_d4/00000.parquet")
    (video, trk), *_ = figures.long_moving_tracks(cut, 6)
    first = cut.to_pandas().query("video == @video and track == @trk").sort_values("t").iloc[0]
    (row,) = [r for r in manifest.read(demo / "results/demo/videos/00000.parquet") if r["video"] == video]
    with framestore.FrameStore(demo / row["frames"]) as store:
        expected = cv2.resize(
            figures.patch(store[int(first.t)], first.x, first.y, 32), (96, 96), interpolation=cv2.INTER_NEAREST
        )
    np.testing.assert_array_equal(image[4:100, 4:100, ::-1], expected)


def test_demo_pretrains_all_three_methods(demo):
    import torch

    for method in ("pico", "static_video", "static_frame"):
        folder = demo / f"results/models/{method}/demo/anchor/g0_d4"
        saved = torch.load(folder / "model.pt", weights_only=True)
        assert saved["iteration"] == 20 and saved["encoder"]["arch"] == "resnet18"
        assert {k.split(".")[0] for k in saved["decoder"]} == {"net", "head"}
        assert any(k.startswith("net.branch.") for k in saved["decoder"])
        rows = (folder / "work/metrics.csv").read_text().splitlines()
        assert len(rows) == 21 and all(np.isfinite(float(r.split(",")[1])) for r in rows[1:])


def test_demo_produces_the_headline_coco_probe_table(demo):
    import json

    table = json.loads((demo / "results/coco_probe.json").read_text())
    assert table["demo"] is True and "DEMO" in table["benchmark"]
    assert [r["method"] for r in table["rows"]] == ["moco_v2", "pico", "static_frame", "static_video"]
    for row in table["rows"]:
        assert 0 < row["mIoU"] <= 100 and 0 < row["fIoU"] <= 100
    one = json.loads((demo / "results/benchmarks/coco_probe/pico/demo/anchor/g0_d4.json").read_text())
    assert one["checkpoint_sha256"] and one["config"]["crop_size"] == 96 and one["gamma"] == 0.0


def test_configuring_a_voc_root_schedules_its_probes(demo, tmp_path):
    root = tmp_path / "VOC2012"
    for folder in ("ImageSets/Segmentation", "JPEGImages", "SegmentationClassAug"):
        (root / folder).mkdir(parents=True)
    out = dry_run_with(demo, {"benchmarks": {"voc": {"root": str(root)}}}, "benchmarks")
    assert scheduled(out.stdout + out.stderr) == {
        "probe_model": 3,
        "probe_moco_v2": 1,
        "probe_table": 1,
        "benchmarks": 1,
    }
