"""Reconstruction quality metrics for videos: PSNR, SSIM and (with local weights) LPIPS.

All functions take a prediction and a target of shape [T,H,W,C] (frames, height, width,
channels; C=3 for RGB) with values in [0, data_range], on any device, and return the mean
over frames as a Python float; the ``*_per_frame`` variants return a Tensor[T]. Nothing
here needs gradients, so everything runs under ``torch.no_grad``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nvd.core.errors import WeightsError

# Frames per batch for the convolutional metrics: bounds the memory of the filtered
# intermediates (SSIM keeps 5 filtered copies of a chunk) on long high-resolution videos.
_FRAME_CHUNK = 8


def _check_pair(pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected prediction and target of the same shape [T,H,W,C], got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )


def _float(x: Tensor) -> Tensor:
    """``x`` as float32, or float64 when it already is (integer and half frames -> float32)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def _chunks(pred: Tensor, target: Tensor) -> Iterator[tuple[Tensor, Tensor]]:
    for start in range(0, pred.shape[0], _FRAME_CHUNK):
        yield pred[start : start + _FRAME_CHUNK], target[start : start + _FRAME_CHUNK]


@torch.no_grad()
def psnr_per_frame(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame PSNR in dB, ``10 log10(data_range^2 / MSE)``.

    pred, target: [T,H,W,C]. Returns Tensor[T] (float64, on the inputs' device); a frame
    reproduced exactly gives +inf.
    """
    _check_pair(pred, target)
    mse = (_float(pred) - _float(target)).square().mean(dim=(1, 2, 3)).double()
    return 10.0 * torch.log10(data_range**2 / mse)


def psnr(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame PSNR in dB (pred, target: [T,H,W,C]).

    Averaging per-frame PSNR (rather than PSNR of the whole-video MSE) is the convention of
    the layered-atlas and NeRV papers whose tables we compare against.
    """
    return psnr_per_frame(pred, target, data_range).mean().item()


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-0.5 * (x / sigma) ** 2)
    return (g / g.sum()).to(dtype=dtype, device=device)


@torch.no_grad()
def ssim_per_frame(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame SSIM (Wang et al. 2004), averaged over channels.

    pred, target: [T,H,W,C] with H, W >= 11. Returns Tensor[T].

    Standard parameters: 11x11 Gaussian window with sigma 1.5, K1=0.01, K2=0.03, population
    (not sample) covariances, and the mean taken over the "valid" region where the window
    fits inside the image. This matches ``skimage.metrics.structural_similarity`` with
    ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``, which filters the
    whole image and then crops the 5-pixel border it could not filter exactly.
    """
    _check_pair(pred, target)
    size, sigma = 11, 1.5
    if min(pred.shape[1:3]) < size:
        raise ValueError(f"SSIM needs frames of at least {size}x{size}, got {tuple(pred.shape[1:3])}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    out = []
    for p, t in _chunks(pred, target):
        x = _float(p).permute(0, 3, 1, 2)  # [t,C,H,W]
        y = _float(t).permute(0, 3, 1, 2)
        channels = x.shape[1]
        stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # [t,5C,H,W]
        # The Gaussian window is separable: two 1-D passes cost 22 instead of 121 MACs/pixel.
        g = _gaussian_1d(size, sigma, stack.dtype, stack.device)
        groups = stack.shape[1]
        filtered = F.conv2d(stack, g.view(1, 1, size, 1).expand(groups, 1, size, 1), groups=groups)
        filtered = F.conv2d(filtered, g.view(1, 1, 1, size).expand(groups, 1, 1, size), groups=groups)
        mx, my, mxx, myy, mxy = filtered.split(channels, dim=1)
        vx, vy, vxy = mxx - mx * mx, myy - my * my, mxy - mx * my
        s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
        out.append(s.mean(dim=(1, 2, 3)))
    return torch.cat(out)


def ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame SSIM (pred, target: [T,H,W,C]); see ssim_per_frame."""
    return ssim_per_frame(pred, target, data_range).mean().item()


# torchvision AlexNet ``features`` indices that end each LPIPS stage (after relu1..relu5),
# and the channel count there; the lpips package slices the network the same way.
_ALEX_STAGES = ((0, 2, 64), (2, 5, 192), (5, 8, 384), (8, 10, 256), (10, 12, 256))
# lpips package v0.1 input normalisation (applied to inputs already in [-1, 1]).
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)


def _alexnet_features() -> nn.Sequential:
    """torchvision AlexNet's convolutional trunk with uninitialised weights (they are loaded
    next). Built on the meta device so the unused 58M-parameter classifier costs nothing."""
    from torchvision.models import alexnet

    with torch.device("meta"):
        features = alexnet(weights=None).features
    return features.to_empty(device="cpu")


class LPIPS(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk (Zhang et al. 2018), from local weights only.

    Equivalent to ``lpips.LPIPS(net="alex", version="0.1")`` in evaluation mode: inputs
    scaled to [-1, 1] and shifted/scaled per channel; at each of the five ReLU outputs the
    feature vector of every pixel is normalised to unit length over channels, the squared
    difference between the two images is weighted by a learned 1x1 convolution (``linK``,
    no bias), averaged over space, and the five layers are summed. Build it with
    ``lpips_metric``.
    """

    def __init__(self, state: dict[str, Tensor]) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for _, _, c in _ALEX_STAGES)
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1))
        prefix = "features."
        self.features.load_state_dict({k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)})
        for i, lin in enumerate(self.lins):
            lin.weight.data.copy_(state[f"lin{i}.model.1.weight"])
        self.requires_grad_(False)
        self.eval()

    def _stages(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised ReLU outputs of the five stages; x: [N,3,H,W] in [-1, 1]."""
        h = (x - self.shift) / self.scale
        feats = []
        for start, stop, _ in _ALEX_STAGES:
            for i in range(start, stop):
                h = self.features[i](h)
            # Same epsilon as the lpips package, so identical features give exactly 0.
            feats.append(h / (h.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return feats

    @torch.no_grad()
    def per_frame(self, pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
        """Per-frame LPIPS distance. pred, target: [T,H,W,3] in [0, data_range] (H, W >= 31,
        the least AlexNet's strides and pooling accept). Returns Tensor[T] on this module's device."""
        _check_pair(pred, target)
        device = self.shift.device
        out = []
        for p, t in _chunks(pred, target):
            # [T,H,W,3] in [0, data_range] -> [T,3,H,W] in [-1, 1], the lpips input range.
            x = (p.to(device).float() / data_range * 2 - 1).permute(0, 3, 1, 2)
            y = (t.to(device).float() / data_range * 2 - 1).permute(0, 3, 1, 2)
            total = torch.zeros(x.shape[0], device=device)
            for lin, fx, fy in zip(self.lins, self._stages(x), self._stages(y)):
                total += lin((fx - fy).square()).mean(dim=(1, 2, 3))
            out.append(total)
        return torch.cat(out)

    def forward(self, pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:  # type: ignore[override]
        """Mean over frames of the per-frame LPIPS (pred, target: [T,H,W,3]); lower is better."""
        return self.per_frame(pred, target, data_range).mean().item()


_SLICE_KEY = re.compile(r"net\.slice\d\.(\d+\.(?:weight|bias))")


def lpips_metric(weights_path: str | None, device: str | torch.device = "cpu") -> LPIPS | None:
    """The LPIPS metric from a local weight file, or None when no file is configured.

    Nothing is downloaded. The file is a ``torch.save``'d state dict holding
    - the AlexNet trunk under torchvision's names with a ``features.`` prefix
      (``features.0.weight``, ``features.0.bias``, ... ``features.10.bias``), and
    - the LPIPS linear layers under the lpips package's names
      (``lin0.model.1.weight`` [1,64,1,1] ... ``lin4.model.1.weight`` [1,256,1,1]).
    A state dict of the lpips package's own model (trunk keys ``net.sliceK.N.weight``) is
    accepted too, so on a machine with internet either of these produces the file::

        import lpips, torch                       # pip install lpips
        torch.save(lpips.LPIPS(net="alex").state_dict(), "lpips_alex.pth")

        # or, without the lpips package's model class:
        import torch, torchvision
        alex = torchvision.models.alexnet(weights="IMAGENET1K_V1")
        state = {f"features.{k}": v for k, v in alex.features.state_dict().items()}
        state.update(torch.load("lpips/weights/v0.1/alex.pth"))  # from the lpips repo
        torch.save(state, "lpips_alex.pth")

    Raises WeightsError when the file is missing, unreadable or lacks a key.
    """
    if not weights_path:
        return None
    path = Path(weights_path).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"LPIPS weight file {path} does not exist (see nvd.eval.metrics.lpips_metric for its layout)"
        )
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a bad file
        raise WeightsError(f"LPIPS weight file {path} is not a readable state dict ({exc})") from exc
    if not isinstance(raw, dict):
        raise WeightsError(f"LPIPS weight file {path} holds a {type(raw).__name__}, not a state dict")
    state = {}
    for key, value in raw.items():
        match = _SLICE_KEY.fullmatch(key)
        state[f"features.{match.group(1)}" if match else key] = value
    needed = [f"features.{k}" for k in _alexnet_features().state_dict()]
    needed += [f"lin{i}.model.1.weight" for i in range(len(_ALEX_STAGES))]
    missing = [k for k in needed if k not in state]
    if missing:
        raise WeightsError(
            f"LPIPS weight file {path} lacks {', '.join(missing)} (see nvd.eval.metrics.lpips_metric for its layout)"
        )
    try:
        return LPIPS(state).to(device)
    except RuntimeError as exc:  # wrong tensor shapes
        raise WeightsError(f"LPIPS weight file {path} does not fit AlexNet/LPIPS ({exc})") from exc
