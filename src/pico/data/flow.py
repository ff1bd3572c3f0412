"""Section 3.2: dense optical flow between consecutive 30 Hz frames, forward and backward.

Backends: RAFT (Teed & Deng 2020; torchvision's, with the weights trained on FlyingChairs +
FlyingThings3D and fine-tuned on the Sintel/KITTI/HD1K/Things mix, the paper's mixture), RAFT
small, and OpenCV's two-frame algorithms for CPUs: DIS (Kroeger et al. 2016), optionally followed
by a full-resolution variational refinement (Brox et al. 2004's energy, ``cv2.VariationalRefinement``),
and from opencv-contrib's ``optflow`` module DeepFlow (Weinzaepfel et al. 2013),
Dual TV-L1 (Zach et al. 2007) and dense RLOF (Senst et al. 2012). docs/occlusions.md measures
how well each lets Eq. 3 catch occlusions. Every backend maps a snippet's frames (T, H, W, 3)
uint8 to forward flow (frame t -> t+1) and backward flow (frame t+1 -> t), each float32
(T-1, 2, H, W) in pixels, x right and y down.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from pico import logs, rerun
from pico.data import sources
from pico.flow_backends import BACKENDS
from pico.store import files, flowstore, framestore, manifest

log = logging.getLogger(__name__)

#: OpenCV's presets, plus ``fine``: ``medium`` with its finest scale at full resolution
#: (bench/flow_speed.py at 455x256: 0.61x medium's end-point error for 3.4x its time).
DIS_PRESETS = {
    "ultrafast": (cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, None),
    "fast": (cv2.DISOPTICAL_FLOW_PRESET_FAST, None),
    "medium": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, None),
    "fine": (cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, 0),
}


class OpenCVFlow:
    """One of OpenCV's two-frame dense flow algorithms (``cv2.DenseOpticalFlow``) on every
    consecutive pair of a snippet, in both directions; grayscale frames, BGR with ``color``."""

    def __init__(self, algorithm, *, color: bool = False):
        self.algorithm, self.color = algorithm, color

    def pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from image ``a`` to image ``b``, (H, W, 2) float32."""
        return self.algorithm.calc(a, b, None)

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        images = [cv2.cvtColor(f, cv2.COLOR_RGB2BGR if self.color else cv2.COLOR_RGB2GRAY) for f in frames]
        n, h, w = len(images) - 1, *frames.shape[1:3]
        fwd, bwd = np.empty((n, 2, h, w), np.float32), np.empty((n, 2, h, w), np.float32)
        for t, (a, b) in enumerate(zip(images[:-1], images[1:])):
            fwd[t] = self.pair(a, b).transpose(2, 0, 1)
            bwd[t] = self.pair(b, a).transpose(2, 0, 1)
        return fwd, bwd


class DIS(OpenCVFlow):
    """OpenCV's Dense Inverse Search flow on grayscale frames (CPU). With ``refine`` > 0 its
    flow is refined once more at full resolution by ``cv2.VariationalRefinement`` with that
    many fixed-point iterations (DIS's own refinement runs 5 per scale, on coarser scales)."""

    def __init__(self, preset: str = "fine", refine: int = 0):
        base, finest_scale = DIS_PRESETS[preset]
        super().__init__(cv2.DISOpticalFlow_create(base))
        if finest_scale is not None:
            self.algorithm.setFinestScale(finest_scale)
        self.refinement = None
        if refine:
            self.refinement = cv2.VariationalRefinement_create()
            self.refinement.setFixedPointIterations(refine)

    def pair(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        flow = super().pair(a, b)
        return flow if self.refinement is None else self.refinement.calc(a, b, flow)


def contrib(backend: str):
    """opencv-contrib's ``cv2.optflow`` module, or an error naming the backend that needs it."""
    if not hasattr(cv2, "optflow"):
        raise RuntimeError(
            f"flow.backend {backend}: needs OpenCV's contrib modules (opencv-contrib-python-headless), "
            f"but cv2 {cv2.__version__} from {cv2.__file__} has no cv2.optflow"
        )
    return cv2.optflow


def opencv_flow(cfg: dict) -> OpenCVFlow:
    """The configured OpenCV backend (config ``flow``; OpenCV's default parameters): DIS from
    OpenCV's core, the others from its contrib factory that ``pico.flow_backends`` names."""
    backend = BACKENDS[cfg["backend"]]
    if backend.name == "dis":
        return DIS(cfg["dis_preset"], cfg["dis_refine"])
    return OpenCVFlow(getattr(contrib(backend.name), backend.builder)(), color=backend.color)


def load_raft(variant: str, weights: str):
    """torchvision's RAFT (``raft`` = large, ``raft_small``) in eval mode.

    ``weights="default"``: the mixed-dataset weights through torchvision's cache (downloaded
    once; clusters without internet pre-fill ``$TORCH_HOME``); otherwise a local ``.pth`` with
    the model's state dict, whose keys must match exactly.
    """
    import torch
    from torchvision.models import optical_flow as of

    backend = BACKENDS[variant]
    build = getattr(of, backend.builder)
    weights_enum, member = backend.default_weights.split(".")
    default = getattr(getattr(of, weights_enum), member)
    if weights == "default":
        return build(weights=default, progress=False).eval()
    path = Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"flow.weights: {path} does not exist")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    model = build(weights=None)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # missing, unexpected or mis-shaped keys
        detail = str(e).splitlines()[1].strip()
        raise ValueError(f"{path}: not {variant} weights: {detail[:300]}{'...' if len(detail) > 300 else ''}") from None
    return model.eval()


