"""Section 3.2-3.3: flow chaining (Eq. 2), the forward-backward cut (Eq. 3), anchor sampling,
point pairs for PiCO and the static baselines."""

import numpy as np
import pytest

from pico import pairs, sampling, tracks

H, W = 48, 64


def constant(u, v, n_fields):
    field = np.stack([np.full((H, W), u, np.float32), np.full((H, W), v, np.float32)])
    return [(field, -field)] * n_fields


def test_constant_flow_moves_points_exactly_and_stops_them_at_the_border():
    t0, x, y = np.array([0, 3], np.int32), np.array([2.25, 10.0], np.float32), np.array([5.5, 40.0], np.float32)
    rows = tracks.track(constant(1.5, -0.5, 9), 10, t0, x, y, 0.5, 16)
    first = rows["track"] == 0
    np.testing.assert_allclose(rows["x"][first], 2.25 + 1.5 * np.arange(10))
    np.testing.assert_allclose(rows["y"][first], 5.5 - 0.5 * np.arange(10))
    assert rows["fb_sq"][first][:-1].tolist() == [0.0] * 9 and np.isnan(rows["fb_sq"][first][-1])
    np.testing.assert_allclose(rows["mag_sq"][first][:-1], 2 * (1.5**2 + 0.5**2))
    assert rows["t"][~first].tolist() == list(range(3, 10))  # starts at its own frame


def test_affine_flow_is_followed_exactly():
    """Bilinear interpolation reproduces an affine field exactly, so the chained positions are
    the iterated affine map x -> x + A x + b."""
    A, b = np.array([[0.02, -0.01], [0.015, 0.01]], np.float32), np.array([0.3, -0.2], np.float32)
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    fwd = np.stack([A[0, 0] * xx + A[0, 1] * yy + b[0], A[1, 0] * xx + A[1, 1] * yy + b[1]])
    rows = tracks.track([(fwd, -fwd)] * 5, 6, np.zeros(1, np.int32), np.array([20.3], np.float32),
                        np.array([15.7], np.float32), 10.0, 1e6)
    p = np.array([20.3, 15.7], np.float64)
    for t in range(6):
        np.testing.assert_allclose([rows["x"][t], rows["y"][t]], p, atol=1e-4)
        p = p + A @ p + b


def test_background_points_stop_where_a_moving_square_covers_them():
    """A 10-px square moves right 3 px per frame over a static background. Under (γ=0, δ=4)
    a background point's track ends on the last frame before the square covers it: there
    w = 0 but ŵ = -3, so |w + ŵ|² = 9 ≥ 4."""
    n, speed = 12, 3.0

    def left(t):
        return 5 + speed * t

    def fields(t):
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        inside = lambda t: (xx >= left(t)) & (xx < left(t) + 10) & (yy >= 10) & (yy < 20)  # noqa: E731
        fwd = np.stack([np.where(inside(t), speed, 0), np.zeros((H, W))]).astype(np.float32)
        bwd = np.stack([np.where(inside(t + 1), -speed, 0), np.zeros((H, W))]).astype(np.float32)
        return fwd, bwd

    xs = np.array([30.0, 40.0, 50.0, 60.0], np.float32)  # row y = 15, right of the square
    raw = tracks.track(map(fields, range(n - 1)), n, np.zeros(4, np.int32), xs, np.full(4, 15.0, np.float32), 0.5, 16)
    cut = tracks.cut(tracks.table("v", raw), 0, 4).to_pandas()
    for k, x in enumerate(xs):
        covered = next((t for t in range(n) if left(t) <= x < left(t) + 10), n)  # first frame the square covers it
        last = cut[cut.track == k].t.max()
        assert last == min(covered - 1, n - 1), (x, last, covered)
        assert (cut[cut.track == k].x == x).all()  # the background does not move


@pytest.fixture(scope="module")
def raw_table():
    """Raw tracks on random smooth flow with noisy backward flow: varied fb and mag terms."""
    rng = np.random.default_rng(0)
    flows = [(rng.normal(0, 2, (2, H, W)).astype(np.float32), rng.normal(0, 2, (2, H, W)).astype(np.float32)) for _ in range(15)]
    t0, x, y = tracks.start_points(300, 16, W, H, rng)
    return tracks.table("v", tracks.track(flows, 16, t0, x, y, 0.5, 16))


def same(a, b) -> bool:
    """Tables equal, NaN matching NaN."""
    return a.schema == b.schema and a.to_pandas().equals(b.to_pandas())


def lengths(table):
    df = table.to_pandas()
    return df.groupby("track").t.agg(["min", "max"])


