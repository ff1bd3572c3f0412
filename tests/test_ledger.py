"""The cost ledger's arithmetic (bench/ledger.py): per-unit seconds and bytes to hours and
terabytes, the assumed GPU rates and the paper-scale rows. Its timings are measured by the
benchmark itself, not here."""

from __future__ import annotations

import argparse

import pytest

import ledger


def test_extrapolate_turns_seconds_and_bytes_per_unit_into_hours_and_terabytes():
    assert ledger.extrapolate(seconds=3.6, nbytes=1e9, count=1000) == pytest.approx((1.0, 1.0))
    assert ledger.extrapolate(seconds=0.0, nbytes=0.0, count=480_000) == (0.0, 0.0)


def test_the_total_counts_every_stage_but_the_alternatives():
    costs = [
        ledger.Cost("a", "CPU", 3600, "frame", cpu=1.0, nbytes=1e9),
        ledger.Cost("b", "GPU", 7200, "field", gpu=0.5, nbytes=1e8),
        ledger.Cost("b on CPUs", "CPU", 7200, "field", cpu=10.0, nbytes=1e8, in_total=False),
    ]
    rows = ledger.ledger(costs)
    assert [r["stage"] for r in rows] == ["a", "b", "b on CPUs", "**total**"]
    assert (rows[0]["cpu_h"], rows[1]["gpu_h"], rows[2]["cpu_h"]) == pytest.approx((1.0, 1.0, 20.0))
    total = rows[-1]
    assert (total["cpu_h"], total["gpu_h"], total["tb"]) == pytest.approx((1.0, 1.0, 3.6 + 0.72))


def test_the_options_drop_the_flow_at_the_end_and_a_static_snippets_work_after_its_frames():
    costs = [
        ledger.Cost("download", "CPU", 100, "video", cpu=36.0, nbytes=1e10),
        ledger.Cost("frames", "CPU", 100, "video", cpu=36.0, nbytes=1e10),
        ledger.Cost(ledger.FLOW, "GPU", 100, "video", gpu=72.0, nbytes=2e10),
        ledger.Cost("raw tracks", "CPU", 100, "video", cpu=3.6, nbytes=1e9),
        ledger.Cost("cut", "CPU", 100, "video", cpu=3.6, nbytes=1e9),
        ledger.Cost("point pairs, 3 methods", "CPU", 100, "video", cpu=3.6, nbytes=1e9),
    ]
    kept, dropped, static = ledger.options(ledger.ledger(costs), static_percent=10)
    assert kept["tb"] == pytest.approx(4.3) and dropped["tb"] == pytest.approx(2.3)  # less the flow's 2 TB
    assert static["gpu_h"] == pytest.approx(-0.2)  # a tenth of the flow's 2 GPU-hours
    assert static["cpu_h"] == pytest.approx(-0.03)  # tracks, cut, pairs: the frames are still decoded
    assert static["tb"] == pytest.approx(-0.1 * (1 + 2 + 0.1 + 0.1 + 0.1) * 1e10 * 100 / 1e12)


def test_raft_time_scales_linearly_in_pixels_and_updates():
    ref = {"ref_seconds": 0.55, "ref_width": 1920, "ref_height": 1080, "ref_iters": 12}
    assert ledger.raft_field_seconds(1920, 1080, 12, **ref) == pytest.approx(0.55)
    assert ledger.raft_field_seconds(960, 1080, 24, **ref) == pytest.approx(0.55)
    assert ledger.raft_field_seconds(455, 256, 32, **ref) == pytest.approx(0.55 * 455 * 256 / (1920 * 1080) * 32 / 12)


def test_a_moco_v2_image_visit_from_its_published_run():
    # 200 epochs of ImageNet-1K's 1,281,167 images in 53 hours on 8 V100s: ~5.96 GPU-ms an image
    assert ledger.moco_visit_seconds(hours=53, gpus=8, epochs=200) == pytest.approx(5.957e-3, rel=1e-3)


def measured(stage: str, *, cpu: float = 0.0, nbytes: float | None = None, units: float = 1.0, where="CPU"):
    return ledger.Measured("real", stage, where, "", cpu, cpu, nbytes, units)


def real_rates(**extra: ledger.Measured) -> dict[str, ledger.Measured]:
    """The real clip's rates: 300 frames of 455x256 (no pixel scaling), round numbers."""
    found = [
        measured("K400 section cut", cpu=5.0, nbytes=4e5, units=5.0),
        measured("shots (TransNetV2)", cpu=10.0, units=10.0, where="GPU"),
        measured("shots: decoding at 48x27", cpu=4.0, units=10.0),
        measured("frames", cpu=3.0, nbytes=3e6, units=300),
        measured("flow, DIS", cpu=59.8, nbytes=5.98e6, units=598),
        measured("raw tracks", cpu=0.3, nbytes=3e5, units=300),
        measured("cut", cpu=0.03, nbytes=3e4, units=300),
        measured("point pairs", cpu=0.5, nbytes=4e6),
        measured("flow, RAFT-large (cpu)", cpu=2.0, where="GPU"),
        measured("pretraining step (cpu)", cpu=0.2, where="GPU"),
        measured("pretraining loader", cpu=0.01),
    ]
    return {m.stage: m for m in found} | extra


