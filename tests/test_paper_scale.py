"""config/paper.yaml at full size (240,000 K400 clips; 240,000 YT8M-S videos and a reserve) plans in one dry run.

Timing lives in bench/dag_scale.py; this test proves the plan is complete and sharded."""

from dag_scale import write_inputs
from picotest import REPO, run_snakemake, scheduled


def test_paper_config_dry_run_plans_every_shard(tmp_path):
    write_inputs(tmp_path, 240_000)
    out = run_snakemake(tmp_path, "videos", "-n", "--configfile", str(REPO / "config/paper.yaml"))
    k400, yt8m = 240_000 // 500, 264_000 // 500  # YT8M-S: the sample and its 10 % reserve
    shards = k400 + yt8m
    assert scheduled(out.stdout + out.stderr) == {
        "yt8m_sample": 1,
        "yt8m_lookup": yt8m,
        "download": shards,
        "detect_shots": shards,
        "extract_frames": shards,
        "videos": 1,
    }
