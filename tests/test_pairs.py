"""Section 3.3-3.4: anchor sampling, per-draw frame selections and point pairs for PiCO and the
static baselines, and how pretraining draws them (visits, query swap, the per-iteration budget)."""

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from pico.data import pairs, sampling, tracks
from pico.learn import model, pretrain, training
from pico.store import framestore, zipstore
from picotest import random_raw_tracks

H, W = 48, 64
OBSERVED, ALL = "observed", "all"


@pytest.fixture(scope="module")
def raw_table():
    return random_raw_tracks(H, W)


def columns(table) -> dict[str, np.ndarray]:
    return {k: table[k].to_numpy() for k in ("track", "t", "x", "y", "end")}


def test_anchor_sampling_on_hand_built_trajectories():
    """With anchor 5 every track is active; the endpoints furthest from it are
    [0, 6] -> 0, [1, 9] -> 9 (a tie goes to the later end), [2, 9] -> 9, [5, 7] -> 7,
    [4, 12] -> 12, [3, 8] -> 8: frame 9 has two, then 0, 7, 8, 12 one each (earliest wins)."""
    start = np.array([0, 1, 2, 5, 4, 3])
    end = np.array([6, 9, 9, 7, 12, 8])
    none = np.zeros(6, bool)
    picks = set()
    for seed in range(200):
        frames = sampling.anchor_frames(start, end, none, 15, 3, np.random.default_rng(seed))
        if frames[0] == 5:
            assert frames == [5, 9, 0], frames
        picks.add(frames[0])
    assert picks == set(range(13))  # anchors are drawn over the covered frames only
    assert sampling.anchor_frames(np.array([], int), np.array([], int), none[:0], 15, 3, np.random.default_rng(0)) == []


def test_a_track_alive_at_the_snippet_end_has_no_endpoint_there():
    """Tracks [0, 14] and [2, 14] run to the last frame of a 15-frame snippet, [1, 6] stopped at
    6. Counting every end, anchor 4 picks frame 14 (two ends there); with observed endpoints the
    two tracks alive at the end count their starts, 0 and 2, and [1, 6] its start 1 (3 frames
    from the anchor, its end 6 only 2): one endpoint each, the earliest frame, 0, wins."""
    start, end = np.array([0, 2, 1]), np.array([14, 14, 6])
    ends = np.array([tracks.END_SNIPPET, tracks.END_SNIPPET, tracks.END_OCCLUDED], np.int8)
    for seed in range(100):
        rng = np.random.default_rng(seed)
        everything = sampling.select("anchor", start, end, ends, 15, 2, np.random.default_rng(seed), endpoints=ALL)
        observed = sampling.select("anchor", start, end, ends, 15, 2, rng, endpoints=OBSERVED)
        if everything[0] == 4:
            assert everything == [4, 14] and observed == [4, 0], (everything, observed)
        assert 14 not in observed[1:] or observed[0] == 14  # the last frame is never an observed endpoint
    assert sampling.end_reasons(np.array([0, 0, 1, 1, 1]), np.array([0, 2, 0, 0, 3], np.int8)).tolist() == [2, 3]


def test_random_sampling_draws_distinct_frames():
    frames = sampling.random_frames(30, 4, np.random.default_rng(0))
    assert len(set(frames)) == 4 and all(0 <= f < 30 for f in frames)


CFG = {"seed": 0, "frames_per_video": 3, "draws_per_video": 6, "endpoints": OBSERVED}
ROW = {"video": "v", "n_frames": 16, "width": W, "height": H}


def test_pico_pairs_follow_the_tracks_on_every_draw(raw_table):
    draws = pairs.video_draws("anchor", ROW, columns(raw_table), CFG)
    assert len(draws) == 6 and len({tuple(frames) for frames, _ in draws}) > 1  # new frames per draw
    df = raw_table.to_pandas().set_index(["track", "t"])
    for frames, got in draws:
        assert len(frames) == 3 and len(got["xa"]) > 0
        for k in range(0, len(got["xa"]), 7):
            a, b, trk = int(got["frame_a"][k]), int(got["frame_b"][k]), int(got["track"][k])
            assert a < b and {a, b} <= set(frames)
            assert (df.loc[(trk, a), "x"], df.loc[(trk, b), "y"]) == (got["xa"][k], got["yb"][k])


