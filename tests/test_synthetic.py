"""The demo world's settings (pico.data.synthetic.World): the defaults render what the demo always
rendered, and the realistic world's motion, deformation and lighting keep the truth exact."""

import hashlib
from dataclasses import replace

import cv2
import numpy as np

from pico import config as pcfg
from pico import seeding
from pico.data import synthetic
from picotest import REPO

#: sha256 of the frames below, computed with pico.data.synthetic before World existed.
DEFAULT_DIGEST = "f9e568543157b62715c9a189c0b9331f049f9850e5ac4bfb14f2b93598458564"
KEYS = ("rgb", "labels", "instances", "depth", "flow")
# config/mini.yaml's world, without lighting unless a test adds it
REALISTIC = synthetic.World(speed=(0.35, 0.8), pan=(0.1, 0.35), growth=(-0.4, 0.4), spin=(-1.5, 1.5), deformation=0.25)
FPS, WIDTH, HEIGHT = 30, 170, 128  # the models' 128-pixel short side


def _digest(world: synthetic.World) -> str:
    """A video with a cut (frames of both shots) and a demo-benchmark scene, with the truth."""
    h = hashlib.sha256()
    vid = synthetic.make_video(0, "synth0003", 4, 30, 320, 240, cut=True, world=world)
    frames = [vid.at(i / vid.fps) + (1 / vid.fps,) for i in (0, 17, 40, 95)]
    scene = synthetic.make_scene(seeding.rng(0, "demo-benchmark", "train", 5), 160, 120, world)
    for shot, t, dt in frames + [(scene, 1.7, 0.1)]:
        out = shot.render(t, dt)
        for k in KEYS:
            h.update(k.encode())
            h.update(np.ascontiguousarray(out[k]).tobytes())
    return h.hexdigest()


def test_the_default_world_renders_byte_identical_frames_and_truth():
    assert _digest(synthetic.World()) == DEFAULT_DIGEST


def test_the_schema_defaults_are_the_default_world():
    cfg = pcfg.validate({"datasets": {"d": {"source": "synthetic"}}}, REPO / "workflow/schemas/config.schema.yaml")
    assert synthetic.World.from_settings(cfg["datasets"]["d"]["synthetic"]["world"]) == synthetic.World()


def _scene(world: synthetic.World, index: int = 0) -> synthetic.Scene:
    return synthetic.make_scene(seeding.rng(7, "world-test", index), WIDTH, HEIGHT, world)


def _warp_error(now: dict, later: dict, flow: np.ndarray) -> tuple[float, int]:
    """Mean |rgb_t(x) - rgb_{t+dt}(x + flow(x))| (bilinear) over pixels whose destination is
    inside and shows the same surface (object, sky or ground), 2 px away from its outline in
    both frames (a bilinear sample never mixes two surfaces); their count."""
    h, w = now["labels"].shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    tx, ty = x + flow[0], y + flow[1]
    warped = cv2.remap(later["rgb"].astype(np.float32), tx, ty, cv2.INTER_LINEAR)
    col, row = np.clip(np.round(tx), 0, w - 1).astype(int), np.clip(np.round(ty), 0, h - 1).astype(int)
    surface_now, surface_later = (f["instances"].astype(int) * 8 + f["labels"] for f in (now, later))
    kernel = np.ones((5, 5), np.uint8)
    valid = np.zeros((h, w), bool)
    for k in np.unique(surface_now):
        core_now, core_later = (
            cv2.erode((s == k).astype(np.uint8), kernel).astype(bool) for s in (surface_now, surface_later)
        )
        valid |= core_now & core_later[row, col]
    valid &= (tx >= 1) & (tx <= w - 2) & (ty >= 1) & (ty <= h - 2)
    return float(np.abs(warped - now["rgb"].astype(np.float32))[valid].mean()), int(valid.sum())


def test_the_realistic_motion_is_several_pixels_per_frame_and_the_true_flow_follows_it():
    for index in range(3):
        scene, t, dt = _scene(REALISTIC, index), 0.6, 1 / FPS
        now, later = scene.render(t, dt), scene.render(t + dt)
        speed = np.hypot(*now["flow"])
        on_things = now["instances"] > 0
        assert np.median(speed[on_things]) > 1.5, np.median(speed[on_things])  # the demo: 0.3-1.1 px
        error, n = _warp_error(now, later, now["flow"])
        half, _ = _warp_error(now, later, 0.5 * now["flow"])
        still, _ = _warp_error(now, later, np.zeros_like(now["flow"]))
        assert n > 0.5 * now["labels"].size
        # what is left is bilinear resampling of unfiltered textures (< 1.5 grey levels)
        assert error < 1.5 and half > 1.5 * error and still > 3 * error, (error, half, still)


def test_the_deformation_is_non_rigid_time_varying_and_inverts_exactly():
    thing = _scene(REALISTIC).things[0]
    assert thing.wobble is not None
    v, u = np.mgrid[-1:1:41j, -1:1:41j]
    for t in (0.0, 0.37, 1.9):
        p, q = thing.wobble.deform(u, v, t)
        back = thing.wobble.undeform(p, q, t)
        np.testing.assert_allclose(back, (u, v), rtol=0, atol=1e-12)
        x, y = thing.to_image(u, v, t)
        np.testing.assert_allclose(thing.to_local(x, y, t), (u, v), rtol=0, atol=1e-9)
    # not a similarity: the warp bends straight lines, and differently at different times
    bend = [thing.wobble.deform(u, v, t)[0] - u for t in (0.0, 0.8)]
    assert np.abs(bend[0]).max() > 0.05 and np.abs(bend[0] - bend[1]).max() > 0.05
    rigid = _scene(synthetic.World())
    assert all(th.wobble is None and th.light is None for th in rigid.things) and rigid.light is None


def test_lighting_changes_the_colours_only():
    lit = _scene(replace(REALISTIC, global_lighting=0.25, object_lighting=0.3))
    assert lit.light is not None and all(th.light is not None for th in lit.things)
    unlit = replace(lit, light=None, things=tuple(replace(th, light=None) for th in lit.things))
    changed = 0.0
    for t in (0.2, 1.1, 2.3):
        a, b = lit.render(t, 1 / FPS), unlit.render(t, 1 / FPS)
        for k in ("labels", "instances", "depth", "flow"):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        changed = max(changed, float(np.abs(a["rgb"].astype(int) - b["rgb"]).mean()))
    assert changed > 5.0  # the gain moves colours by more than a few grey levels
    # smooth in time: one frame apart, the gain moves by well under 1 %
    assert abs(lit.light.at(1.0) - lit.light.at(1.0 + 1 / FPS)) < 0.01