def test_the_cut_is_a_prefix_and_monotone_in_gamma_and_delta(raw_table):
    raw = raw_table.to_pandas().set_index(["track", "t"])
    previous = None
    for gamma, delta in [(0, 0.5), (0, 4), (0.1, 4), (0.5, 4), (0.5, 16)]:
        cut = tracks.cut(raw_table, gamma, delta)
        df = cut.to_pandas().set_index(["track", "t"])
        assert df.index.isin(raw.index).all()
        np.testing.assert_array_equal(df[["x", "y"]], raw.loc[df.index, ["x", "y"]])  # same rows
        spans = lengths(cut)
        assert (spans["min"] == lengths(raw_table).loc[spans.index, "min"]).all()  # prefixes
        assert (df.groupby(level=0).size() == spans["max"] - spans["min"] + 1).all()  # contiguous
        last = df.groupby(level=0).tail(1)
        assert last.fb_sq.isna().all() and df.drop(last.index).fb_sq.notna().all()
        kept = df.drop(last.index)
        assert (kept.fb_sq.astype(float) < gamma * kept.mag_sq.astype(float) + delta).all()
        if previous is not None:  # looser thresholds never shorten a track
            assert (spans["max"] >= previous.loc[spans.index, "max"]).all()
        previous = spans
    assert same(tracks.cut(raw_table, 0.5, 16), raw_table)  # the loosest cut is the raw tracks


def test_tracking_is_identical_on_rerun(raw_table, tmp_path):
    rng = np.random.default_rng(0)
    flows = [(rng.normal(0, 2, (2, H, W)).astype(np.float32), rng.normal(0, 2, (2, H, W)).astype(np.float32)) for _ in range(15)]
    t0, x, y = tracks.start_points(300, 16, W, H, rng)
    again = tracks.table("v", tracks.track(flows, 16, t0, x, y, 0.5, 16))
    assert same(again, raw_table)
    tracks.write(again, tmp_path / "a.parquet")
    tracks.write(raw_table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


def test_anchor_sampling_on_hand_built_trajectories():
    """With anchor 5 every track is active; the endpoints furthest from it are
    [0, 6] -> 0, [1, 9] -> 9 (a tie goes to the later end), [2, 9] -> 9, [5, 7] -> 7,
    [4, 12] -> 12, [3, 8] -> 8: frame 9 has two, then 0, 7, 8, 12 one each (earliest wins)."""
    start = np.array([0, 1, 2, 5, 4, 3])
    end = np.array([6, 9, 9, 7, 12, 8])
    picks = set()
    for seed in range(200):
        frames = sampling.anchor_frames(start, end, 15, 3, np.random.default_rng(seed))
        if frames[0] == 5:
            assert frames == [5, 9, 0], frames
        picks.add(frames[0])
    assert picks == set(range(13))  # anchors are drawn over the covered frames only
    assert sampling.anchor_frames(np.array([], int), np.array([], int), 15, 3, np.random.default_rng(0)) == []


def test_random_sampling_draws_distinct_frames():
    frames = sampling.random_frames(30, 4, np.random.default_rng(0))
    assert len(set(frames)) == 4 and all(0 <= f < 30 for f in frames)


def test_pairs_per_method_follow_the_tracks_and_the_cap(raw_table):
    cols = {k: raw_table[k].to_numpy() for k in ("track", "t", "x", "y")}
    row = {"video": "v", "n_frames": 16, "width": W, "height": H}
    cfg = {"seed": 0, "frames_per_video": 3, "max_pairs": 400, "videos_per_batch": 4}
    frames, got = pairs.video_pairs("pico", "anchor", row, cols, cfg)
    assert 0 < len(got["xa"]) <= 100 and len(frames) == 3
    df = raw_table.to_pandas().set_index(["track", "t"])
    for k in range(len(got["xa"])):
        a, b, trk = int(got["frame_a"][k]), int(got["frame_b"][k]), int(got["track"][k])
        assert a < b and {a, b} <= set(frames)
        assert (df.loc[(trk, a), "x"], df.loc[(trk, b), "y"]) == (got["xa"][k], got["yb"][k])
    frames, static = pairs.video_pairs("static_video", "anchor", row, cols, cfg)
    assert len(static["xa"]) == 100 and (static["xa"] == static["xb"]).all() and (static["track"] == -1).all()
    assert (static["frame_a"] < static["frame_b"]).all()
    frames, single = pairs.video_pairs("static_frame", "anchor", row, cols, cfg)
    assert len(frames) == 1 and (single["frame_a"] == frames[0]).all() and (single["frame_b"] == frames[0]).all()


def test_tracking_from_stored_codes_equals_tracking_the_decoded_flow(tmp_path):
    """StoredField samples the uint8 codes and dequantizes after: the codec's map is affine."""
    from pico import flowstore

    rng = np.random.default_rng(3)
    fwd, bwd = (rng.normal(0, 2, (5, 2, H, W)).astype(np.float32) for _ in range(2))
    flowstore.write(tmp_path / "f.flow.zip", fwd, bwd, {}, scheme="frame_range", bound=20, quality=90)
    t0, x, y = tracks.start_points(200, 6, W, H, rng)
    with flowstore.FlowStore(tmp_path / "f.flow.zip") as store:
        decoded = [(store.field("fwd", t), store.field("bwd", t)) for t in range(5)]
        stored = [(tracks.StoredField(*store.quantized("fwd", t)), tracks.StoredField(*store.quantized("bwd", t))) for t in range(5)]
    a, b = tracks.track(decoded, 6, t0, x, y, 0.5, 16), tracks.track(stored, 6, t0, x, y, 0.5, 16)
    assert (a["track"] == b["track"]).all() and (a["t"] == b["t"]).all()
    np.testing.assert_allclose(a["x"], b["x"], atol=1e-3)
    np.testing.assert_allclose(a["mag_sq"], b["mag_sq"], rtol=2e-3)
