# Two entry points: `make demo` runs the pipeline on the built-in demo data,
# `make test` runs the test suite. Both build the pinned environment first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROFILE ?= profiles/local

.PHONY: demo test bench lint env clean install-profile demo-stores demo-decompositions demo-hypernvd demo-nvp demo-nerv \
	demo-codecs gpu-pack

env: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	bash -o pipefail -c '$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.lock 2>&1 | { grep -v "is ignored: it is neither" || true; }'
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	$(BIN)/python -c "import nvd, torch, torchvision, zarr, cv2, snakemake"
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile $(PROFILE)
	$(BIN)/nvd summary --config config.yaml

# One family's part of the demo: make demo-stores | demo-decompositions | demo-hypernvd | demo-nvp | demo-nerv |
# demo-codecs (NVP's and the NeRV family's files, the anchors, the benchmark; trains what it codes)
demo-stores demo-decompositions demo-hypernvd demo-nvp demo-nerv demo-codecs: demo-%: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --profile $(PROFILE) $*

test: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m pytest -q $(PYTEST_ARGS)

bench: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python -m bench.stages && $(BIN)/python -m bench.flow_store \
		&& $(BIN)/python -m bench.hashgrid && $(BIN)/python -m bench.decomposition && $(BIN)/python -m bench.nvp --profile

# The wheels and the clip bench.gpu needs on a lent GPU machine, into .gpu/ (README, "GPU checks")
gpu-pack: $(STAMP)
	bench/gpu_pack.sh

# `snakemake --profile slurm` from anywhere: copies profiles/slurm to
# ~/.config/snakemake/slurm, or $XDG_CONFIG_HOME/snakemake/slurm (profiles/install.sh --help)
install-profile:
	profiles/install.sh $(or $(NAME),slurm)

lint: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/snakemake --lint

clean:
	rm -rf results logs benchmarks .snakemake data/demo
