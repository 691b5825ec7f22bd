"""A demo texture edit: a mark painted onto a trained layer's atlas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nvd.core.errors import InputError
from nvd.core.publish import publish_with


def paint_mark(atlas_png: str | Path, out_png: str | Path, colour: tuple[int, int, int] = (0, 255, 255)) -> Path:
    """Write an RGBA edit of ``atlas_png`` (a tex{i}.png): an opaque ring and dot at the centre
    of the region the video uses (alpha-weighted centroid), transparent elsewhere, so an
    "add"-mode edit changes only the mark."""
    atlas_png, out_png = Path(atlas_png), Path(out_png)
    if not atlas_png.is_file():
        raise InputError(f"{atlas_png}: atlas image does not exist; run the evaluate stage first")
    rgba = np.asarray(Image.open(atlas_png).convert("RGBA"), dtype=np.float32)
    alpha = rgba[..., 3] / 255.0
    size = rgba.shape[0]
    ys, xs = np.mgrid[0:size, 0:size]
    weight = alpha.sum()
    cx, cy = ((xs * alpha).sum() / weight, (ys * alpha).sum() / weight) if weight > 0 else (size / 2, size / 2)
    r = size * 0.05
    mark = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(mark)
    draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=(*colour, 255), width=max(1, int(r / 3)))
    draw.ellipse([cx - r / 4, cy - r / 4, cx + r / 4, cy + r / 4], fill=(*colour, 255))
    return publish_with(out_png, lambda tmp: mark.save(tmp, format="PNG"))
