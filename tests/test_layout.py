"""The design card's layout; pins, the lock and conda env files that agree; lint and format."""

import ast
import importlib.metadata
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from picotest import REPO


def normalized(name: str) -> str:
    """A distribution's name as PEP 503 compares them (``PyYAML`` is ``pyyaml``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = project["dependencies"] + [d for group in project["optional-dependencies"].values() for d in group]
    return {
        normalized(name): version
        for name, version in (re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", d).groups() for d in deps)
    }


def locked() -> dict[str, str]:
    """requirements.lock (``make lock``): every package of the environment at one version."""
    lines = [line.strip() for line in (REPO / "requirements.lock").read_text().splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+==\S+", e) for e in entries), "requirements.lock: not name==version"
    return {normalized(e.split("==")[0]): e.split("==")[1] for e in entries}


def test_top_level_layout():
    for path in (
        "Snakefile",
        "rules",
        "workflow/scripts",
        "workflow/schemas/config.schema.yaml",
        "envs",
        "config/config.yaml",
        "config/paper.yaml",
        "tests",
        "profiles/local",
        "profiles/slurm",
        "README.md",
        "pyproject.toml",
        "src/pico",
        ".ci/run",
    ):
        assert (REPO / path).exists(), path


LAYERS = ["", "store", "data", "learn", "evaluation", "reporting"]  # pico/__init__.py's module map


def test_the_package_is_layered_and_its_subpackages_import_nothing():
    """A module of one layer imports pico modules of its own layer or those above it only (the
    top-level ``config``, ``logs``, ``seeding``, ``profiles``, ``rerun`` and ``flow_backends``
    are the first; ``plan``, the workflow's, is the last, and no module imports it); every
    subpackage's ``__init__`` is a docstring alone (parsing the Snakefile stays light)."""
    package = REPO / "src/pico"
    assert sorted(p.name for p in package.iterdir() if p.is_dir() and p.name != "__pycache__") == sorted(LAYERS[1:])

    def layer(module: str) -> int:
        name = module.split(".")[1]  # pico.<layer or top-level module>[.<module>]
        return LAYERS.index(name) if name in LAYERS else len(LAYERS) if name == "plan" else 0

    wrong = []
    for path in sorted(package.rglob("*.py")):
        module = ".".join(path.relative_to(REPO / "src").with_suffix("").parts)
        if path.name == "__init__.py" and path.parent != package:
            body = ast.parse(path.read_text()).body
            assert len(body) == 1 and isinstance(body[0].value, ast.Constant), f"{path}: more than a docstring"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pico"):
                imported = [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names if alias.name.startswith("pico.")]
            else:
                continue
            wrong += [f"{module} imports {name}" for name in imported if layer(name) > layer(module)]
    assert not wrong, wrong


def test_every_dependency_is_pinned_exactly():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert all("==" in d for d in project["dependencies"]), project["dependencies"]


def test_the_lock_holds_every_pin_and_the_installed_environment():
    lock, pinned = locked(), pins()
    for name, version in pinned.items():
        assert lock.get(name) == version, f"pyproject.toml pins {name}=={version}, requirements.lock {lock.get(name)}"
    assert "pico" not in lock  # the project itself is installed editable, never locked
    installed = {normalized(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    drift = {name: (version, installed.get(name)) for name, version in lock.items() if installed.get(name) != version}
    assert not drift, f"(locked, installed) differ; reinstall with make install: {drift}"


def test_conda_envs_agree_with_the_pins_and_use_the_lock():
    pinned, lock = pins(), locked()
    for env in sorted((REPO / "envs").glob("*.yaml")):
        spec = yaml.safe_load(env.read_text())
        pip = next(d["pip"] for d in spec["dependencies"] if isinstance(d, dict))
        assert "-c ../requirements.lock" in pip, f"{env.name}: the lock is not its pip constraints"
        for requirement in pip:
            if requirement.startswith(("-e", "-c")):
                continue
            name, version = requirement.split("==")
            assert pinned.get(normalized(name)) == version == lock.get(normalized(name)), (
                f"{env.name}: {requirement} but pyproject pins {pinned.get(normalized(name))}, "
                f"the lock {lock.get(normalized(name))}"
            )


def rule_blocks():
    """(rules file, rule name, the rule's directive indent, its text) of every rule and
    ``use rule`` in rules/, those inside an ``if`` included."""
    for smk in sorted((REPO / "rules").glob("*.smk")):
        for block in re.split(r"\n(?=[ \t]*(?:use )?rule \w+)", smk.read_text()):
            if head := re.match(r"([ \t]*)(?:use rule \w+ as |rule )(\w+)", block):
                yield smk, head[2], head[1] + "    ", block


def rule_params() -> dict[str, tuple[list[str], str | None]]:
    """{rule: (its params' names, its script's path or None)} of every rule in rules/; a ``use
    rule`` has its parent's script, and the params it adds (those it keeps are the parent's)."""
    found, parents = {}, {}
    for _, name, indent, block in rule_blocks():
        params = re.search(rf"\n{indent}params:\n(.*?)(?=\n{indent}\w+:|\Z)", block, re.S)
        names = re.findall(rf"^{indent}    (\w+)=", params[1], re.M) if params else []
        script = re.search(r'script:\n\s+"\.\./(\S+)"', block)
        found[name] = (names, script and script[1])
        if parent := re.match(r"\s*use rule (\w+) as", block):
            parents[name] = parent[1]
    for name, parent in parents.items():  # a parent may be a use rule itself, in any rules file
        while parent in parents:
            parent = parents[parent]
        found[name] = (found[name][0], found[parent][1])
    return found


def test_rerun_trigger_params_are_named_so_and_every_other_param_is_read():
    """rules/common.smk's convention: a script never reads a rerun_* param, and reads (or its
    report caption does) every other param of its rule."""
    captions = "".join(p.read_text() for p in (REPO / "report").glob("*.rst"))
    checked, rules = 0, rule_params()
    for rule, (names, script) in rules.items():
        if script is None:  # no script: shell or run
            continue
        source = (REPO / script).read_text()
        aliases = ["params", *re.findall(r"^(\w+) = snakemake\.params$", source, re.M)]
        assert not re.search(rf"\b({'|'.join(aliases)})\.rerun_", source), f"{script} reads a rerun trigger"
        for name in names:
            read = re.search(rf"\b({'|'.join(aliases)})\.{name}\b", source + captions)
            assert name.startswith("rerun_") or read, (
                f"rule {rule}: params.{name} is read by nothing: name it rerun_{name}"
            )
            checked += 1
    assert checked > 40 and {"rerun_detection", "rerun_flow", "rerun_seed"} <= {
        n for names, _ in rules.values() for n in names
    }


def test_the_rules_derive_no_state_and_one_rerun_policy_filters_settings():
    """Derived state lives in pico.plan (rules/common.smk's PLAN): a rules file assigns no name
    but path templates. Which settings rerun a job is pico.rerun's alone: no other file names a
    block's runtime keys, and no rules file filters a config block's keys itself."""
    for smk in sorted((REPO / "rules").glob("*.smk")) + [REPO / "Snakefile"]:
        source = smk.read_text()
        for name, value in re.findall(r"^(\w+) = (.+)$", source, re.M):
            assert name == "PLAN" or re.fullmatch(r'"[^"]*"', value), f"{smk.name}: {name} = {value}"
        assert not re.search(r"for k(?:ey)?, v(?:alue)? in config\[", source), f"{smk.name} filters a config block"
    files = [*(REPO / "src/pico").rglob("*.py"), *(REPO / "workflow/scripts").glob("*.py"), *(REPO / "rules").glob("*")]
    naming = [p.name for p in files if "RUNTIME_KEYS" in p.read_text() and p.name != "rerun.py"]
    assert not naming, naming


def test_every_rule_logs_and_benchmarks():
    for smk, name, _, block in rule_blocks():
        if "script:" in block or "shell:" in block:
            assert "log:" in block and "benchmark:" in block, f"{smk.name}: rule {name}"


def test_ruff_lint_and_format_clean():
    """The Python (package, scripts, tests, benchmarks) passes ``ruff check`` and ``ruff format
    --check`` under pyproject.toml's settings (fix with ``ruff check --fix . && ruff format .``)."""
    ruff = str(Path(sys.executable).parent / "ruff")
    lint = subprocess.run([ruff, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([ruff, "format", "--no-cache", "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_snakefmt_clean_and_lint_quiet():
    bin_dir = Path(sys.executable).parent
    files = [str(REPO / "Snakefile"), str(REPO / "rules")]
    fmt = subprocess.run([str(bin_dir / "snakefmt"), "--check", *files], capture_output=True, text=True)
    assert fmt.returncode == 0, fmt.stderr
    lint = subprocess.run(
        [str(bin_dir / "snakemake"), "--lint", "-s", str(REPO / "Snakefile"), "--directory", str(REPO)],
        capture_output=True,
        text=True,
    )
    assert lint.returncode == 0 and "Congratulations" in lint.stdout + lint.stderr, lint.stdout + lint.stderr