def test_the_three_methods_differ_only_in_the_correspondence_map(raw_table):
    """Same draws, same frames, same points on frame a; static_video maps each point to itself
    on frame b, static_frame to itself on frame a."""
    draws = pairs.video_draws("anchor", ROW, columns(raw_table), CFG)
    p, v, f = (pairs.method_columns(m, draws, seed=0, video="v") for m in ("pico", "static_video", "static_frame"))
    for k in ("frame_a", "track", "xa", "ya", "draw"):
        assert (p[k] == v[k]).all() and (p[k] == f[k]).all()
    assert (v["xb"] == p["xa"]).all() and (v["yb"] == p["ya"]).all() and (v["frame_b"] == p["frame_b"]).all()
    assert (f["xb"] == p["xa"]).all() and (f["frame_b"] == p["frame_a"]).all()
    assert (p["draw"] == np.repeat(np.arange(len(draws)), [len(d["xa"]) for _, d in draws])).all()


def test_the_shuffled_control_gives_every_query_a_wrong_key_of_its_own_frame_pair(raw_table):
    """PiCO's frames and query points; each key point another query's key of the same frame
    pair (never its own); frame pairs of one point left out; the same draw for the same seed."""
    draws = pairs.video_draws("anchor", ROW, columns(raw_table), CFG)
    p = pairs.method_columns("pico", draws, seed=0, video="v")
    s = pairs.method_columns("shuffled", draws, seed=0, video="v")
    again = pairs.method_columns("shuffled", draws, seed=0, video="v")
    assert all(np.array_equal(s[k], again[k]) for k in s)
    ends = ("frame_a", "frame_b", "track", "xb", "yb")
    true_key = {(a, b, t): (x, y) for a, b, t, x, y in zip(*(p[k].tolist() for k in ends))}
    key_points = {}
    for a, b, _, x, y in zip(*(p[k].tolist() for k in ends)):
        key_points.setdefault((a, b), set()).add((x, y))
    singles = sum(len(v) == 1 for v in key_points.values())
    assert 0 < len(s["xa"]) and len(s["xa"]) >= len(p["xa"]) - singles * len(draws)
    for a, b, t, x, y in zip(*(s[k].tolist() for k in ends)):
        assert (x, y) != true_key[a, b, t] and (x, y) in key_points[a, b]
    queries = set(zip(*(p[k].tolist() for k in ("frame_a", "frame_b", "track", "xa", "ya", "draw"))))
    assert set(zip(*(s[k].tolist() for k in ("frame_a", "frame_b", "track", "xa", "ya", "draw")))) <= queries
    assert not np.array_equal(s["xb"], pairs.method_columns("shuffled", draws, seed=1, video="v")["xb"])


@pytest.fixture
def two_videos(raw_table, tmp_path):
    """A shard of two videos, ``a`` and ``b`` (frames in a frame store each): flow-table rows and cut."""
    rng = np.random.default_rng(2)
    rows = []
    for video in ("a", "b"):
        store = tmp_path / f"{video}.frames.zip"
        clip = [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(16)]
        framestore.write(store, iter(clip), {"video": video, "fps": 30.0})
        rows.append({**ROW, "video": video, "status": "ok", "frames": str(store)})
    cut = pa.concat_tables([raw_table.set_column(0, "video", pa.array([v] * raw_table.num_rows)) for v in "ab"])
    return rows, cut


def test_one_pass_writes_each_methods_set_as_a_pass_for_it_alone(two_videos, tmp_path):
    """A shard of two videos drawn once for the three methods gives, per method, the files a
    pass for that method alone gives; the static sets' points are PiCO's, and static_frame's
    frames file holds only the frames its views use."""
    rows, cut = two_videos
    methods = ["pico", "static_video", "static_frame"]

    def out(folder, method):
        path = tmp_path / folder / method / "00000.parquet"
        return path, pairs.frames_path(path)

    pairs.run_shard(
        [(rows, cut)], methods=methods, strategy="anchor", settings=CFG, outs=[out("together", m) for m in methods]
    )
    for method in methods:
        pairs.run_shard([(rows, cut)], methods=[method], strategy="anchor", settings=CFG, outs=[out("alone", method)])
        for together, alone in zip(out("together", method), out("alone", method)):
            assert pq.read_table(together).equals(pq.read_table(alone)), together
    (p, p_frames), (v, _), (f, f_frames) = (pairs.read(out("together", m)[0]) for m in methods)
    assert p.num_rows == v.num_rows == f.num_rows > 0
    assert pairs.index(out("together", "pico")[0]) == [("a", 6), ("b", 6)]
    assert p.select(["video", "frame_a", "xa", "ya"]).equals(f.select(["video", "frame_a", "xa", "ya"]))
    assert set(f_frames["frame"].to_pylist()) == set(f["frame_a"].to_pylist()) < set(p_frames["frame"].to_pylist())


