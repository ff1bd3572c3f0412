"""The demo world: textured objects of several classes moving over textured backgrounds.

Deterministic given (seed, video id). Scenes are defined in continuous time and image
coordinates, so the generator can render at any rate the frames themselves and their exact
ground truth: per-pixel class labels, depth (painter's order: nearer objects occlude) and the
true motion (forward flow) from t to t + dt. Later stages use the ground truth for the demo's
segmentation and depth benchmark and to test flow and tracking.

Each object (a "thing": disc, box, triangle, ring) has its own class-specific texture
pattern and moves by translation, rotation and scaling; objects overlap, so they occlude each
other. The background is "stuff": a smooth sky above a horizon, rough ground below it. With
``cut`` a video is two shots of unrelated scenes joined by a hard cut (what TransNetV2 must find).

``World`` holds the ranges the scenes are drawn from. Its defaults are the demo world as first
built (slow motion, rigid objects, constant light); larger ranges, a non-rigid deformation of
each object and a change of lighting over time make the variation of Section 1's Figure 1 that
crops and colour jitter of one frame cannot simulate (docs/reproduction.md). The extra features
draw their parameters only when switched on, after every draw of the default world, so the
defaults render exactly what they always did.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np

from pico import seeding
from pico.data import video
from pico.store.files import atomic_path

CLASSES = ("void", "disc", "box", "triangle", "ring", "sky", "ground")
THINGS = (1, 2, 3, 4)  # objects; the background is "stuff": sky above a horizon, ground below
SKY, GROUND = 5, 6
TEXTURE = 128  # object texture side, covering local coordinates [-1, 1]^2


@dataclass(frozen=True)
class World:
    """The ranges a scene is drawn from (the ``world`` block of a synthetic dataset's settings).

    Speeds are in short sides per second, so they hold at any resolution: at 30 fps and a
    128-pixel short side, 0.25 side/s is 1.07 px per frame. ``growth`` is d log(scale)/dt (1/s),
    ``spin`` rad/s; ``deformation`` is the amplitude (local units, objects span [-1, 1]) of
    each object's wobble (``Wobble``), ``global_lighting`` and ``object_lighting`` the
    amplitudes of the frame's and each object's gain over time (``Gain``); 0 switches them off.
    """

    speed: tuple[float, float] = (0.08, 0.25)
    pan: tuple[float, float] = (0.0, 0.08)
    growth: tuple[float, float] = (-0.12, 0.12)
    spin: tuple[float, float] = (-0.6, 0.6)
    deformation: float = 0.0
    global_lighting: float = 0.0
    object_lighting: float = 0.0

    @classmethod
    def from_settings(cls, settings: dict | None) -> World:
        """The world of a validated ``world`` block (lists become tuples); None: the default."""
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in (settings or {}).items()})


@dataclass(frozen=True)
class Wobble:
    """A time-varying, exactly invertible non-rigid warp of an object's local coordinates.

    Two shears, each along one axis and so a bijection for any amplitude:
    p = u + a1(t) sin(k v), then q = v + a2(t) sin(k p), with a_i(t) = amplitude sin(omega t + phase_i).
    The inverse undoes them in reverse order: v = q - a2(t) sin(k p), u = p - a1(t) sin(k v).
    """

    amplitude: float
    frequency: float  # k, rad per local unit
    omega: float  # rad / s
    phases: tuple[float, float]

    def _amplitudes(self, t: float) -> tuple[float, float]:
        return tuple(self.amplitude * np.sin(self.omega * t + phase) for phase in self.phases)

    def deform(self, u: np.ndarray, v: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        a1, a2 = self._amplitudes(t)
        p = u + a1 * np.sin(self.frequency * v)
        return p, v + a2 * np.sin(self.frequency * p)

    def undeform(self, p: np.ndarray, q: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        a1, a2 = self._amplitudes(t)
        v = q - a2 * np.sin(self.frequency * p)
        return p - a1 * np.sin(self.frequency * v), v


@dataclass(frozen=True)
class Gain:
    """A smooth change of brightness over time: colours times 1 + amplitude sin(omega t + phase)."""

    amplitude: float
    omega: float  # rad / s
    phase: float

    def at(self, t: float) -> float:
        return 1.0 + self.amplitude * np.sin(self.omega * t + self.phase)


@dataclass(frozen=True)
class Thing:
    """A planar textured object; local coords u in [-1,1]^2 map to p = c(t) + s(t) R(a(t)) W(u, t),
    W the object's ``wobble`` (the identity without one); ``light`` changes its colours only."""

    label: int
    depth: float
    texture: np.ndarray  # (TEXTURE, TEXTURE, 3) float32
    center: tuple[float, float]
    velocity: tuple[float, float]  # px / s
    scale: float  # px, half the object's side at t = 0
    growth: float  # d log(scale) / dt
    angle: float  # rad
    spin: float  # rad / s
    wobble: Wobble | None = None
    light: Gain | None = None

    def pose(self, t: float) -> tuple[np.ndarray, float, float]:
        c = np.asarray(self.center) + np.asarray(self.velocity) * t
        return c, self.scale * np.exp(self.growth * t), self.angle + self.spin * t

    def to_local(self, x: np.ndarray, y: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        c, s, a = self.pose(t)
        dx, dy = x - c[0], y - c[1]
        cos, sin = np.cos(a), np.sin(a)
        u, v = (cos * dx + sin * dy) / s, (-sin * dx + cos * dy) / s
        return self.wobble.undeform(u, v, t) if self.wobble else (u, v)

    def to_image(self, u: np.ndarray, v: np.ndarray, t: float) -> tuple[np.ndarray, np.ndarray]:
        if self.wobble:
            u, v = self.wobble.deform(u, v, t)
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
    light: Gain | None = None  # the whole frame's brightness over time

    def render(self, t: float, dt: float | None = None) -> dict[str, np.ndarray]:
        """Frame ``rgb`` (H,W,3 uint8), ``labels`` (H,W uint8), ``instances`` (H,W uint8: index of
        the visible object + 1, 0 for the background), ``depth`` (H,W float32) at time ``t``;
        with ``dt`` also ``flow`` (2,H,W float32): where each pixel's content is at t+dt.
        Lighting changes ``rgb`` only."""
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
            if thing.light:
                rgb[mask] *= thing.light.at(t)
            labels[mask] = thing.label
            instances[mask] = k
            depth[mask] = thing.depth
            if dt:
                x2, y2 = thing.to_image(u[mask], v[mask], t + dt)
                flow[0][mask], flow[1][mask] = x2 - x[mask], y2 - y[mask]
        if self.light:
            rgb = rgb * self.light.at(t)
        out = {"rgb": np.clip(rgb, 0, 255).astype(np.uint8), "labels": labels, "instances": instances, "depth": depth}
        if dt:
            out["flow"] = flow.astype(np.float32)
        return out

    def covering(self, x: np.ndarray, y: np.ndarray, t: float) -> np.ndarray:
        """Per point, the surface nearest the viewer at (x, y) at time ``t``: 0 the background,
        k the k-th of ``things`` (they run far to near, as ``render`` paints them)."""
        layer = np.zeros(np.shape(x), np.int64)
        for k, thing in enumerate(self.things, 1):
            layer[thing.inside(*thing.to_local(x, y, t))] = k
        return layer

    def surfaces(self, x: np.ndarray, y: np.ndarray, t0: np.ndarray) -> np.ndarray:
        """The surface (``covering``) each point (x[i], y[i]) lies on at its own time t0[i] (s)."""
        layer = np.zeros(len(t0), np.int64)
        for start in np.unique(t0):
            on = np.flatnonzero(t0 == start)
            layer[on] = self.covering(x[on], y[on], start)
        return layer

    def follow(
        self, layer: np.ndarray, x: np.ndarray, y: np.ndarray, t0: np.ndarray, times: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where surface points are at each of ``times`` (s): x and y, (len(times), n). Point i
        lies on surface ``layer[i]`` (``covering``) at (x[i], y[i]) at time t0[i]; an object's
        point keeps its local coordinates (``Thing.to_local`` at t0, ``Thing.to_image`` at each
        time), the background's moves with the pan, p(t) = p(t0) + pan (t - t0)."""
        times = np.asarray(times, np.float64)
        elapsed = times[:, None] - t0[None, :]  # (T, n) seconds since each point's t0
        px, py = x + self.pan[0] * elapsed, y + self.pan[1] * elapsed
        for k, thing in enumerate(self.things, 1):
            for start in np.unique(t0[layer == k]):
                on = np.flatnonzero((layer == k) & (t0 == start))
                u, v = thing.to_local(x[on], y[on], start)
                for j, t in enumerate(times):
                    px[j, on], py[j, on] = thing.to_image(u, v, t)
        return px, py

    def visible(self, layer: np.ndarray, x: np.ndarray, y: np.ndarray, times: np.ndarray) -> np.ndarray:
        """Whether surface points (on ``layer``, at (x, y), each (len(times), n), as ``follow``
        gives them) are seen at each of ``times``: inside the frame, [0, W-1] x [0, H-1] with
        pixel centres at integers, and no nearer object covers them. (len(times), n) bool."""
        inside = (x >= 0) & (x <= self.width - 1) & (y >= 0) & (y <= self.height - 1)
        uncovered = np.stack([self.covering(x[j], y[j], t) <= layer for j, t in enumerate(times)])
        return inside & uncovered


def true_flow(scene: Scene, n_frames: int, fps: float) -> tuple[np.ndarray, np.ndarray]:
    """The exact forward (frame t -> t+1) and backward (t+1 -> t) flow of ``n_frames`` frames of
    ``scene`` at ``fps`` from time 0, each (n_frames - 1, 2, H, W) float32: the ceiling of any
    flow estimator."""
    dt = 1 / fps
    fwd = np.stack([scene.render(t * dt, dt=dt)["flow"] for t in range(n_frames - 1)])
    bwd = np.stack([scene.render((t + 1) * dt, dt=-dt)["flow"] for t in range(n_frames - 1)])
    return fwd, bwd


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


def _gain(rng: np.random.Generator, amplitude: float) -> Gain:
    """A gain of ``amplitude`` with a period of 1.5-6 s and a random phase."""
    return Gain(amplitude, rng.uniform(1.0, 4.0), rng.uniform(0, 2 * np.pi))


def _wobble(rng: np.random.Generator, amplitude: float) -> Wobble:
    """A wobble of 0.5-1 times ``amplitude``, 0.5-1 wave across the object, a period of 1.5-4 s."""
    return Wobble(
        amplitude * rng.uniform(0.5, 1.0),
        rng.uniform(1.5, 3.0),
        rng.uniform(1.5, 4.0),
        (rng.uniform(0, 2 * np.pi), rng.uniform(0, 2 * np.pi)),
    )


def _thing(rng: np.random.Generator, width: int, height: int, depth: float, world: World) -> Thing:
    label = int(rng.choice(THINGS))
    side = min(width, height)
    speed = rng.uniform(*world.speed) * side  # px / s
    heading = rng.uniform(0, 2 * np.pi)
    thing = Thing(
        label=label,
        depth=depth,
        texture=_texture(label, rng),
        center=(rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height),
        velocity=(speed * np.cos(heading), speed * np.sin(heading)),
        scale=rng.uniform(0.1, 0.22) * side,
        growth=rng.uniform(*world.growth),
        angle=rng.uniform(0, 2 * np.pi),
        spin=rng.uniform(*world.spin),
    )
    # the extras draw after the default world's draws, and only when on (World's docstring)
    wobble = _wobble(rng, world.deformation) if world.deformation else None
    light = _gain(rng, world.object_lighting) if world.object_lighting else None
    return replace(thing, wobble=wobble, light=light)


def make_scene(rng: np.random.Generator, width: int, height: int, world: World = World()) -> Scene:
    """A textured background (rough ground below a smoother sky) panning at ``world.pan``, and
    3-5 objects at distinct depths."""
    background = _colorize(_noise(rng, 2 * height, 2 * width, octaves=7, roughness=0.75), rng)
    background += 40 * (_noise(rng, 2 * height, 2 * width, octaves=3)[..., None] - 0.5)
    sky = _colorize(_noise(rng, 2 * height, 2 * width, octaves=6, roughness=0.55), rng)
    horizon = float(rng.uniform(0.25, 0.6) * height)
    heading = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(*world.pan) * min(width, height)
    n = int(rng.integers(3, 6))
    depths = np.sort(rng.uniform(2.0, 7.5, size=n))[::-1]  # far to near
    things = tuple(_thing(rng, width, height, float(d), world) for d in depths)
    light = _gain(rng, world.global_lighting) if world.global_lighting else None
    pan = (speed * np.cos(heading), speed * np.sin(heading))
    return Scene(width, height, background, sky, horizon, pan, things, light)


def make_video(
    seed: int, video_id: str, seconds: float, fps: float, width: int, height: int, cut: bool, world: World = World()
) -> Video:
    """The synthetic video named ``video_id`` in ``world``: fixed by (seed, video_id) and the settings.

    With ``cut``, a hard cut falls at a random time in the first half of the video.
    """
    rng = seeding.rng(seed, "synthetic", video_id)
    if not cut:
        return Video(((make_scene(rng, width, height, world), seconds),), fps)
    first = round(rng.uniform(0.25, 0.45) * seconds * fps) / fps
    scenes = (make_scene(rng, width, height, world), make_scene(rng, width, height, world))
    return Video(((scenes[0], first), (scenes[1], seconds - first)), fps)


def write(vid: Video, path: str | Path) -> None:
    """Encode ``vid`` to an H.264 MP4 at its frame rate, atomically."""
    with atomic_path(path) as tmp:
        video.encode(vid.frames(), tmp, vid.fps)
