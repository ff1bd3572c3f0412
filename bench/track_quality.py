"""Which tracking options to default to? The tracks stage's own tracks of a finished run of a
synthetic dataset, scored on the ground truth of its *pretraining* videos, per CPU flow backend
and cut, with what each option buys PiCO: the wrong pairs it removes, the temporal gap it costs.

Input: a finished run (``--run DIR``: its config files, ``--configfile``, default
``config/config.yaml``, validated with the schema's defaults; ``results/DATASET/``), of a
synthetic dataset (``--dataset``, default the config's first synthetic one). Per ok video of its
manifest (``--videos`` of them): the frames the flow stage read (the frame store: the synthetic
video encoded to MP4, decoded from ``start_s``, resampled to ``frames.fps``, resized, JPEG), the
raw tracks the tracks stage wrote, and the ground truth regenerated from (seed, video) as the
download stage makes the video (``synthetic.make_video`` at the manifest's source rate and
size, the config's world). Each stored frame shows one source frame (ffmpeg's fps filter
drops or repeats them); which one is found by rendering the candidates near its time and
taking the closest. Every track's start point (its first row: t0, x, y) is put on the surface
seen there at that time (``Scene.surfaces``), followed (``Scene.follow``) and tested for
visibility (``Scene.visible``) at every frame's time, in source pixels mapped to the frame's
(pixel centres, the resize's scale).

Backends (bench/occlusions.py's names: DIS presets, farneback, deepflow, tvl1, rlof): the run's
own (``run``) reads the run's raw tracks; any other computes the flow of the frame stores, stores
it through the run's codec and tracks the same start points (``tracks.track``), as the flow and
tracks stages would. Per cut (γ, δ) and motion-boundary setting (+MB): the cut
(``tracks.cut``), then the pair stage's own draws (``pairs.video_draws``: anchor sampling,
the run's seed, ``sampling.draws_per_video``, ``frames_per_video``, ``endpoints``). A pair is
*wrong* where the point is occluded in truth on either frame or its tracked position is more
than ``--wrong-px`` px (frame pixels) from the truth on either. Columns: wrong pairs (share),
pairs per draw (mean, as the pair set's health counts them), the median temporal gap per draw
(as the health's ``temporal_gaps`` counts it: one per frame pair) and per pair, the mean track
length (frames), and TAP-Vid's AJ / <δ^x_avg / OA (mode ``first``, ``tapvid.evaluate_video``)
of the same points on the same frames and flow. For the run's own backend at the run's cut the
pairs per draw and gap per draw are those of its health summaries (``health/pairs/pico/anchor``),
printed beside the table as a check.

``--frames clean`` swaps the frame stores for clean renders of the same source frames (no
MP4, no JPEG; resized as ffmpeg's area filter does, cv2.INTER_AREA) for every backend but
``run``: what the codecs cost the flow.

    PYTHONPATH=src:bench .venv/bin/python bench/track_quality.py --run DIR [--configfile config/config.yaml ...]
        [--dataset demo] [--videos 4] [--backends run dis:fast ...] [--wrong-px 2] [--frames store|clean] [--no-tapvid]
"""

from __future__ import annotations

import argparse
import itertools
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pyarrow.compute as pc
import yaml
from snakemake.utils import update_config

from occlusions import estimator
from pico.config import validate
from pico.data import pairs, synthetic, tracks
from pico.evaluation import tapvid
from pico.store import flowstore, framestore, manifest
from pico.store.files import read_json

BACKENDS = ["run", "dis:ultrafast", "dis:fast", "dis:medium", "farneback", "deepflow", "tvl1", "rlof"]
#: (γ, δ) around the demo's (0, 4), each without and with the motion-boundary stop.
CUTS = [(0.0, 1.0), (0.0, 4.0), (0.0, 16.0), (0.1, 4.0)]
SCHEMA = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"