def test_a_group_of_shards_gives_the_files_of_one_shard_of_all_their_videos(two_videos, tmp_path):
    """An ablation's pair job over a group of shards (``datasets.<name>.shards_per_pair_job``)
    takes them one at a time and writes what one shard holding all their videos gives."""
    rows, cut = two_videos
    by_video = pairs.by_video(cut)
    outs = {name: [(tmp_path / f"{name}.parquet", tmp_path / f"{name}.frames.parquet")] for name in ("one", "group")}
    pairs.run_shard([(rows, cut)], methods=["pico"], strategy="random", settings=CFG, outs=outs["one"])
    parts = ((rows[i : i + 1], by_video[rows[i]["video"]]) for i in range(2))  # a shard per video, lazily
    pairs.run_shard(parts, methods=["pico"], strategy="random", settings=CFG, outs=outs["group"])
    for one, group in zip(outs["one"][0], outs["group"][0]):  # pairs, frames
        assert pq.read_table(one).equals(pq.read_table(group)) and pq.read_table(one).num_rows > 0, group


def test_a_video_whose_tracks_never_meet_has_no_draw():
    """Random frames of a video whose tracks each live on one frame share no trajectory."""
    cols = {
        "track": np.arange(5, dtype=np.int32),
        "t": np.arange(5, dtype=np.int32),
        "x": np.ones(5, np.float32),
        "y": np.ones(5, np.float32),
        "end": np.full(5, tracks.END_OCCLUDED, np.int8),
    }
    assert pairs.video_draws("random", {**ROW, "n_frames": 5}, cols, CFG) == []


@pytest.fixture(scope="module")
def pair_file(raw_table, tmp_path_factory):
    """A pairs shard of two videos in the pairs stage's layout, from real draws; smooth random frames."""
    folder = tmp_path_factory.mktemp("pairs")
    rng = np.random.default_rng(1)
    videos = []
    for video in ("a", "b"):
        draws = pairs.video_draws("anchor", {**ROW, "video": video}, columns(raw_table), CFG)
        cols = pairs.method_columns("pico", draws, seed=0, video=video)
        used = sorted({f for frames, _ in draws for f in frames})
        images = {
            f: cv2.resize(rng.integers(0, 255, (6, 8, 3), dtype=np.uint8), (W, H), interpolation=cv2.INTER_CUBIC)
            for f in used
        }
        videos.append((video, cols, {f: zipstore.encode_jpeg(i, 95) for f, i in images.items()}))
    path = folder / "00000.parquet"
    pairs.write(videos, path, pairs.frames_path(path))
    return str(path)


def test_the_index_comes_from_the_footer_and_items_are_determined_by_their_key(pair_file):
    assert pairs.index(pair_file) == [("a", 6), ("b", 6)]
    data = pretrain.PairData([pair_file], 32, seed=0)
    item = data[(3, 0, 1, 0)]
    again = data[(3, 0, 1, 0)]
    assert all(
        torch.equal(x, y) for x, y in zip(flat(item), flat(again))
    )  # determined by (seed, iteration, slot, visit)
    assert item[0].shape == (3, 32, 32) and len(item[2]) > 0


def test_kept_footers_serve_the_same_draws_frames_and_items(pair_file):
    """``keep_footers`` parses the two footers once (``pairs.footers``) instead of per fetch."""
    kept = pretrain.PairData([pair_file], 32, seed=0, keep_footers=True)
    read = pretrain.PairData([pair_file], 32, seed=0)
    assert kept.footers[0][0].equals(pq.read_metadata(pair_file)) and read.footers is None
    draws, jpegs = pairs.read_video(pair_file, 1, "b", parsed=kept.footers[0])
    again, jpegs_again = pairs.read_video(pair_file, 1, "b")
    assert jpegs == jpegs_again and all(np.array_equal(draws[k], again[k]) for k in again)
    for key in [(0, 0, 0, 0), (5, 1, 1, 3)]:
        assert all(torch.equal(x, y) for x, y in zip(flat(kept[key]), flat(read[key])))


def flat(item) -> list[torch.Tensor]:
    """An item's tensors: the views and points, then each colour draw's fields."""
    return [*item[:6], *(t for colour in item[6:] for t in colour)]


def test_visits_take_a_videos_draws_in_turn(pair_file):
    """Over its visits a video gives other frames and points; the sampler visits every video
    once per epoch, its visit number being the epoch."""
    data = pretrain.PairData([pair_file], 64, seed=0)
    served = [round(float(data[(0, 0, 0, visit)][2].sum()), 3) for visit in range(12)]
    assert served[:6] == served[6:] and len(set(served)) >= 4  # visit v takes draw v mod 6
    batches = list(training.IterationSampler(2, 2, 0, 5, seed=0))
    assert [key[3] for batch in batches for key in batch] == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    assert all(sorted(key[2] for key in batch) == [0, 1] for batch in batches)
    assert [k[3] for k in next(iter(training.IterationSampler(3, 4, 0, 1, seed=0)))] == [0, 0, 0, 1]


