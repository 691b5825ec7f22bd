#!/usr/bin/env bash
# Snakemake runs this inside the freshly created conda env: install this checkout's nvd
# package (code only; the env file provides the dependencies).
set -euo pipefail
pip install --no-deps --no-build-isolation "${NVD_REPO:-$PWD}"
