"""Reconstruction quality metrics for videos: PSNR, SSIM, MS-SSIM, FLIP and (with local
weights) LPIPS.

All functions take a prediction and a target of shape [T,H,W,C] (frames, height, width,
channels; C=3 for RGB) with values in [0, data_range], on any device, and return the mean
over frames as a Python float; the ``*_per_frame`` variants return a Tensor[T]. Nothing
here needs gradients, so everything runs under ``torch.no_grad``; the one exception is
``ms_ssim_loss_term``, the differentiable training-loss form of MS-SSIM.

MS-SSIM comes from the ``pytorch-msssim`` package and FLIP from ``flip-evaluator``
(NVIDIA's FLIP); both are imported only when one of their functions is called, so importing
this module stays fast and works without them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

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


def _missing(metric: str, module: str, package: str) -> ModuleNotFoundError:
    return ModuleNotFoundError(
        f"{metric} needs the '{package}' package (import name {module}), which is not "
        f"installed: pip install {package} (the version is pinned in requirements.lock)",
        name=module,
    )


def _pytorch_msssim() -> ModuleType:
    """The ``pytorch_msssim`` module, imported on first use."""
    try:
        import pytorch_msssim
    except ModuleNotFoundError as exc:
        if exc.name != "pytorch_msssim":
            raise  # the package is there but one of its own imports failed
        raise _missing("MS-SSIM", "pytorch_msssim", "pytorch-msssim") from exc
    return pytorch_msssim


def _flip_evaluator() -> ModuleType:
    """The ``flip_evaluator`` module, imported on first use."""
    try:
        import flip_evaluator
    except ModuleNotFoundError as exc:
        if exc.name != "flip_evaluator":
            raise
        raise _missing("FLIP", "flip_evaluator", "flip-evaluator") from exc
    return flip_evaluator


# MS-SSIM (Wang, Simoncelli & Bovik 2003) as pytorch_msssim computes it: 5 scales with the
# standard exponents, Gaussian window with sigma 1.5, K1=0.01, K2=0.03.
_MS_SSIM_SCALES = 5
_MS_SSIM_WIN = 11
_MS_SSIM_MIN_WIN = 3


def ms_ssim_win_size(height: int, width: int) -> int:
    """Gaussian window size (taps per axis) that ``ms_ssim*`` use on frames of this size.

    With s = min(height, width): 11 (the standard MS-SSIM) when s > 160, otherwise the
    largest odd w with 16 (w - 1) < s, i.e. w = 9 for s in 129..160, 7 for 97..128,
    5 for 65..96 and 3 for 33..64. That is the condition under which the window fits the
    image at the coarsest of the 5 scales (after 4 halvings), and the one pytorch_msssim
    asserts. Fewer scales with renormalised weights would not help: pytorch_msssim 1.0.0
    checks ``s > 16 (win_size - 1)`` whatever ``weights`` it is given. Raises ValueError
    when s < 33 (the window would shrink to a single pixel, where SSIM's variance terms
    vanish).
    """
    s = min(height, width)
    shrink = 2 ** (_MS_SSIM_SCALES - 1)  # 16: the coarsest scale is 1/16 of the frame
    if s > shrink * (_MS_SSIM_WIN - 1):
        return _MS_SSIM_WIN
    k = (s - 1) // shrink  # largest w - 1 with 16 (w - 1) < s
    win = 1 + 2 * (k // 2)  # ... rounded down to an odd w
    if win < _MS_SSIM_MIN_WIN:
        raise ValueError(
            f"MS-SSIM needs frames of at least {shrink * (_MS_SSIM_MIN_WIN - 1) + 1} px on the "
            f"shorter side, got {height}x{width}"
        )
    return win


def _ms_ssim_batch(x: Tensor, y: Tensor, data_range: float) -> Tensor:
    """Per-image MS-SSIM of [N,C,H,W] batches (averaged over channels), with gradients."""
    win = ms_ssim_win_size(x.shape[-2], x.shape[-1])
    return _pytorch_msssim().ms_ssim(
        x, y, data_range=data_range, size_average=False, win_size=win, win_sigma=1.5
    )


@torch.no_grad()
def ms_ssim_per_frame(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame multi-scale SSIM from ``pytorch_msssim.ms_ssim``; higher is better, 1 for
    identical frames.

    pred, target: [T,H,W,C] in [0, data_range] with min(H, W) >= 33. Returns Tensor[T]
    (in the inputs' float dtype, float32 for integer or half frames, on their device).

    Each frame is compared at 5 scales (the frame, then 4 successive 2x2 average-pool
    halvings), with the standard exponents (0.0448, 0.2856, 0.3001, 0.2363, 0.1333) on the
    contrast-structure terms of scales 1-4 and the full SSIM of scale 5, computed per
    channel and then averaged over channels. The Gaussian window has sigma 1.5 and, for
    frames whose shorter side s is > 160 px, 11x11 taps: the standard MS-SSIM,
    ``pytorch_msssim.ms_ssim(x, y, data_range=data_range)``. Smaller frames cannot hold
    that window at the coarsest scale, so the window shrinks to the largest odd size that
    fits (same sigma, truncated): 9 for s in 129..160, 7 for 97..128, 5 for 65..96 and 3
    for 33..64 (see ``ms_ssim_win_size``). Scores of frames of different sizes are thus
    not strictly comparable; compare methods at the same resolution.
    """
    _check_pair(pred, target)
    out = []
    for p, t in _chunks(pred, target):
        out.append(_ms_ssim_batch(_float(p).permute(0, 3, 1, 2), _float(t).permute(0, 3, 1, 2), data_range))
    return torch.cat(out)