def test_the_query_is_the_later_frame_half_of_the_time(tmp_path):
    """One draw between a black frame 0 and a white frame 5: which view comes first shows in
    its brightness (the views are uncoloured until the batch is on the training device)."""
    cols = {
        "frame_a": np.zeros(4, np.int32),
        "frame_b": np.full(4, 5, np.int32),
        "track": np.arange(4, dtype=np.int32),
        **{k: np.full(4, 20.0, np.float32) for k in ("xa", "ya", "xb", "yb")},
        "draw": np.zeros(4, np.int32),
    }
    jpegs = {f: zipstore.encode_jpeg(np.full((H, W, 3), value, np.uint8), 95) for f, value in ((0, 0), (5, 255))}
    path = tmp_path / "00000.parquet"
    pairs.write([("v", cols, jpegs)], path, pairs.frames_path(path))
    data = pretrain.PairData([str(path)], 32, seed=0)
    later_first = [bool(data[(i, 0, 0, 0)][0].float().mean() > data[(i, 0, 0, 0)][1].float().mean()) for i in range(60)]
    assert 15 < sum(later_first) < 45


def test_the_budget_holds_over_the_global_batch():
    """Three processes with 10, 0 and 30 pairs and a budget of 16: each keeps its share of one
    uniform draw of 16 of the 40, the same draw whichever process computes it."""
    counts = [10, 0, 30]
    kept = [pretrain.within_budget(counts, rank, 16, np.random.default_rng(5)) for rank in range(3)]
    assert sum(len(k) for k in kept) == 16 and len(kept[1]) == 0
    assert all(len(set(k.tolist())) == len(k) and (k < c).all() for k, c in zip(kept, counts))
    assert pretrain.within_budget(counts, 2, 64, np.random.default_rng(5)).tolist() == list(range(30))


def test_point_features_sample_the_map_at_the_points_cell_coordinates():
    """A map whose channels are the cell's own (column, row): a point x lies at (x - 1.5) / 4
    cells (cell j's centre is pixel 4j + 1.5), interpolated bilinearly, clamped at the border."""
    h, w = 6, 8
    rows, cols = torch.meshgrid(
        torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij"
    )
    maps = torch.stack([cols, rows])[None].repeat(2, 1, 1, 1)
    x = torch.tensor([1.5, 5.5, 7.0, 0.0, 31.0])
    y = torch.tensor([1.5, 9.5, 3.0, 0.0, 23.0])
    got = model.point_features(maps, torch.tensor([0, 1, 0, 1, 0]), x, y)
    want = torch.stack([((x - 1.5) / 4).clamp(0, w - 1), ((y - 1.5) / 4).clamp(0, h - 1)], 1)
    torch.testing.assert_close(got, want)


def test_point_embeddings_are_the_projected_map_sampled_at_the_points():
    """Projecting only the four cells around each point gives what projecting the whole map
    and sampling it gives (the head and the normalisation act per cell), gradients included;
    the sampled embeddings are normalised again (unit length, as MoCo's last step)."""
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(3, 16, 5, 7, generator=g, requires_grad=True)
    head = model.projection_head(16, 32)
    batch = torch.tensor([0, 2, 1, 1, 0, 2])
    x, y = torch.rand(6, generator=g) * 30 - 1, torch.rand(6, generator=g) * 22 - 1  # border points too
    assert model.projects_cells(len(x), 3 * 5 * 7)  # 24 of the 105 cells: the four-cell path
    got = model.point_embeddings(maps, head, batch, x, y)
    normalize = torch.nn.functional.normalize
    want = normalize(model.point_features(normalize(head(maps), dim=1), batch, x, y), dim=1)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got.norm(dim=1), torch.ones(len(x)))
    (grad_got,) = torch.autograd.grad(got.sum(), maps)
    (grad_want,) = torch.autograd.grad(want.sum(), maps)
    torch.testing.assert_close(grad_got, grad_want)
    assert model.point_embeddings(maps, head, batch[:0], x[:0], y[:0]).shape == (0, 16)
    dense = (
        torch.arange(60) % 3,
        torch.rand(60, generator=g) * 27,
        torch.rand(60, generator=g) * 19,
    )
    assert not model.projects_cells(60, 3 * 5 * 7)  # 240 cells: the whole map, the same values
    torch.testing.assert_close(
        model.point_embeddings(maps, head, *dense),
        normalize(model.point_features(normalize(head(maps), dim=1), *dense), dim=1),
    )
