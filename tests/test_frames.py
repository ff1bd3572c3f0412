"""Frames at exactly frames.fps from any source rate, resized, in one random-access file."""

import cv2
import numpy as np
import pytest

from pico.data import frames, video
from pico.store import framestore
from pico.store.files import atomic_path

CFG = {"fps": 30, "short_side": 64, "jpeg_quality": 95}


def snippet_row(path, start, end):
    info = video.probe(path)
    return {
        "video": "v",
        "status": "ok",
        "path": str(path),
        "src_width": info.width,
        "src_height": info.height,
        "start_s": start,
        "end_s": end,
    }


@pytest.mark.parametrize("fps", [24, 25, 30, 60])
def test_any_source_rate_gives_exact_30hz_frame_counts(make_video, tmp_path, fps):
    path, vid = make_video(fps=fps, seconds=3.0)
    row = frames.extract(snippet_row(path, 0.5, 2.5), CFG, tmp_path / "v.frames.zip")
    assert row["status"] == "ok" and not row.get("reason")
    assert row["n_frames"] == 60  # 2 s at 30 Hz, whatever the source rate
    assert (row["width"], row["height"]) == (85, 64)  # 160x120 with short side 64
    with framestore.FrameStore(row["frames"]) as store:
        assert len(store) == 60 and store.fps == 30
        assert store[59].shape == (64, 85, 3)


@pytest.mark.parametrize("fps", [25, 60])
def test_resampled_frames_show_the_source_frame_nearest_in_time(make_video, tmp_path, fps):
    """Output frame k is the source frame nearest to start + k/30 (ffmpeg's fps filter)."""
    path, vid = make_video(fps=fps, seconds=3.0)
    start = 10 / fps  # on the source's frame grid
    got = list(video.decode(path, (160, 120), start=start, n_frames=30, fps=30))
    for k in (3, 17, 29):
        want = round((start + k / 30) * fps)
        errors = [np.abs(got[k].astype(float) - render(vid, j / fps)).mean() for j in (want - 2, want, want + 2)]
        assert errors[1] < 6 and errors[1] < min(errors[0], errors[2]), errors


def render(vid, t):
    scene, local = vid.at(t)
    return scene.render(local)["rgb"].astype(float)


def test_output_size_keeps_aspect_with_the_short_side_fixed():
    assert video.output_size(640, 360, 256) == (455, 256)
    assert video.output_size(360, 640, 256) == (256, 455)
    assert video.output_size(100, 100, 256) == (256, 256)


def test_frame_store_random_access_and_metadata(tmp_path):
    rng = np.random.default_rng(0)
    clip = [cv2.resize(rng.integers(0, 255, (3, 4, 3), dtype=np.uint8), (32, 24)) for _ in range(7)]
    meta = framestore.write(tmp_path / "c.frames.zip", iter(clip), {"video": "c", "fps": 30.0}, quality=100)
    assert meta == {"video": "c", "fps": 30.0, "n_frames": 7, "width": 32, "height": 24}
    with framestore.FrameStore(tmp_path / "c.frames.zip") as store:
        for i in (6, 0, 3):
            errors = [np.abs(store[i].astype(int) - frame).mean() for frame in clip]
            assert errors[i] < 3 and np.argmin(errors) == i
            assert store.jpeg(i)[:2] == b"\xff\xd8"
        with pytest.raises(IndexError, match="frame 7"):
            store[7]


def test_frame_stores_are_byte_reproducible_and_frames_contiguous(tmp_path):
    clip = [np.full((16, 16, 3), i * 20, np.uint8) for i in range(3)]
    meta = {"video": "r", "fps": 30.0, "start_s": 1.0}
    framestore.write(tmp_path / "a.frames.zip", iter(clip), meta)
    framestore.write(tmp_path / "b.frames.zip", iter(clip), meta)
    assert (tmp_path / "a.frames.zip").read_bytes() == (tmp_path / "b.frames.zip").read_bytes()
    with framestore.FrameStore(tmp_path / "a.frames.zip") as store:
        assert store.meta["end_s"] == pytest.approx(1.1) and store[2].flags.c_contiguous


def test_a_failed_write_leaves_nothing_behind(tmp_path):
    def broken():
        yield np.zeros((8, 8, 3), np.uint8)
        raise video.VideoError("corrupt", "boom")

    target = tmp_path / "x.frames.zip"
    target.write_bytes(b"previous good output")
    with pytest.raises(video.VideoError):
        framestore.write(target, broken(), {"video": "x", "fps": 30.0})
    assert target.read_bytes() == b"previous good output"
    assert [p.name for p in tmp_path.iterdir()] == ["x.frames.zip"]


def test_atomic_path_publishes_only_on_success(tmp_path):
    with atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("done")
        assert not (tmp_path / "a.txt").exists()
    assert (tmp_path / "a.txt").read_text() == "done"


def test_a_truncated_stream_is_corrupt_not_a_short_snippet(make_video, tmp_path):
    path, _ = make_video(fps=30, seconds=3.0)
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # faststart: header intact
    row = frames.extract(snippet_row(cut, 0.0, 3.0), CFG, tmp_path / "cut.frames.zip")
    assert row["status"] == "corrupt" and "decoded only" in row["reason"]
    assert not (tmp_path / "cut.frames.zip").exists()


def test_motion_is_the_median_luma_change_so_cuts_between_stills_do_not_count():
    rng = np.random.default_rng(0)
    stills = [rng.integers(0, 256, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    slideshow = [stills[i // 10] for i in range(30)]  # three stills, two hard cuts
    motion = frames.Motion()
    assert list(motion.follow(slideshow)) == slideshow  # frames pass through unchanged
    assert len(motion.changes) == 29 and motion.value == 0.0 and max(motion.changes) > 50
    moving = [np.roll(stills[0], shift, axis=1) for shift in range(30)]  # a pan of 1 px per frame
    pan = frames.Motion()
    list(pan.follow(moving))
    luma = stills[0] @ np.array([0.299, 0.587, 0.114])  # BT.601
    expected = np.abs(np.roll(luma, 1, axis=1) - luma).mean()  # every step is the same shift
    assert pan.value == pytest.approx(expected, abs=0.05) and pan.value > 50  # OpenCV's luma is rounded
    single = frames.Motion()
    list(single.follow(stills[:1]))
    assert single.value == 0.0


def test_a_snippet_below_min_motion_is_static_and_keeps_no_frames(make_video, tmp_path):
    path, _ = make_video(fps=30, seconds=3.0)
    moving = frames.extract(snippet_row(path, 0.5, 2.5), CFG, tmp_path / "a.frames.zip")
    assert moving["status"] == "ok" and moving["motion"] > 0
    still = tmp_path / "still.mp4"
    first = next(video.decode(path, (160, 120)))
    video.encode([first] * 60, still, fps=30)
    row = frames.extract(snippet_row(still, 0.0, 2.0), {**CFG, "min_motion": 0.5}, tmp_path / "s.frames.zip")
    assert row["status"] == "static" and row["motion"] < 0.5
    assert row["reason"] == f"motion {row['motion']:g} grey levels per frame is below frames.min_motion 0.5"
    assert not (tmp_path / "s.frames.zip").exists()
    kept = frames.extract(snippet_row(path, 0.5, 2.5), {**CFG, "min_motion": 0.5}, tmp_path / "b.frames.zip")
    assert kept["status"] == "ok" and kept["motion"] == moving["motion"]
