"""The NeRV family's training losses, on [B, 3, H, W] images in [0, 1] with gradients.

- ``l2``: mean((p - t)^2); ``l1``: mean(|p - t|).
- ``fusion``: 0.7 * L1 + 0.3 * (1 - SSIM) ("Fusion6" of the NeRV / HNeRV code). SSIM is
  pytorch_msssim's (11 x 11 Gaussian window, sigma 1.5, data range 1, averaged over the batch
  and channels); frames need at least 11 px per side.
- ``boost``: Boosting-NeRV's 60 * (0.7 * L1 + 0.3 * (1 - MS-SSIM)) + FFT-L1, where
  FFT-L1 = mean over (B, C, H, W) of |FFT2(p) - FFT2(t)|: the modulus of the complex
  difference of the unnormalised 2-D DFTs (torch.fft.fft2, norm "backward", over H and W of
  each channel). The unnormalised DFT sums over the H * W pixels, so this term grows with the
  frame size, as in the public code; it pushes the high frequencies the pixel terms neglect.
  MS-SSIM is nvd.eval.metrics.ms_ssim_loss_term (the metric's own MS-SSIM; frames need at
  least 33 px on the shorter side).

Inpainting (``keep``: float [1, 1, H, W] or [B, 1, H, W], 1 outside the holes, 0 inside):
every loss is computed on ``p * keep`` against ``t * keep``, as HNeRV's inpainting does, so
the holes are 0 in both images and neither a prediction nor a target pixel inside a hole
changes the loss or its gradient. (The pixel terms are then means over the whole frame, the
holes counting as exact: a constant factor.)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from nvd.core.errors import ConfigError
from nvd.eval.metrics import ms_ssim_loss_term
from nvd.models.nerv.training import LOSSES

PIXEL_WEIGHT = 0.7  # L1's share in fusion and boost
STRUCTURE_WEIGHT = 0.3  # (1 - SSIM) / (1 - MS-SSIM)'s share
BOOST_SCALE = 60.0  # Boosting-NeRV's factor on the spatial terms


def fft_l1(pred: Tensor, target: Tensor) -> Tensor:
    """mean |FFT2(pred) - FFT2(target)| over [B, C, H, W] (unnormalised 2-D DFT over H, W).

    One real FFT of the difference gives it: the DFT is linear, and a real image's spectrum is
    conjugate-symmetric, |X[h, w]| = |X[-h, W - w]|, so the columns rfft2 leaves out repeat
    columns 1 .. ceil(W / 2) - 1, which count twice (a quarter of the two full FFTs' work).
    """
    width = pred.shape[-1]
    spectrum = torch.fft.rfft2(pred.float() - target.float()).abs()  # [..., H, W // 2 + 1]
    twice = (width - 1) // 2  # columns 1..twice stand for their mirror images too
    total = spectrum.sum() + spectrum[..., 1:twice + 1].sum()
    return total / pred.numel()


def ssim_term(pred: Tensor, target: Tensor) -> Tensor:
    """1 - SSIM(pred, target), differentiable (pytorch_msssim, data range 1)."""
    try:
        import pytorch_msssim
    except ModuleNotFoundError as exc:  # pragma: no cover - a pinned dependency
        raise ModuleNotFoundError("the fusion loss needs the 'pytorch-msssim' package", name=exc.name) from exc
    return 1 - pytorch_msssim.ssim(pred.float(), target.float(), data_range=1.0, size_average=True)


def boost_terms(pred: Tensor, target: Tensor) -> dict[str, Tensor]:
    """The three terms of Boosting-NeRV's loss: l1, ms_ssim_loss (1 - MS-SSIM), fft_l1."""
    return {"l1": (pred - target).abs().mean(), "ms_ssim_loss": ms_ssim_loss_term(pred, target),
            "fft_l1": fft_l1(pred, target)}


def boost_loss(pred: Tensor, target: Tensor) -> Tensor:
    """60 * (0.7 * L1 + 0.3 * (1 - MS-SSIM)) + FFT-L1 of [B, 3, H, W] images in [0, 1]."""
    terms = boost_terms(pred, target)
    return combine("boost", terms)


def combine(name: str, terms: dict[str, Tensor]) -> Tensor:
    """The total of loss ``name`` from its terms (as ``loss_terms`` returns them)."""
    if name == "boost":
        return BOOST_SCALE * (PIXEL_WEIGHT * terms["l1"] + STRUCTURE_WEIGHT * terms["ms_ssim_loss"]) + terms["fft_l1"]
    if name == "fusion":
        return PIXEL_WEIGHT * terms["l1"] + STRUCTURE_WEIGHT * terms["ssim_loss"]
    if name == "l1":
        return terms["l1"]
    if name == "l2":
        return terms["l2"]
    raise ConfigError(f"nerv: unknown loss {name!r}, expected one of {LOSSES}")


def loss_terms(name: str, pred: Tensor, target: Tensor, keep: Tensor | None = None) -> dict[str, Tensor]:
    """The terms of loss ``name`` (see the module docstring), by their log.csv names: l2, l1,
    ssim_loss (1 - SSIM), ms_ssim_loss (1 - MS-SSIM), fft_l1; with ``keep`` on the pixels
    outside the holes only."""
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(f"expected prediction and target of the same shape [B, C, H, W], got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if keep is not None:
        pred, target = pred * keep, target * keep
    if name == "boost":
        return boost_terms(pred, target)
    if name == "fusion":
        return {"l1": (pred - target).abs().mean(), "ssim_loss": ssim_term(pred, target)}
    if name == "l1":
        return {"l1": (pred - target).abs().mean()}
    if name == "l2":
        return {"l2": F.mse_loss(pred, target)}
    raise ConfigError(f"nerv: unknown loss {name!r}, expected one of {LOSSES}")


def reconstruction_loss(name: str, pred: Tensor, target: Tensor,
                        keep: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """(total, terms) of loss ``name`` on pred, target [B, 3, H, W] in [0, 1]."""
    terms = loss_terms(name, pred, target, keep)
    return combine(name, terms), terms