class Run:
    """A finished run of a synthetic dataset: its config, manifest rows and paths."""

    def __init__(self, folder: str, dataset: str | None, configfiles: list[str]):
        self.folder = Path(folder)
        cfg = {}
        for name in configfiles:  # merged in order, as Snakemake merges --configfile
            update_config(cfg, yaml.safe_load((self.folder / name).read_text()))
        self.cfg = validate(cfg, SCHEMA)
        datasets = self.cfg["datasets"]
        self.dataset = dataset or next(n for n, d in datasets.items() if d.get("source") == "synthetic")
        self.settings = datasets[self.dataset]
        self.results = self.folder / "results" / self.dataset
        self.rows = []
        for table in sorted((self.results / "videos").glob("*.parquet")):
            self.rows += [{**r, "shard": table.stem} for r in manifest.read(table) if r["status"] == "ok"]
        self.seed = self.cfg["seed"]
        tracking = self.cfg["tracking"]
        self.max_gamma, self.max_delta = tracking["max_gamma"], tracking["max_delta"]
        self.cut = (*tracking["thresholds"][0], tracking["motion_boundary"])
        self.flow = self.cfg["flow"]
        self.codec = self.flow["codec"]
        sampling = {k: v for k, v in self.cfg["sampling"].items() if k != "strategy"}
        self.pairs_cfg = {"seed": self.seed, **sampling}
        self._raw = {}

    @property
    def backend(self) -> str:
        b = self.flow["backend"]
        return f"dis:{self.flow['dis_preset']}" if b == "dis" else b

    def path(self, row: dict, *parts: str) -> Path:
        return self.folder / row[parts[0]] if len(parts) == 1 else self.results.joinpath(*parts)

    def raw(self, row: dict):
        """The run's raw tracks of one video."""
        if row["shard"] not in self._raw:
            self._raw[row["shard"]] = tracks.read(self.results / "tracks" / "raw" / f"{row['shard']}.parquet")
        table = self._raw[row["shard"]]
        return table.filter(pc.equal(table["video"], row["video"]))

    def health(self) -> dict:
        """The run's pair-set health at its cut, summed over shards: pairs per draw, gaps."""
        gamma, delta, _ = self.cut
        folder = self.results / "health" / "pairs" / "pico" / "anchor" / f"g{gamma:g}_d{delta:g}"
        total = {}
        for path in sorted(folder.glob("*.json")):
            summary = read_json(path)
            for key in ("pairs_per_draw", "temporal_gaps"):
                h = np.array(summary[key])
                t = total.get(key, np.zeros(0, int))
                n = max(len(h), len(t))
                total[key] = np.pad(t, (0, n - len(t))) + np.pad(h, (0, n - len(h)))
        if not total:
            return {}
        per_draw, gaps = total["pairs_per_draw"], total["temporal_gaps"]
        return {
            "draws": int(per_draw.sum()),
            "pairs/draw": float((np.arange(len(per_draw)) * per_draw).sum() / per_draw.sum()),
            "median gap/draw": float(np.median(np.repeat(np.arange(len(gaps)), gaps))),
        }


class SpansCut(ValueError):
    """A snippet across a hard cut that shot detection missed: no one scene is its truth."""


class Truth:
    """One video's ground truth on its stored frames: which source frame each shows, the clean
    renders of those, and the exact tracks of its tracks' start points."""

    def __init__(self, run: Run, row: dict):
        synth = run.settings["synthetic"]
        self.vid = synthetic.make_video(
            run.seed,
            row["video"],
            row["duration_s"],
            row["src_fps"],
            row["src_width"],
            row["src_height"],
            synth["cut"],
            synthetic.World.from_settings(synth["world"]),
        )
        with framestore.FrameStore(run.path(row, "frames")) as store:
            self.frames = store.all()
        self.size = (row["width"], row["height"])
        self.scale = (row["src_width"] / row["width"], row["src_height"] / row["height"])
        self.source = self._match(row)
        self.clean = np.stack([self._render(k) for k in self.source])
        times = [self.vid.at(k / row["src_fps"]) for k in self.source]
        scenes = {id(s) for s, _ in times}
        if len(scenes) != 1:
            raise SpansCut(f"{row['video']}: its snippet spans {len(scenes)} shots")
        self.scene, self.times = times[0][0], np.array([t for _, t in times])

    def _render(self, k: int) -> np.ndarray:
        if k not in self._cache:
            scene, t = self.vid.at(k / self.vid.fps)
            self._cache[k] = cv2.resize(scene.render(t)["rgb"], self.size, interpolation=cv2.INTER_AREA)
        return self._cache[k]

    def _match(self, row: dict) -> list[int]:
        """Per stored frame, the source frame it shows: the closest render of those near its time."""
        self._cache, out = {}, []
        for i, frame in enumerate(self.frames):
            near = int(np.floor((row["start_s"] + i / row["fps"]) * row["src_fps"]))
            candidates = [k for k in range(near - 2, near + 4) if 0 <= k < self.vid.n_frames]
            errors = [np.mean((self._render(k).astype(np.float32) - frame) ** 2) for k in candidates]
            out.append(candidates[int(np.argmin(errors))])
        return out

    def tracks_of(self, raw) -> tuple[np.ndarray, np.ndarray]:
        """Exact positions (N, T, 2) in frame pixels and occlusion (N, T) of the raw tracks'
        start points (track ids 0 .. N-1, each's first row)."""
        trk, t = raw["track"].to_numpy(), raw["t"].to_numpy()
        first = np.r_[True, trk[1:] != trk[:-1]]
        ids, t0 = trk[first], t[first]
        (sx, sy), n = self.scale, ids.max() + 1
        x = (raw["x"].to_numpy()[first] + 0.5) * sx - 0.5  # frame pixel centres -> source pixels
        y = (raw["y"].to_numpy()[first] + 0.5) * sy - 0.5
        start = self.times[t0]
        layer = self.scene.surfaces(x, y, start)
        px, py = self.scene.follow(layer, x, y, start, self.times)
        seen = self.scene.visible(layer, px, py, self.times)
        points = np.full((n, len(self.times), 2), np.nan, np.float32)
        occluded = np.ones((n, len(self.times)), bool)
        points[ids, :, 0], points[ids, :, 1] = ((px + 0.5) / sx - 0.5).T, ((py + 0.5) / sy - 0.5).T
        occluded[ids] = ~seen.T
        return points, occluded


