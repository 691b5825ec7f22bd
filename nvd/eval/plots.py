"""Figures as published files: matplotlib without a display, written atomically as PNG."""

from __future__ import annotations

import os
from pathlib import Path
from types import ModuleType
from typing import Any


def pyplot() -> ModuleType:
    """matplotlib.pyplot on the Agg backend (the cluster nodes have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Lay ``fig`` out, publish it as a PNG at ``path`` (nvd.core.publish) and close it."""
    from nvd.core.publish import publish_with

    plt = pyplot()
    try:
        fig.tight_layout()
        # format given: the temporary's name is not the one a reader would guess it from
        return publish_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    finally:
        plt.close(fig)
