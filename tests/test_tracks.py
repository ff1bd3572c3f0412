"""Section 3.2: flow chaining (Eq. 2) and the forward-backward cut (Eq. 3)."""

import numpy as np
import pytest

from pico.data import tracks
from picotest import random_raw_tracks

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
    rows = tracks.track(
        [(fwd, -fwd)] * 5,
        6,
        np.zeros(1, np.int32),
        np.array([20.3], np.float32),
        np.array([15.7], np.float32),
        10.0,
        1e6,
    )
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


def ends(rows) -> dict[int, tuple[int, int]]:
    """Each track's (last t, end reason); every other row's reason must be 0."""
    last = np.r_[rows["track"][1:] != rows["track"][:-1], True]
    assert (rows["end"][~last] == 0).all()
    return {int(k): (int(t), int(e)) for k, t, e in zip(rows["track"][last], rows["t"][last], rows["end"][last])}


def test_tracks_end_on_leaving_the_frame_or_at_the_snippets_end():
    """Flow (3, 0): from x = 55 the point is at 64 > W - 1 after three steps, so its last row is
    t = 2 (left the frame); from x = 5 it is at 32 on the last frame t = 9 (snippet end)."""
    rows = tracks.track(
        constant(3.0, 0.0, 9),
        10,
        np.zeros(2, np.int32),
        np.array([55.0, 5.0], np.float32),
        np.full(2, 20.0, np.float32),
        0.5,
        16,
    )
    assert ends(rows) == {0: (2, tracks.END_LEFT), 1: (9, tracks.END_SNIPPET)}
    assert rows["end"].dtype == np.int8 and tracks.table("v", rows).schema == tracks.SCHEMA


def disagreeing(error: float, at: int, n_fields: int = 9):
    """Flow (1, 0) whose backward flow is off by ``error`` px in x on step ``at`` only:
    |w + ŵ|² = error² there, 0 elsewhere."""
    fields = constant(1.0, 0.0, n_fields)
    fwd, bwd = fields[at]
    fields[at] = (fwd, bwd + np.array([error, 0], np.float32)[:, None, None])
    return fields


def test_a_failed_forward_backward_test_ends_the_track_on_the_step_before_the_occlusion():
    start = dict(t0=np.zeros(1, np.int32), x=np.array([10.0], np.float32), y=np.array([20.0], np.float32))
    raw = tracks.track(disagreeing(5.0, at=4), 10, *start.values(), 0.5, 16)  # 25 > max_delta: the raw track stops
    assert ends(raw) == {0: (4, tracks.END_OCCLUDED)}
    raw = tracks.track(disagreeing(3.0, at=4), 10, *start.values(), 0.5, 16)  # 9 < 16: the raw track survives
    assert ends(raw) == {0: (9, tracks.END_SNIPPET)}
    cut = tracks.cut(tracks.table("v", raw), 0, 4).to_pandas()  # 9 > 4: the cut stops it at t = 4
    assert cut.t.tolist() == list(range(5)) and cut.end.tolist() == [0, 0, 0, 0, tracks.END_OCCLUDED]
    assert cut.fb_sq.isna().tolist() == [False] * 4 + [True] and cut.boundary.isna().tolist() == [False] * 4 + [True]
    looser = tracks.cut(tracks.table("v", raw), 0, 10).to_pandas()  # 9 < 10: kept whole, its raw reason too
    assert looser.end.tolist() == [0] * 9 + [tracks.END_SNIPPET]


