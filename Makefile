# Two set-up-free entry points (README): `make demo` and `make test`. Both install first,
# idempotently: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install system slurm-packages demo test clean

install: system $(STAMP)

# ffmpeg/ffprobe decode and encode every video; Debian's package where missing.
system:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }

# tests/test_slurm.py runs the demo on a real one-node SLURM cluster from Debian's packages.
# Where they cannot be installed (not root, no mirror) the test says why: it fails in CI
# (CI set) and is skipped elsewhere, so the rest of the suite still runs.
SLURM_PACKAGES := munge mariadb-server slurmdbd slurmctld slurmd slurm-client
slurm-packages:
	@dpkg -s $(SLURM_PACKAGES) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq --no-install-recommends $(SLURM_PACKAGES) >/dev/null; } || \
	  echo "warning: could not install $(SLURM_PACKAGES): see tests/test_slurm.py" >&2

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: install
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml --report report.html

test: install slurm-packages
	$(VENV)/bin/python -m pytest

clean:
	rm -rf results logs benchmarks .snakemake report.html
