"""The documentation's links: every relative link of the READMEs and docs/ resolves, every docs
page is in the index (docs/README.md), and every docs/ page, test file or bench script the
repository's text names exists."""

import re

from picotest import REPO

PAGES = [REPO / "README.md", REPO / "config/README.md", *sorted((REPO / "docs").glob("*.md"))]
TEXT = ("*.md", "*.yaml", "*.yml", "*.rst", "*.smk", "*.py", "Makefile", "Snakefile")
SKIP = {".git", ".venv", "results", "logs", "benchmarks", ".snakemake", "__pycache__"}


def text_files():
    for pattern in TEXT:
        for path in REPO.rglob(pattern):
            if path.is_file() and not SKIP & set(path.relative_to(REPO).parts):
                yield path


def test_every_relative_link_resolves():
    dead = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue  # a URL or an anchor of the page itself
            if not (page.parent / target.split("#")[0]).exists():
                dead.append(f"{page.relative_to(REPO)}: {target}")
    assert not dead, dead


def test_the_index_lists_every_docs_page():
    index = (REPO / "docs/README.md").read_text()
    pages = {p.name for p in (REPO / "docs").glob("*.md")} - {"README.md"}
    missing = sorted(name for name in pages if f"]({name})" not in index)
    assert not missing, f"docs/README.md does not list {missing}"


def test_named_docs_tests_and_bench_scripts_exist():
    named = set()
    for path in text_files():
        text = path.read_text(errors="replace")
        named |= {(path, n) for n in re.findall(r"\b((?:docs|tests|bench)/[\w./-]+\.(?:md|py))\b", text)}
    missing = sorted(f"{path.relative_to(REPO)}: {name}" for path, name in named if not (REPO / name).exists())
    assert not missing, missing