def starts(raw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The raw tracks' start points (t0, x, y), indexed by track id."""
    trk = raw["track"].to_numpy()
    first = np.r_[True, trk[1:] != trk[:-1]]
    order = np.argsort(trk[first])
    return tuple(raw[c].to_numpy()[first][order] for c in ("t", "x", "y"))


def draws_of(run: Run, row: dict, cut, points: np.ndarray, occluded: np.ndarray, wrong_px: float) -> dict:
    """The pair stage's draws on one video's cut: per draw its pairs, gap, and wrong pairs."""
    columns = {name: cut[name].to_numpy(zero_copy_only=False) for name in ("track", "t", "x", "y", "end")}
    out = {"per_draw": [], "gap_draw": [], "gap_pair": [], "wrong": []}
    for _, pico in pairs.video_draws("anchor", row, columns, run.pairs_cfg):
        trk, a, b = pico["track"], pico["frame_a"], pico["frame_b"]
        bad = occluded[trk, a] | occluded[trk, b]
        bad |= np.linalg.norm(np.stack([pico["xa"], pico["ya"]], 1) - points[trk, a], axis=1) > wrong_px
        bad |= np.linalg.norm(np.stack([pico["xb"], pico["yb"]], 1) - points[trk, b], axis=1) > wrong_px
        out["per_draw"].append(len(trk))
        out["gap_draw"].append(int(abs(b[0] - a[0])))
        out["gap_pair"] += list(np.abs(b - a))
        out["wrong"] += list(bad)
    return out


def backend_raw(name: str, run: Run, row: dict, truth: Truth, args, folder: Path):
    """Raw tracks of one video by backend ``name`` (``run``: the run's own), and its flow file."""
    raw = run.raw(row)
    if name == "run":
        return raw, run.path(row, "flow", row["shard"], f"{row['video']}{flowstore.SUFFIX}")
    frames = truth.clean if args.frames == "clean" else truth.frames
    fwd, bwd = estimator(name)(frames)
    path = folder / f"{row['video']}.{name.replace(':', '_')}{flowstore.SUFFIX}"
    flowstore.write(path, fwd, bwd, {"video": row["video"]}, **run.codec)
    t0, x, y = starts(raw)
    with flowstore.FlowStore(path) as store:
        rows = tracks.track(tracks.stored_fields(store), len(frames), t0, x, y, run.max_gamma, run.max_delta)
    return tracks.table(row["video"], rows), path


def run_backend(name: str, run: Run, videos: list, args, folder: Path) -> list[dict]:
    start = time.perf_counter()
    found = {
        cut: {"per_draw": [], "gap_draw": [], "gap_pair": [], "wrong": [], "length": [], "tv": []}
        for cut in itertools.product(CUTS, (False, True))
    }
    for row, truth, (points, occluded) in videos:
        raw, flow_path = backend_raw(name, run, row, truth, args, folder)
        frames = truth.clean if args.frames == "clean" and name != "run" else truth.frames
        tv = tapvid.Video(row["video"], frames, points, occluded)
        for (gamma, delta), boundary in found:
            cut = tracks.cut(raw, gamma, delta, motion_boundary=boundary)
            into = found[((gamma, delta), boundary)]
            for key, values in draws_of(run, row, cut, points, occluded, args.wrong_px).items():
                into[key] += values
            into["length"].append(cut.num_rows / len(np.unique(cut["track"].to_numpy())))
            if args.tapvid:
                into["tv"].append(
                    tapvid.evaluate_video(
                        tv, flow_path, mode="first", gamma=gamma, delta=delta, motion_boundary=boundary
                    )[0]
                )
    print(f"  {name}: {time.perf_counter() - start:.0f} s", file=sys.stderr)
    rows = []
    for ((gamma, delta), boundary), f in found.items():
        label = f"run ({run.backend})" if name == "run" else name
        out = {
            "backend": label,
            "cut": f"({gamma:g}, {delta:g})" + (" +MB" if boundary else ""),
            "wrong pairs": float(np.mean(f["wrong"])) if f["wrong"] else float("nan"),
            "pairs/draw": float(np.mean(f["per_draw"])) if f["per_draw"] else 0.0,
            "median gap/draw": float(np.median(f["gap_draw"])) if f["gap_draw"] else float("nan"),
            "median gap/pair": float(np.median(f["gap_pair"])) if f["gap_pair"] else float("nan"),
            "track length": float(np.mean(f["length"])),
        }
        if args.tapvid:
            summary = tapvid.summary(f["tv"])
            out |= {"AJ first": summary["aj"], "δavg first": summary["delta_avg"], "OA first": summary["oa"]}
        rows.append(out)
    return rows


def table(rows: list[dict], run: Run, args, *, videos: int, seconds: float, check: dict) -> str:
    keys = list(rows[0])
    gamma, delta, boundary = run.cut
    lines = [
        f"Run {args.run} (dataset {run.dataset}): {videos} pretraining videos x 60 frames of the "
        f"{'clean renders of its' if args.frames == 'clean' else 'frame stores of its'} snippets, the tracks "
        f"stage's {run.cfg['tracking']['points_per_video']} start points each; flow through the "
        f"{run.codec['scheme']} q{run.codec['quality']} codec; the pair stage's draws "
        f"({run.pairs_cfg['draws_per_video']} per video, seed {run.seed}); a pair wrong beyond {args.wrong_px:g} px "
        f"or occluded; OpenCV {cv2.__version__}; {seconds / 60:.1f} min.",
        "",
        f"Check, the run's health at its cut ({gamma:g}, {delta:g}){' +MB' if boundary else ''}, all its videos: "
        + ", ".join(f"{k} {v:.3g}" for k, v in check.items()),
        "",
        "| " + " | ".join(keys) + " |",
        "|---|---|" + "--:|" * (len(keys) - 2),
    ]
    for row in rows:
        cells = [row["backend"], row["cut"]] + [
            f"{row[k]:.1%}" if k == "wrong pairs" else f"{row[k]:.3g}" for k in keys[2:]
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", required=True, help="a finished run's folder (its config/ and results/)")
    parser.add_argument(
        "--configfile", nargs="+", default=["config/config.yaml"], help="the run's config files, in its folder"
    )
    parser.add_argument("--dataset", help="the run's synthetic dataset (default: its config's first)")
    parser.add_argument("--videos", type=int, default=4, help="pretraining videos, the manifest's first (default 4)")
    parser.add_argument("--backends", nargs="+", default=BACKENDS, help=f"default: {' '.join(BACKENDS)}")
    parser.add_argument("--wrong-px", type=float, default=2.0, help="a pair is wrong beyond this (default 2 px)")
    parser.add_argument("--frames", choices=["store", "clean"], default="store", help="flow of (default: store)")
    parser.add_argument("--no-tapvid", dest="tapvid", action="store_false", help="skip AJ / δavg / OA")
    args = parser.parse_args()
    start = time.perf_counter()
    run = Run(args.run, args.dataset, args.configfile)
    videos, skipped = [], []
    for row in run.rows:
        if len(videos) == args.videos:
            break
        try:
            truth = Truth(run, row)
        except SpansCut:
            skipped.append(row["video"])
            continue
        videos.append((row, truth, truth.tracks_of(run.raw(row))))
        print(f"  truth {row['video']}: source frames {truth.source[0]}..{truth.source[-1]}", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory(prefix="pico-track-quality-") as tmp:
        for name in args.backends:
            rows += run_backend(name, run, videos, args, Path(tmp))
    print(table(rows, run, args, videos=len(videos), seconds=time.perf_counter() - start, check=run.health()))
    if skipped:
        print(f"\nSkipped, a snippet across a cut that shot detection missed: {', '.join(skipped)}")


if __name__ == "__main__":
    main()
