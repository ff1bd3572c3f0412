"""ffprobe/ffmpeg wrappers: probe a file, decode frames at an exact rate and size, encode."""

from __future__ import annotations

import itertools
import json
import logging
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

#: ffprobe format names of still-image demuxers: such a file has a "video" stream of one picture.
IMAGE_FORMATS = ("image2", "png_pipe", "jpeg_pipe", "bmp_pipe", "gif", "webp_pipe", "tiff_pipe")


class VideoError(Exception):
    """A file that is not a usable video; ``status`` is its manifest status."""

    def __init__(self, status: str, reason: str):
        super().__init__(f"{status}: {reason}")
        self.status, self.reason = status, reason


@dataclass(frozen=True)
class Probe:
    duration: float  # seconds
    fps: float  # average frame rate of the first video stream
    width: int  # display size (rotation applied)
    height: int


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    """``cmd``'s output as text; bytes that are not UTF-8 (a file name in a message) replaced."""
    return subprocess.run(cmd, capture_output=True, text=True, errors="replace", stdin=subprocess.DEVNULL)


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0/0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value)


def probe(path: str | Path) -> Probe:
    """Read duration, frame rate and size of the first video stream of ``path``.

    Raises VideoError with status ``corrupt`` (unreadable, empty), ``no_video_stream``
    (audio only, a still image) or ``too_short`` (a single frame).
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise VideoError("corrupt", f"{path}: empty file (0 bytes)")
    cmd = ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)]
    out = _run(cmd)
    if out.returncode != 0:
        raise VideoError("corrupt", f"{path}: ffprobe failed: {_last_line(out.stderr)}")
    info = json.loads(out.stdout or "{}")
    fmt = info.get("format", {})
    streams = [s for s in info.get("streams", []) if s.get("codec_type") == "video"]
    streams = [s for s in streams if not s.get("disposition", {}).get("attached_pic")]
    if not streams:
        kinds = sorted({s.get("codec_type", "?") for s in info.get("streams", [])}) or ["none"]
        raise VideoError("no_video_stream", f"{path}: no video stream (streams: {', '.join(kinds)})")
    if fmt.get("format_name") in IMAGE_FORMATS:
        raise VideoError("no_video_stream", f"{path}: a still image ({fmt['format_name']}), not a video")
    stream = streams[0]
    fps = _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate"))
    duration = float(stream.get("duration") or 0.0) or video_end(path)
    nb_frames = int(stream.get("nb_frames") or 0)
    if nb_frames == 1:
        raise VideoError("too_short", f"{path}: a single frame")
    if fps <= 0 or duration <= 0:
        raise VideoError("corrupt", f"{path}: no frame rate or duration in the container")
    width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
    if _rotation(stream) % 180 == 90:
        width, height = height, width
    if width <= 0 or height <= 0:
        raise VideoError("corrupt", f"{path}: video stream has no frame size")
    return Probe(duration=duration, fps=fps, width=width, height=height)


def video_end(path: str | Path) -> float:
    """The first video stream's length in seconds from its packets' timestamps (the last one's
    end less the first one's start), for containers that state no stream duration (Matroska,
    WebM): theirs is the longest stream's, and audio may run on well past the video. Demuxing
    only, no decoding: 0.13 s for 10 minutes at 30 fps. 0.0 when no packet has a timestamp."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,duration_time"]
    out = _run([*cmd, "-of", "csv=p=0", str(path)])
    spans = []
    for line in out.stdout.splitlines():
        pts, _, length = line.partition(",")
        start = _seconds(pts)
        if start is not None:  # N/A: a packet without a timestamp
            spans.append((start, start + (_seconds(length) or 0.0)))
    return round(max(end for _, end in spans) - min(start for start, _ in spans), 6) if spans else 0.0


def _seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _rotation(stream: dict) -> int:
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            return int(side["rotation"])
    return int(stream.get("tags", {}).get("rotate", 0))


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else "no message"


#: A decoded stream may end this many seconds before its container says (a video stream a bit
#: shorter than the audio) and still count as complete; beyond that it is truncated or damaged.
SHORTFALL_S = 0.5


def check_complete(path: str | Path, n: int, expected: int, fps: float) -> None:
    """Raise VideoError("corrupt") if only ``n`` of ``expected`` frames could be decoded."""
    if expected - n > SHORTFALL_S * fps:
        raise VideoError("corrupt", f"{path}: decoded only {n} of {expected} frames: truncated or damaged stream")


def output_size(width: int, height: int, short_side: int) -> tuple[int, int]:
    """Size with the short side scaled to ``short_side``, aspect kept (Section 3.1's resize)."""
    scale = short_side / min(width, height)
    if width <= height:
        return short_side, max(1, round(height * scale))
    return max(1, round(width * scale)), short_side


def decode(
    path: str | Path,
    size: tuple[int, int],
    start: float = 0.0,
    n_frames: int | None = None,
    fps: float | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB uint8 frames (H, W, 3) of ``path`` from ``start`` seconds.

    With ``fps``, ffmpeg's fps filter resamples to exactly that rate (dropping or repeating
    source frames by timestamp), so a 25 fps source gives 30 frames per second of video;
    ``n_frames`` caps the count, which is then exact unless the video ends first.
    Raises VideoError("corrupt", ...) if ffmpeg fails.
    """
    width, height = size
    filters = ([f"fps={fps}"] if fps else []) + [f"scale={width}:{height}:flags=area"]
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error"]
    cmd += ["-ss", f"{start:.6f}"] if start > 0 else []
    cmd += ["-i", str(path), "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ",".join(filters)]
    cmd += ["-frames:v", str(n_frames)] if n_frames is not None else []
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    frame_bytes = width * height * 3
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            while chunk := proc.stdout.read(frame_bytes):
                if len(chunk) < frame_bytes:
                    break
                yield np.frombuffer(chunk, np.uint8).reshape(height, width, 3)
        finally:
            proc.stdout.close()
            code = proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace")
    if code != 0:
        raise VideoError("corrupt", f"{path}: ffmpeg decode failed: {_last_line(message)}")


def encode(frames: Iterable[np.ndarray], path: str | Path, fps: float, crf: int = 18) -> None:
    """Encode RGB uint8 frames to H.264 (yuv420p) at ``fps``; size from the first frame."""
    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[:2]
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    cmd += ["-movflags", "+faststart", str(path)]
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=err)
        try:
            for frame in itertools.chain([first], frames):
                proc.stdin.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        finally:
            proc.stdin.close()
            code = proc.wait()
        err.seek(0)
        message = err.read().decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"ffmpeg could not encode {path}: {_last_line(message)}")