def test_the_motion_boundary_term_is_sundarams_eq6_and_ends_tracks_only_when_asked():
    """Flow u = 1 right of x = 32, 0 left of it: at x = 31.5 the central difference over ±1 px
    is du/dx = 0.5, so the ratio is 0.25 / (0.01 * 0.5² + 0.002) = 55.6 > 1; away from the
    step it is 0. An affine field has |∇u|² + |∇v|² = the sum of its matrix's squares."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    step = np.stack([(xx >= 32).astype(np.float32), np.zeros((H, W), np.float32)])
    ratio = tracks.motion_boundary_ratio(
        step, np.array([31.5, 10.0]), np.array([20.0, 20.0]), np.array([[0.5, 0.0], [0.0, 0.0]])
    )
    np.testing.assert_allclose(ratio, [0.25 / (0.01 * 0.25 + 0.002), 0.0], rtol=1e-6)
    A, b = np.array([[0.02, -0.01], [0.015, 0.01]], np.float32), np.array([0.3, -0.2], np.float32)
    affine = np.stack([A[0, 0] * xx + A[0, 1] * yy + b[0], A[1, 0] * xx + A[1, 1] * yy + b[1]])
    x, y = np.array([0.0, 20.3, 63.0]), np.array([5.0, 15.7, 47.0])  # at the borders: one-sided differences
    w = tracks.sample(affine, x, y)
    np.testing.assert_allclose(
        tracks.motion_boundary_ratio(affine, x, y, w), (A**2).sum() / (0.01 * (w**2).sum(0) + 0.002), rtol=1e-5
    )

    fields = [(step, -step)] * 9  # consistent both ways: Eq. 3 never fails
    rows = tracks.track(
        fields, 10, np.zeros(2, np.int32), np.array([31.5, 10.0], np.float32), np.full(2, 20.0, np.float32), 0.5, 16
    )
    raw = tracks.table("v", rows)
    assert ends(rows) == {0: (9, tracks.END_SNIPPET), 1: (9, tracks.END_SNIPPET)}  # raw tracks record, never apply it
    assert same(tracks.cut(raw, 0, 4), raw)
    cut = tracks.cut(raw, 0, 4, motion_boundary=True).to_pandas()
    assert cut[cut.track == 0].end.tolist() == [tracks.END_BOUNDARY]  # at the boundary from its first frame
    assert cut[cut.track == 1].end.tolist() == [0] * 9 + [tracks.END_SNIPPET]


@pytest.fixture(scope="module")
def raw_table():
    return random_raw_tracks(H, W)


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
        assert (df.drop(last.index).end == 0).all() and last.end.isin([1, 2, 3]).all()
        truncated = raw.groupby(level=0).size().loc[spans.index] > spans["max"] - spans["min"] + 1
        assert (last.end.to_numpy()[truncated.to_numpy()] == tracks.END_OCCLUDED).all()  # where the cut shortened it
        kept = df.drop(last.index)
        assert (kept.fb_sq.astype(float) < gamma * kept.mag_sq.astype(float) + delta).all()
        if previous is not None:  # looser thresholds never shorten a track
            assert (spans["max"] >= previous.loc[spans.index, "max"]).all()
        previous = spans
    assert same(tracks.cut(raw_table, 0.5, 16), raw_table)  # the loosest cut is the raw tracks


def test_tracking_is_identical_on_rerun(raw_table, tmp_path):
    rng = np.random.default_rng(0)
    flows = [
        (rng.normal(0, 2, (2, H, W)).astype(np.float32), rng.normal(0, 2, (2, H, W)).astype(np.float32))
        for _ in range(15)
    ]
    t0, x, y = tracks.start_points(300, 16, W, H, rng)
    again = tracks.table("v", tracks.track(flows, 16, t0, x, y, 0.5, 16))
    assert same(again, raw_table)
    tracks.write(again, tmp_path / "a.parquet")
    tracks.write(raw_table, tmp_path / "b.parquet")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()


@pytest.mark.parametrize("scheme", ["frame_range", "tiled"])
def test_tracking_from_stored_codes_equals_tracking_the_decoded_flow(tmp_path, scheme):
    """StoredField dequantizes only the four pixels around each point, each by its own tile's
    map, and interpolates: the decoded field's bilinear interpolation, between tiles too."""
    from pico.store import flowstore

    rng = np.random.default_rng(3)
    fwd, bwd = (rng.normal(0, 2, (5, 2, H, W)).astype(np.float32) for _ in range(2))
    flowstore.write(tmp_path / "f.flow.zip", fwd, bwd, {}, scheme=scheme, bound=20, quality=90)
    t0, x, y = tracks.start_points(200, 6, W, H, rng)
    with flowstore.FlowStore(tmp_path / "f.flow.zip") as store:
        decoded = [(store.field("fwd", t), store.field("bwd", t)) for t in range(5)]
        stored = [
            (tracks.StoredField(*store.quantized("fwd", t)), tracks.StoredField(*store.quantized("bwd", t)))
            for t in range(5)
        ]
        assert len(np.unique(store.ranges[..., 1] - store.ranges[..., 0])) > 20 * (scheme == "tiled")
    np.testing.assert_allclose(stored[0][0].sample(x, y), tracks.bilinear(decoded[0][0], x, y), rtol=1e-5, atol=1e-5)
    a, b = tracks.track(decoded, 6, t0, x, y, 0.5, 16), tracks.track(stored, 6, t0, x, y, 0.5, 16)
    assert (a["track"] == b["track"]).all() and (a["t"] == b["t"]).all()
    np.testing.assert_allclose(a["x"], b["x"], atol=1e-3)
    np.testing.assert_allclose(a["mag_sq"], b["mag_sq"], rtol=2e-3)
