"""The demo world: textured objects of several classes moving over textured backgrounds.

Deterministic given (seed, video id). Scenes are defined in continuous time and image
coordinates, so the generator can render at any rate the frames themselves and their exact
ground truth: per-pixel class labels, depth (painter's order: nearer objects occlude) and the
true motion (forward flow) from t to t + dt. Later stages use the ground truth for the demo's
segmentation and depth benchmark and to test flow and tracking.

Each object (a "thing": disc, box, triangle, ring) has its own class-specific texture
pattern and moves by translation, rotation and scaling; objects overlap, so they occlude each
other. The background is "stuff": a smooth sky above a horizon, rough ground below it. With ``cut`` a video is two shots of
unrelated scenes joined by a hard cut (what TransNetV2 must find).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from pico import seeding, video
from pico.io import atomic_path

CLASSES = ("void", "disc", "box", "triangle", "ring", "sky", "ground")
THINGS = (1, 2, 3, 4)  # objects; the background is "stuff": sky above a horizon, ground below
SKY, GROUND = 5, 6
TEXTURE = 128  # object texture side, covering local coordinates [-1, 1]^2


@dataclass(frozen=True)
class Thing:
    """A planar textured object; local coords u in [-1,1]^2 map to p = c(t) + s(t) R(a(t)) u."""

    label: int
    depth: float
    texture: np.ndarray  # (TEXTURE, TEXTURE, 3) float32
    center: tuple[float, float]
    velocity: tuple[float, float]  # px / s
    scale: float  # px, half the object's side at t = 0
    growth: float  # d log(scale) / dt
    angle: float  # rad
    spin: float  # rad / s

    def pose(self, t: float) -> tuple[np.ndarray, float, float]:
        c = np.asarray(self.center) + np.asarray(self.velocity) * t
        return c, self.scale * np.exp(self.growth * t), self.angle + self.spin * t

    def to_local(self, x: np.ndarray, y: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        c, s, a = self.pose(t)
        dx, dy = x - c[0], y - c[1]
        cos, sin = np.cos(a), np.sin(a)
        return (cos * dx + sin * dy) / s, (-sin * dx + cos * dy) / s

    def to_image(self, u: np.ndarray, v: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        c, s, a = self.pose(t)
        cos, sin = np.cos(a), np.sin(a)
        return c[0] + s * (cos * u - sin * v), c[1] + s * (sin * u + cos * v)

    def inside(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        name = CLASSES[self.label]
        if name == "disc":
            return u * u + v * v < 1.0
        if name == "box":
            return np.maximum(np.abs(u), np.abs(v)) < 0.85
        if name == "triangle":
            return (v < 0.8) & (np.abs(u) < 0.55 * (0.8 - v) + 0.05) & (v > -0.95)
        r2 = u * u + v * v
        return (r2 < 1.0) & (r2 > 0.3)  # ring


@dataclass(frozen=True)
class Scene:
    width: int
    height: int
    background: np.ndarray  # ground texture (H_b, W_b, 3) float32, sampled with reflection
    sky: np.ndarray  # sky texture, same size
    horizon: float  # background content row above which the sky is
    pan: tuple[float, float]  # background content velocity, px / s
    things: tuple[Thing, ...]  # far to near

    def render(self, t: float, dt: float | None = None) -> dict[str, np.ndarray]:
        """Frame ``rgb`` (H,W,3 uint8), ``labels`` (H,W uint8), ``instances`` (H,W uint8: index of
        the visible object + 1, 0 for the background), ``depth`` (H,W float32) at time ``t``;
        with ``dt`` also ``flow`` (2,H,W float32): where each pixel's content is at t+dt."""
        h, w = self.height, self.width
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        px, py = self.pan
        bx, by = (x - px * t).astype(np.float32), (y - py * t).astype(np.float32)
        ground = cv2.remap(self.background, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        sky = cv2.remap(self.sky, bx, by, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)
        above = by < self.horizon
        rgb = np.where(above[..., None], sky, ground)
        labels = np.where(above, SKY, GROUND).astype(np.uint8)
        instances = np.zeros((h, w), np.uint8)
        depth = np.where(above, 50.0, 20.0 - 12.0 * y / h).astype(np.float32)  # ground: nearer at the bottom
        flow = np.stack([np.full((h, w), px * dt), np.full((h, w), py * dt)]) if dt else None
        for k, thing in enumerate(self.things, 1):
            u, v = thing.to_local(x, y, t)
            mask = thing.inside(u, v)
            if not mask.any():
                continue
            tu = ((u + 1) * 0.5 * (TEXTURE - 1)).astype(np.float32)
            tv = ((v + 1) * 0.5 * (TEXTURE - 1)).astype(np.float32)
            rgb[mask] = cv2.remap(thing.texture, tu, tv, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101)[mask]
            labels[mask] = thing.label
            instances[mask] = k
            depth[mask] = thing.depth
            if dt:
                x2, y2 = thing.to_image(u[mask], v[mask], t + dt)
                flow[0][mask], flow[1][mask] = x2 - x[mask], y2 - y[mask]
        out = {"rgb": np.clip(rgb, 0, 255).astype(np.uint8), "labels": labels, "instances": instances, "depth": depth}
        if dt:
            out["flow"] = flow.astype(np.float32)
        return out


@dataclass(frozen=True)
class Video:
    """A synthetic video: shots (scene, duration in seconds) played back to back."""

    shots: tuple[tuple[Scene, float], ...]
    fps: float

    @property
    def duration(self) -> float:
        return sum(d for _, d in self.shots)

    @property
    def n_frames(self) -> int:
        return int(round(self.duration * self.fps))

    @property
    def cuts(self) -> list[float]:
        """Times (s) of the hard cuts between shots."""
        return [float(c) for c in np.cumsum([d for _, d in self.shots])[:-1]]

    def at(self, t: float) -> tuple[Scene, float]:
        """The scene shown at time ``t`` and the time within its shot."""
        for scene, duration in self.shots:
            if t < duration:
                return scene, t
            t -= duration
        scene, duration = self.shots[-1]
        return scene, t + duration

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(self.n_frames):
            scene, t = self.at(i / self.fps)
            yield scene.render(t)["rgb"]


def _noise(rng: np.random.Generator, h: int, w: int, octaves: int = 4, roughness: float = 0.5) -> np.ndarray:
    """Multi-octave noise in [0, 1], (h, w); octave k has amplitude ``roughness**k``."""
    total = np.zeros((h, w), np.float32)
    for k in range(octaves):
        cells = 4 * 2**k
        coarse = rng.standard_normal((cells, cells)).astype(np.float32)
        total += cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC) * roughness**k
    total -= total.min()
    return total / max(float(total.max()), 1e-6)