class RAFT:
    """RAFT on batches of frame pairs; both directions of a snippet share the batches.

    Frames are padded (replicate) to a multiple of 8 and the flow cropped back. With
    ``precision`` fp16 or bf16 the model runs under CUDA autocast; on CPU it runs in fp32.
    """

    def __init__(self, variant="raft", weights="default", iters=12, device="auto", precision="fp32", batch_size=8):
        import torch

        self.device = torch.device(
            "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
        )
        self.dtype = {"fp32": None, "fp16": torch.float16, "bf16": torch.bfloat16}[precision]
        if self.device.type != "cuda" and self.dtype is not None:
            log.info("flow.precision %s applies on CUDA only; running fp32 on %s", precision, self.device)
            self.dtype = None
        self.model = load_raft(variant, weights).to(self.device)
        self.iters, self.batch_size = iters, batch_size

    def __call__(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        import torch
        import torch.nn.functional as F

        n, height, width = len(frames), frames.shape[1], frames.shape[2]
        src = list(range(n - 1)) + list(range(1, n))  # forward pairs, then backward pairs
        dst = list(range(1, n)) + list(range(n - 1))
        with torch.inference_mode():
            x = torch.from_numpy(frames).to(self.device).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
            x = F.pad(x, (0, -width % 8, 0, -height % 8), mode="replicate")
            out = []
            for i in range(0, len(src), self.batch_size):
                a, b = x[src[i : i + self.batch_size]], x[dst[i : i + self.batch_size]]
                with torch.autocast(
                    self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None
                ):
                    flow = self.model(a, b, num_flow_updates=self.iters)[-1]
                out.append(flow[..., :height, :width].float().cpu())
            flows = torch.cat(out).numpy()
        return flows[: n - 1], flows[n - 1 :]


def estimator(cfg: dict):
    """The configured backend (config ``flow``), built as its family is (``pico.flow_backends``)."""
    if BACKENDS[cfg["backend"]].family == "opencv":
        return opencv_flow(cfg)
    return RAFT(cfg["backend"], cfg["weights"], cfg["iters"], cfg["device"], cfg["precision"], cfg["batch_size"])


def run_shard(rows: list[dict], cfg: dict, out_dir: str | Path) -> list[dict]:
    """Flow for every ok snippet of a shard into ``out_dir``; rows gain ``flow``, ``flow_bytes``
    and ``flow_epe`` (the codec's mean end-point error on this snippet, px).

    Frames of the next snippet are decoded while the current one computes; writing (JPEG
    encoding) runs in a thread too, at most one snippet behind (a 300-frame snippet's flow is
    about 0.56 GB in float32).

    Resumable inside the shard: files are written to ``partial_dir(out_dir)`` beside the output
    (not an output, so Snakemake leaves it to a rerun), each followed by a record of what it was
    made from (``made_from``, in ``<file>.json``); a rerun after a kill or a pre-emption keeps
    the files whose record matches and computes the rest, and the folder, less the records,
    becomes ``out_dir`` when the shard is done (the stored files do not depend on the run).
    """
    out_dir, partial = Path(out_dir), partial_dir(out_dir)
    todo = [r for r in rows if r["status"] == "ok"]
    partial.mkdir(parents=True, exist_ok=True)
    settings = rerun.flow_settings(cfg)
    wanted = {row["video"]: made_from(row, cfg, settings) for row in todo}
    done, compute = {}, []
    for row in todo:
        name = sources.file_name(row["video"]) + flowstore.SUFFIX
        kept = _kept(partial / name, wanted[row["video"]])
        if kept is None:
            compute.append(row)
        else:
            done[row["video"]] = {**row, "flow": str(out_dir / name), "flow_bytes": kept.bytes, "flow_epe": kept.epe}
    if done:
        log.info("flow: %d of %d snippets kept from %s (an earlier run of this shard)", len(done), len(todo), partial)
    if compute:
        _compute(compute, cfg, wanted, out_dir=out_dir, partial=partial, done=done)
    expected = {Path(r["flow"]).name for r in done.values() if r.get("flow")}
    for stale in {p.name for p in partial.iterdir()} - expected:  # records; videos gone from the shard or failed
        (partial / stale).unlink()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(partial, out_dir)
    return [done.get(r["video"], r) for r in rows]


def partial_dir(out_dir: str | Path) -> Path:
    """Where a flow job writes its shard's files until the shard is done (``run_shard``)."""
    return Path(f"{out_dir}.partial")


def made_from(row: dict, cfg: dict, settings: dict) -> dict:
    """What a snippet's stored flow depends on: the flow settings that change it
    (``pico.rerun.flow_settings``), the frames file and the weights file (size and
    modification time: a rebuilt file is another input)."""
    inputs = {"frames": row["frames"]} | ({"weights": cfg["weights"]} if os.path.isfile(cfg.get("weights", "")) else {})
    stats = {key: os.stat(path) for key, path in inputs.items()}
    return {"settings": settings, **{key: [inputs[key], s.st_size, s.st_mtime_ns] for key, s in stats.items()}}


def _record(path: Path) -> Path:
    """Where ``run_shard`` notes what the file at ``path`` was made from."""
    return path.with_name(path.name + ".json")


def _kept(path: Path, wanted: dict) -> flowstore.Stored | None:
    """A file an earlier run of the shard finished, if its record says it was made from ``wanted``."""
    try:
        if json.loads(_record(path).read_text()) != wanted:
            return None
        with flowstore.FlowStore(path) as store:
            return flowstore.Stored(path.stat().st_size, store.meta["epe"])
    except FileNotFoundError:
        return None
    except (ValueError, OSError, KeyError) as e:  # damaged: computed again
        log.warning("flow: %s is not readable (%s); computing it again", path, e)
        return None


def _store(path: Path, fwd: np.ndarray, bwd: np.ndarray, meta: dict, made: dict, codec: dict) -> flowstore.Stored:
    """``flowstore.write``, then the record of what the file was made from."""
    stored = flowstore.write(path, fwd, bwd, meta, **codec)
    files.write_json(made, _record(path), indent=None, sort_keys=True)
    return stored


def _compute(rows: list[dict], cfg: dict, wanted: dict, *, out_dir: Path, partial: Path, done: dict) -> None:
    """Estimate and store the flow of ``rows`` into ``partial``, each with its record from
    ``wanted`` (by video); ``done`` gains their rows, with their paths in ``out_dir``."""
    estimate = estimator(cfg)
    codec = cfg["codec"]
    writes = []
    with ThreadPoolExecutor(1) as writer:
        loaded = files.prefetched(_load_frames, rows)
        for row, frames in logs.progress(loaded, len(rows), "flow", log, name=lambda item: item[0]["video"]):
            fwd, bwd = estimate(frames)
            if not (np.isfinite(fwd).all() and np.isfinite(bwd).all()):  # e.g. an fp16 overflow
                done[row["video"]] = manifest.fail(row, "flow_failed", f"{cfg['backend']} gave NaN or infinite flow")
                continue
            name = sources.file_name(row["video"]) + flowstore.SUFFIX
            meta = {"backend": cfg["backend"], "video": row["video"]}
            job = writer.submit(_store, partial / name, fwd, bwd, meta, wanted[row["video"]], codec)
            writes.append((row, out_dir / name, job))
            if len(writes) > 1:
                _finish(writes.pop(0), done)
        for pending in writes:
            _finish(pending, done)


def _load_frames(row: dict) -> np.ndarray:
    with framestore.FrameStore(row["frames"]) as store:
        return store.all()


def _finish(pending: tuple, done: dict) -> None:
    row, path, job = pending
    stored = job.result()
    done[row["video"]] = {**row, "flow": str(path), "flow_bytes": stored.bytes, "flow_epe": stored.epe}
