"""config/paper.yaml at full size (240,000 + 240,000 videos) plans in one dry run.

Timing lives in bench/dag_scale.py; this test proves the plan is complete and sharded."""

from dag_scale import write_inputs
from picotest import REPO, run_snakemake, scheduled


def test_paper_config_dry_run_plans_every_shard(tmp_path):
    write_inputs(tmp_path, 240_000)
    out = run_snakemake(tmp_path, "videos", "-n", "--configfile", str(REPO / "config/paper.yaml"))
    shards = 2 * 240_000 // 500
    assert scheduled(out.stdout + out.stderr) == {"download": shards, "detect_shots": shards, "extract_frames": shards, "videos": 1}