def _colorize(pattern: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Blend two random colours by ``pattern`` in [0, 1] -> (h, w, 3) float32."""
    a, b = rng.uniform(20, 235, size=(2, 3)).astype(np.float32)
    return a + pattern[..., None] * (b - a)


def _texture(label: int, rng: np.random.Generator) -> np.ndarray:
    """A class-specific pattern (stripes, checks, spots, speckle) with random colours."""
    n = TEXTURE
    y, x = np.mgrid[0:n, 0:n].astype(np.float32) / n
    name = CLASSES[label]
    if name == "disc":
        theta, freq = rng.uniform(0, np.pi), rng.uniform(4, 8)
        pattern = 0.5 + 0.5 * np.sin(2 * np.pi * freq * (x * np.cos(theta) + y * np.sin(theta)))
    elif name == "box":
        k = int(rng.integers(4, 8))
        pattern = ((np.floor(x * k) + np.floor(y * k)) % 2).astype(np.float32)
    elif name == "triangle":
        spots = (rng.random((n, n)) > 0.985).astype(np.float32)
        pattern = np.clip(cv2.GaussianBlur(spots, (0, 0), 2.0) * 12, 0, 1)
    else:
        pattern = _noise(rng, n, n, octaves=5)
    detail = 0.25 * (_noise(rng, n, n) - 0.5)  # keeps flat areas trackable
    return _colorize(np.clip(pattern + detail, 0, 1), rng)


def _thing(rng: np.random.Generator, width: int, height: int, depth: float) -> Thing:
    label = int(rng.choice(THINGS))
    side = min(width, height)
    speed = rng.uniform(0.08, 0.25) * side  # px / s
    heading = rng.uniform(0, 2 * np.pi)
    return Thing(
        label=label,
        depth=depth,
        texture=_texture(label, rng),
        center=(rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height),
        velocity=(speed * np.cos(heading), speed * np.sin(heading)),
        scale=rng.uniform(0.1, 0.22) * side,
        growth=rng.uniform(-0.12, 0.12),
        angle=rng.uniform(0, 2 * np.pi),
        spin=rng.uniform(-0.6, 0.6),
    )


def make_scene(rng: np.random.Generator, width: int, height: int) -> Scene:
    """A textured background (rough ground below a smoother sky) panning slowly, and 3-5
    objects at distinct depths."""
    background = _colorize(_noise(rng, 2 * height, 2 * width, octaves=7, roughness=0.75), rng)
    background += 40 * (_noise(rng, 2 * height, 2 * width, octaves=3)[..., None] - 0.5)
    sky = _colorize(_noise(rng, 2 * height, 2 * width, octaves=6, roughness=0.55), rng)
    horizon = float(rng.uniform(0.25, 0.6) * height)
    heading = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(0.0, 0.08) * min(width, height)
    n = int(rng.integers(3, 6))
    depths = np.sort(rng.uniform(2.0, 7.5, size=n))[::-1]  # far to near
    things = tuple(_thing(rng, width, height, float(d)) for d in depths)
    return Scene(width, height, background, sky, horizon, (speed * np.cos(heading), speed * np.sin(heading)), things)


def make_video(seed: int, video_id: str, seconds: float, fps: float, width: int, height: int, cut: bool) -> Video:
    """The synthetic video named ``video_id``: fixed by (seed, video_id) and the settings.

    With ``cut``, a hard cut falls at a random time in the first half of the video.
    """
    rng = seeding.rng(seed, "synthetic", video_id)
    if not cut:
        return Video(((make_scene(rng, width, height), seconds),), fps)
    first = round(rng.uniform(0.25, 0.45) * seconds * fps) / fps
    scenes = (make_scene(rng, width, height), make_scene(rng, width, height))
    return Video(((scenes[0], first), (scenes[1], seconds - first)), fps)


def write(vid: Video, path: str | Path) -> None:
    """Encode ``vid`` to an H.264 MP4 at its frame rate, atomically."""
    with atomic_path(path) as tmp:
        video.encode(vid.frames(), tmp, vid.fps)