def ms_ssim(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame MS-SSIM (pred, target: [T,H,W,C]); see ms_ssim_per_frame."""
    return ms_ssim_per_frame(pred, target, data_range).mean().item()


def ms_ssim_loss_term(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Training loss ``1 - MS-SSIM``, differentiable: a 0-dim tensor with gradients.

    pred, target: [B,C,H,W] (channels first, as models output them; C=3 for RGB) in
    [0, data_range], min(H, W) >= 33. The MS-SSIM is exactly the one of
    ``ms_ssim_per_frame`` (same window rule for small frames), averaged over the batch, so
    ``ms_ssim_loss_term(p, t) == 1 - ms_ssim(p.permute(0, 2, 3, 1), t.permute(0, 2, 3, 1))``.
    This is the MS-SSIM part of the NeRV family's loss.
    """
    if pred.shape != target.shape or pred.ndim != 4:
        raise ValueError(
            f"expected prediction and target of the same shape [B,C,H,W], got "
            f"{tuple(pred.shape)} and {tuple(target.shape)}"
        )
    return 1 - _ms_ssim_batch(_float(pred), _float(target), data_range).mean()


@torch.no_grad()
def flip_per_frame(pred: Tensor, target: Tensor, data_range: float = 1.0) -> Tensor:
    """Per-frame mean FLIP error (NVIDIA's FLIP, LDR mode, from the ``flip-evaluator``
    package); lower is better, 0 for identical frames, at most 1.

    pred, target: [T,H,W,3] RGB in [0, data_range], taken as sRGB-encoded (FLIP's LDR
    assumption). Returns Tensor[T] (float64, on the inputs' device).

    Each frame goes to ``flip_evaluator.evaluate(reference=target, test=pred, "LDR")`` as
    HxWx3 float32 in [0, 1] (the frames divided by data_range and clamped to [0, 1], the
    range LDR-FLIP is defined on), with the package's default viewing condition: 67.02
    pixels per degree (a 0.7 m wide 3840-pixel display seen from 0.7 m). The value is the
    mean of the per-pixel FLIP error map. The computation runs on the CPU.
    """
    _check_pair(pred, target)
    if pred.shape[-1] != 3:
        raise ValueError(f"FLIP needs RGB frames [T,H,W,3], got {tuple(pred.shape)}")
    flip_evaluator = _flip_evaluator()
    out = []
    for p, t in _chunks(pred, target):
        test = (_float(p) / data_range).clamp(0, 1).to("cpu", torch.float32).contiguous()
        reference = (_float(t) / data_range).clamp(0, 1).to("cpu", torch.float32).contiguous()
        for r, x in zip(reference, test):
            # A fresh parameters dict per call: the package's default argument is a shared {}.
            _, mean_error, _ = flip_evaluator.evaluate(
                r.numpy(), x.numpy(), "LDR", applyMagma=False, computeMeanError=True, parameters={}
            )
            out.append(float(mean_error))
    return torch.tensor(out, dtype=torch.float64, device=pred.device)


def flip(pred: Tensor, target: Tensor, data_range: float = 1.0) -> float:
    """Mean over frames of the per-frame FLIP error (pred, target: [T,H,W,3]); lower is
    better. See flip_per_frame."""
    return flip_per_frame(pred, target, data_range).mean().item()


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


# The smallest frame side LPIPS' AlexNet trunk accepts (LPIPS.per_frame).
LPIPS_MIN_SIDE = 31


def usable_lpips(weights_path: str | None, height: int, width: int,
                 device: str | torch.device = "cpu") -> LPIPS | None:
    """``lpips_metric``, or None (with a warning) for frames too small for its AlexNet."""
    metric = lpips_metric(weights_path, device)
    if metric is not None and min(height, width) < LPIPS_MIN_SIDE:
        import warnings

        warnings.warn(f"frames of {width}x{height} are too small for LPIPS (at least {LPIPS_MIN_SIDE} px "
                      "per side); lpips is left out (null)", stacklevel=3)
        return None
    return metric


def video_quality(pred: Tensor, target: Tensor, lpips_weights: str | None = None) -> dict[str, float | None]:
    """The figures every family reports for a reconstruction: pred, target [T,H,W,3] in [0, 1].

    {"psnr", "ms_ssim", "lpips", "flip"}: means over frames; lpips is None without local
    weights or for frames under LPIPS_MIN_SIDE, ms_ssim None for frames too small for it
    (ms_ssim_win_size), psnr None when every frame is exact (strict JSON).
    """
    import math

    pred = pred.clamp(0, 1)
    value = psnr(pred, target)
    lpips = usable_lpips(lpips_weights, pred.shape[1], pred.shape[2], pred.device)
    try:
        structure: float | None = ms_ssim(pred, target)
    except ValueError:
        structure = None
    return {"psnr": value if math.isfinite(value) else None, "ms_ssim": structure,
            "lpips": None if lpips is None else lpips(pred, target), "flip": flip(pred, target)}
