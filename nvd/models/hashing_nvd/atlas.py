"""Atlas images of a trained decomposition, and texture edits propagated through the video.

Atlas convention: an S x S image covers uv in [-1,1]^2; texel (row j, column i) has its
centre at u = (i + 0.5) / S * 2 - 1, v = (j + 0.5) / S * 2 - 1, which is exactly what
``grid_sample(align_corners=False)`` reads, so an unmodified atlas image sampled at a
pixel's uv gives back the value the image holds there.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from nvd.models.hashing_nvd.model import LayeredDecomposition


def texel_centres(size: int, device: torch.device | str = "cpu") -> Tensor:
    """uv of every texel centre of a size x size atlas: [size*size, 2], row-major (v, then u)."""
    c = (torch.arange(size, device=device, dtype=torch.float32) + 0.5) / size * 2 - 1
    v, u = torch.meshgrid(c, c, indexing="ij")
    return torch.stack([u.flatten(), v.flatten()], dim=1)


@torch.no_grad()
def atlas_rgb(model: LayeredDecomposition, layer: int, size: int, chunk: int = 262_144) -> Tensor:
    """The texture network of ``layer`` evaluated on the atlas grid: float [size,size,3] in [0,1]."""
    uv = texel_centres(size, next(model.parameters()).device)
    field = model.textures[layer]
    parts = [(torch.tanh(field(uv[i : i + chunk])) + 1) * 0.5 for i in range(0, uv.shape[0], chunk)]
    return torch.cat(parts).reshape(size, size, 3)


def atlas_alpha(uv: Tensor, alpha: Tensor, size: int) -> Tensor:
    """Max alpha of the pixels mapping into each texel.

    uv [P,2] in [-1,1] and alpha [P] of one layer over all pixels of all frames ->
    float [size,size]; texels no pixel maps to get 0.
    """
    ij = ((uv.clamp(-1, 1 - 1e-6) + 1) * 0.5 * size).long()
    flat = ij[:, 1] * size + ij[:, 0]
    out = torch.zeros(size * size, device=uv.device, dtype=alpha.dtype)
    out.scatter_reduce_(0, flat, alpha, reduce="amax", include_self=True)
    return out.reshape(size, size)


def sample_atlas(atlas: Tensor, uv: Tensor) -> Tensor:
    """Bilinear lookup of an atlas image float [S,S,C] at uv [...,2] in [-1,1] -> [...,C]."""
    grid = uv.reshape(1, 1, -1, 2).to(atlas.dtype)
    image = atlas.permute(2, 0, 1)[None]
    values = F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return values[0, :, 0].T.reshape(*uv.shape[:-1], atlas.shape[-1])


def checkerboard(size: int, squares: int = 16) -> Tensor:
    """A black-and-white checkerboard atlas float [size,size,3], ``squares`` per side."""
    idx = torch.arange(size) * squares // size
    board = ((idx[:, None] + idx[None, :]) % 2).float()
    return board[..., None].expand(size, size, 3).clone()


def propagate_edit(frames: Tensor, uv: Tensor, alpha: Tensor, residual: Tensor,
                   original: dict[int, Tensor], edited: dict[int, Tensor], mode: str = "add") -> Tensor:
    """Render a texture edit through the video.

    frames [T,H,W,3] the input video; per layer k: uv [K,T,H,W,2], alpha [K,T,H,W],
    residual [K,T,H,W,3]. ``original[k]`` is layer k's atlas image [S,S,3] and ``edited[k]``
    its edited RGBA [S,S,4] (the edit's alpha: 0 = keep the original texel, 1 = use the
    edited colour); layers without an edit are left as they are.

    mode "add": out = frames + sum_k alpha_k * residual_k * (edit_k(uv_k) - atlas_k(uv_k)),
    so untouched regions come back exactly as the input; only the edited layers' atlases are
    needed. mode "replace": out = sum_k alpha_k * residual_k * texture_k(uv_k), texture_k the
    edited atlas where given and the original elsewhere (the decomposition's own
    reconstruction plus the edit); every layer's atlas is needed. Returns [T,H,W,3] in [0,1].
    """
    if mode not in ("add", "replace"):
        raise ValueError(f"edit mode must be 'add' or 'replace', got '{mode}'")
    out = frames.clone() if mode == "add" else torch.zeros_like(frames)
    # Unedited layers add exactly nothing in add mode, so they are not sampled at all.
    layers = sorted(edited) if mode == "add" else range(uv.shape[0])
    for k in layers:
        base = sample_atlas(original[k], uv[k])
        change: Tensor | float = 0.0  # edited texture minus original, at each pixel's uv
        if k in edited:
            rgba = sample_atlas(edited[k], uv[k])
            # a * (edit - base) rather than a * edit + (1 - a) * base - base: an edit that
            # repeats the original gives exactly 0, not float rounding noise.
            change = rgba[..., 3:] * (rgba[..., :3] - base)
        weight = alpha[k][..., None] * residual[k]
        out = out + weight * (change if mode == "add" else base + change)
    return out.clamp(0, 1)
