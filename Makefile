# Two set-up-free entry points (README): `make demo` and `make test`. Both install first,
# idempotently: the venv is rebuilt only when pyproject.toml changes.
PYTHON ?= python3.11
VENV := .venv
STAMP := $(VENV)/.installed
SNAKEMAKE := $(VENV)/bin/snakemake

.PHONY: install system demo test clean

install: system $(STAMP)

# ffmpeg/ffprobe decode and encode every video; Debian's package where missing.
system:
	@command -v ffmpeg >/dev/null && command -v ffprobe >/dev/null || { \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ffmpeg >/dev/null; }

$(STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $@

demo: install
	$(SNAKEMAKE) --cores 2 --configfile config/config.yaml

test: install
	$(VENV)/bin/python -m pytest

clean:
	rm -rf results logs benchmarks .snakemake
