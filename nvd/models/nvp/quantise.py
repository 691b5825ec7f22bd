"""NVP's 8-bit feature quantisation and the bits it takes (the paper's evaluation).

Each (plane, level, feature) of the keyframes and each feature of the sparse grid is mapped
linearly from its own [min, max] to the integers 0..255 (``code = round((x - min) / (max - min)
* 255)``), so a value comes back within (max - min) / 510 of itself. The decoder stays float32.

Bits of the quantised model: 8 per feature value, 32 per decoder parameter, and the 2 float32
bounds of every group (side information the reference left out of its count). bpp divides
by the video's T * H * W.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from nvd.models.nvp.config import N_PLANES
from nvd.models.nvp.model import NVP

LEVELS = 255  # largest code of 8 bits
FLOAT_BITS = 32
CODE_BITS = 8


@dataclass(frozen=True)
class QuantisedGroups:
    """``codes`` uint8 [G, N] of G groups, each from its own [low, high] (float32 [G])."""

    codes: Tensor
    low: Tensor
    high: Tensor

    def dequantise(self) -> Tensor:
        """float32 [G, N]: low + code * (high - low) / 255."""
        step = (self.high - self.low) / LEVELS
        return self.low[:, None] + self.codes.float() * step[:, None]


def quantise_groups(values: Tensor) -> QuantisedGroups:
    """values [G, N] -> 8-bit codes per row, each row over its own min..max (a constant row
    codes to 0 and comes back exact)."""
    values = values.detach().float()
    low, high = values.min(dim=1).values, values.max(dim=1).values
    scale = torch.where(high > low, LEVELS / (high - low), torch.zeros_like(high))
    codes = ((values - low[:, None]) * scale[:, None]).round_().clamp_(0, LEVELS).to(torch.uint8)
    return QuantisedGroups(codes, low, high)


@dataclass(frozen=True)
class QuantisedFeatures:
    """NVP's features in 8 bits: one QuantisedGroups per keyframe level image (plane-major,
    then level; groups: its F features, [F, rows * cols]) and one for the sparse grid
    (groups: features, [F, T * S * S])."""

    levels: tuple[QuantisedGroups, ...]
    sparse: QuantisedGroups

    @property
    def values(self) -> int:
        return sum(q.codes.numel() for q in (*self.levels, self.sparse))

    @property
    def groups(self) -> int:
        return sum(q.low.numel() for q in (*self.levels, self.sparse))


def _level_slices(model: NVP) -> list[tuple[int, int]]:
    """(first row, rows) in the planes' table of every level image, plane-major."""
    planes = model.planes
    return [(planes.offsets[k][l], rows * cols) for k, shapes in enumerate(planes.shapes)
            for l, (rows, cols) in enumerate(shapes)]


def quantise_features(model: NVP) -> QuantisedFeatures:
    """The 8-bit codes of ``model``'s keyframe planes and sparse grid."""
    table, feats = model.planes.table.detach(), model.planes.features
    levels = tuple(quantise_groups(table[start:start + size].T) for start, size in _level_slices(model))
    sparse = quantise_groups(model.sparse.grid.detach().reshape(-1, feats).T)
    return QuantisedFeatures(levels, sparse)


@torch.no_grad()
def dequantised_model(model: NVP, codes: QuantisedFeatures | None = None) -> NVP:
    """A copy of ``model`` whose features are the dequantised ``codes`` (default: its own)."""
    codes = quantise_features(model) if codes is None else codes
    out = copy.deepcopy(model)
    table = out.planes.table
    for q, (start, size) in zip(codes.levels, _level_slices(out)):
        table[start:start + size] = q.dequantise().T.to(table.dtype)
    grid = out.sparse.grid
    grid.copy_(codes.sparse.dequantise().T.reshape(grid.shape).to(grid.dtype))
    return out


def model_bits(model: NVP, quantised: bool) -> int:
    """Bits to store ``model``: float32 everywhere, or with 8-bit features plus their bounds."""
    decoder = sum(p.numel() for p in model.decoder.parameters())
    features = model.planes.table.numel() + model.sparse.grid.numel()
    if not quantised:
        return FLOAT_BITS * (decoder + features)
    groups = N_PLANES * len(model.planes.sides) * model.planes.features + model.sparse.features
    return FLOAT_BITS * decoder + CODE_BITS * features + 2 * FLOAT_BITS * groups


def bits_per_pixel(bits: int, num_frames: int, height: int, width: int) -> float:
    """bits over T * H * W."""
    return bits / (num_frames * height * width)