def assumptions(**changes) -> argparse.Namespace:
    values = {
        "snippets": 480_000,
        "yt8m_videos": 240_000,
        "yt8m_seconds": 200.0,
        "raft_iters": 12,
        "raft_ref_ms": 550.0,
        "raft_ref_size": (1920, 1080),
        "raft_ref_iters": 12,
        "source_fps": 30.0,
        "transnet_tflops": 5.0,
        "visit_gpu_ms": 5.0,
        "models": 6,
        "iterations": 20_000,
        "batch_videos": 256,
    }
    return argparse.Namespace(**values | changes)


def test_paper_scale_rows_from_the_real_clips_rates():
    rows = {
        r["stage"]: r
        for r in ledger.ledger(ledger.paper_costs(real_rates(), 455 * 256, 800.0, assumptions(), transnet_flops=1e9))
    }
    k400 = rows["download, K400: section cut"]
    assert (k400["count"], k400["cpu"], k400["nbytes"]) == pytest.approx((240_000, 10.0, 1e6))  # 10 s at 100 kB/s
    assert rows["download, YT8M-S: whole videos"]["tb"] == pytest.approx(240_000 * 200 * 1e5 / 1e12)
    source_seconds = 240_000 * 200
    assert rows["shots: decoding at 48x27, YT8M-S"]["cpu_h"] == pytest.approx(source_seconds * 0.4 / 3600)
    # 30 frames a source second of 1 GFLOP each at 5 TFLOP/s: 6 GPU-ms a source second
    assert rows["shots: TransNetV2 network, YT8M-S"]["gpu_h"] == pytest.approx(source_seconds * 6e-3 / 3600)
    assert rows["shots: TransNetV2 network on CPUs instead"]["cpu"] == pytest.approx(0.6)  # all less decoding
    assert rows["frames"]["cpu_h"] == pytest.approx(480_000 * 300 * 0.01 / 3600)
    assert rows["frames"]["tb"] == pytest.approx(480_000 * 3e6 / 1e12)
    raft = rows["flow, RAFT-large (the paper's)"]
    fields = 480_000 * 598
    assert raft["gpu_h"] == pytest.approx(fields * 0.55 * 455 * 256 / (1920 * 1080) / 3600)
    assert raft["tb"] == pytest.approx(fields * 1e4 / 1e12)  # DIS's bytes a field
    assert rows["pretraining, 6 models"]["gpu_h"] == pytest.approx(6 * 20_000 * 256 * 5e-3 / 3600)
    alternatives = (
        "flow, RAFT-large on CPUs instead",
        "flow, DIS on CPUs instead (the demo's)",
        "shots: TransNetV2 network on CPUs instead",
    )
    counted = [r for name, r in rows.items() if name not in alternatives and name != "**total**"]
    assert rows["**total**"]["cpu_h"] == pytest.approx(sum(r["cpu_h"] for r in counted))


def test_per_pixel_work_scales_to_the_papers_frames_and_measured_gpu_rates_replace_assumptions():
    gpu = {
        "flow, RAFT-large (cuda)": measured("flow, RAFT-large (cuda)", cpu=0.01, where="GPU"),
        "pretraining step (cuda)": measured("pretraining step (cuda)", cpu=0.002, where="GPU"),
        "shots: TransNetV2 network (cuda)": measured(
            "shots: TransNetV2 network (cuda)", cpu=0.5, units=1000, where="GPU"
        ),
    }
    rows = {
        r["stage"]: r
        for r in ledger.ledger(
            ledger.paper_costs(real_rates(**gpu), 2 * 455 * 256, 800.0, assumptions(), transnet_flops=1e9)
        )
    }
    assert rows["frames"]["cpu"] == pytest.approx(0.005)  # frames twice the paper's pixels: half the work
    assert rows["flow, RAFT-large (the paper's)"]["gpu"] == pytest.approx(0.01)
    assert rows["pretraining, 6 models"]["gpu"] == pytest.approx(0.002)
    assert rows["shots: TransNetV2 network, YT8M-S"]["gpu"] == pytest.approx(0.015)  # 0.5 ms a frame x 30
    assert rows["raw tracks"]["cpu"] == pytest.approx(0.001)  # per frame, not per pixel
