"""The design card's layout, and conda env files that agree with the pinned versions."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from picotest import REPO


def pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    return dict(re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", d).groups() for d in deps)


def test_top_level_layout():
    for path in ("Snakefile", "rules", "workflow/scripts", "workflow/schemas/config.schema.yaml", "envs",
                 "config/config.yaml", "config/paper.yaml", "tests", "profiles/local", "profiles/slurm",
                 "README.md", "pyproject.toml", "src/pico", ".ci/run"):
        assert (REPO / path).exists(), path


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert all("==" in d for d in project["dependencies"]), project["dependencies"]


def test_conda_envs_agree_with_the_pins():
    pinned = pins()
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        for requirement in pip:
            if requirement.startswith("-e"):
                continue
            name, version = requirement.split("==")
            assert pinned.get(name) == version, f"{env.name}: {requirement} but pyproject pins {pinned.get(name)}"


def test_every_rule_logs_and_benchmarks():
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for rule in re.split(r"\nrule ", smk.read_text())[1:]:
            if "script:" in rule or "shell:" in rule:
                assert "log:" in rule and "benchmark:" in rule, f"{smk.name}: rule {rule.split(':')[0]}"


def test_snakefmt_clean_and_lint_quiet():
    bin_dir = Path(sys.executable).parent
    files = [str(REPO / "Snakefile"), str(REPO / "rules")]
    fmt = subprocess.run([str(bin_dir / "snakefmt"), "--check", *files], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr
    lint = subprocess.run([str(bin_dir / "snakemake"), "--lint", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
                          capture_output=True, text=True)
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
