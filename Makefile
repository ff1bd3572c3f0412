# Two set-up-free entry points (README): `make demo` and `make test`. Both install first,
# idempotently: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install system link-profiles test-packages demo test clean

install: system $(STAMP) link-profiles

# ffmpeg/ffprobe decode and encode every video; Debian's package where missing.
system:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }

# `snakemake --profile slurm ...` from the repository root: Snakemake finds a profile by name in
# its user folder (~/.config/snakemake); link ours there, never over one the user has.
link-profiles: $(STAMP)
	@$(VENV)/bin/python -m pico.profiles profiles

# Debian packages the tests use: a real one-node SLURM cluster (tests/test_slurm.py) and the
# Aloe stereo pair with its true disparity that opencv-doc ships (tests/test_correspondence.py).
# Where they cannot be installed (not root, no mirror) those tests say why: they fail in CI
# (CI set) and are skipped elsewhere, so the rest of the suite still runs.
TEST_PACKAGES := munge mariadb-server slurmdbd slurmctld slurmd slurm-client opencv-doc
test-packages:
	@dpkg -s $(TEST_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends $(TEST_PACKAGES) >/dev/null; } || \
	  echo "warning: could not install $(TEST_PACKAGES): see tests/test_slurm.py, tests/test_correspondence.py" >&2

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: install
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml --report report.html

test: install test-packages
	$(VENV)/bin/python -m pytest

clean:
	rm -rf results logs benchmarks .snakemake report.html
