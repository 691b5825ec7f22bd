"""Quality metrics: PSNR on known values, SSIM against scikit-image, LPIPS from a local file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torchvision.models import alexnet

from nvd.core.errors import WeightsError
from nvd.eval.metrics import LPIPS, lpips_metric, psnr, psnr_per_frame, ssim, ssim_per_frame


def test_psnr_known_values() -> None:
    target = torch.zeros(2, 4, 5, 3, dtype=torch.float64)
    pred = target.clone()
    pred[0] += 0.1  # MSE 0.01 -> 20 dB
    pred[1] += 0.01  # MSE 0.0001 -> 40 dB
    per_frame = psnr_per_frame(pred, target)
    assert per_frame.shape == (2,)
    assert per_frame.tolist() == pytest.approx([20.0, 40.0], abs=1e-12)
    assert psnr(pred, target) == pytest.approx(30.0, abs=1e-12)  # mean of per-frame values
    assert psnr(pred.float(), target.float()) == pytest.approx(30.0, abs=1e-5)
    assert psnr(pred[:1] * 255, target[:1] * 255, data_range=255.0) == pytest.approx(20.0, abs=1e-9)
    assert psnr(target, target) == math.inf


def test_psnr_of_uint8_frames() -> None:
    target = torch.full((1, 8, 8, 3), 100, dtype=torch.uint8)
    pred = target + 10  # MSE 100 -> 10 log10(255^2 / 100)
    assert psnr(pred, target, data_range=255.0) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-5)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\[T,H,W,C\]"):
        psnr(torch.zeros(1, 4, 4, 3), torch.zeros(1, 4, 5, 3))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(torch.zeros(1, 10, 30, 3), torch.zeros(1, 10, 30, 3))


def _frames(t: int, h: int, w: int, seed: int) -> np.ndarray:
    """Smooth structure plus noise in [0, 1], float64 [t,h,w,3]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    frames = []
    for i in range(t):
        base = np.stack([np.sin(6 * x + i), np.cos(5 * y - i), np.sin(4 * (x + y))], axis=-1) * 0.4 + 0.5
        frames.append(np.clip(base + 0.1 * rng.standard_normal((h, w, 3)), 0, 1))
    return np.stack(frames)


def test_ssim_matches_scikit_image() -> None:
    target = _frames(3, 37, 45, seed=0)
    pred = np.clip(target + 0.08 * np.random.default_rng(1).standard_normal(target.shape), 0, 1)
    expected = [
        structural_similarity(
            pred[i], target[i], gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=1, channel_axis=-1,
        )
        for i in range(len(target))
    ]
    for dtype, tolerance in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        got = ssim_per_frame(torch.from_numpy(pred).to(dtype), torch.from_numpy(target).to(dtype))
        assert got.tolist() == pytest.approx(expected, abs=tolerance)
    # More frames than one SSIM chunk, to cover the chunking.
    many = np.concatenate([pred] * 4), np.concatenate([target] * 4)
    assert ssim(torch.from_numpy(many[0]), torch.from_numpy(many[1])) == pytest.approx(np.mean(expected), abs=1e-6)
    assert ssim(torch.from_numpy(target), torch.from_numpy(target)) == pytest.approx(1.0, abs=1e-6)


@pytest.fixture(scope="module")
def lpips_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised weight file in the documented layout."""
    with torch.device("meta"):  # shapes only: skips initialising AlexNet's large classifier
        shapes = {k: v.shape for k, v in alexnet(weights=None).features.state_dict().items()}
    torch.manual_seed(0)
    state = {f"features.{k}": 0.05 * torch.randn(shape) for k, shape in shapes.items()}
    for i, channels in enumerate((64, 192, 384, 256, 256)):
        state[f"lin{i}.model.1.weight"] = torch.rand(1, channels, 1, 1)
    path = tmp_path_factory.mktemp("weights") / "lpips_alex.pth"
    torch.save(state, path)
    return path


def test_lpips_needs_a_configured_local_file(tmp_path: Path) -> None:
    assert lpips_metric(None) is None
    assert lpips_metric("") is None
    with pytest.raises(WeightsError, match="does not exist"):
        lpips_metric(str(tmp_path / "missing.pth"))
    torch.save({"lin0.model.1.weight": torch.rand(1, 64, 1, 1)}, tmp_path / "partial.pth")
    with pytest.raises(WeightsError, match=r"lacks features\.0\.weight"):
        lpips_metric(str(tmp_path / "partial.pth"))


def test_lpips_from_a_local_file(lpips_file: Path) -> None:
    metric = lpips_metric(str(lpips_file))
    assert isinstance(metric, LPIPS)
    target = torch.from_numpy(_frames(3, 64, 64, seed=2)).float()
    pred = (target + 0.2 * torch.randn(target.shape, generator=torch.Generator().manual_seed(3))).clamp(0, 1)
    per_frame = metric.per_frame(pred, target)
    assert per_frame.shape == (3,)
    assert torch.isfinite(per_frame).all() and (per_frame > 0).all()
    assert metric(target, target) == 0.0
    assert metric(pred, target) == pytest.approx(per_frame.mean().item())
    # Same frames as uint8 in [0, 255] give the same distances.
    pred8, target8 = (pred * 255).round(), (target * 255).round()
    as_uint8 = metric.per_frame(pred8.to(torch.uint8), target8.to(torch.uint8), data_range=255.0)
    quantised = metric.per_frame(pred8 / 255, target8 / 255)
    assert torch.allclose(as_uint8, quantised, atol=1e-6)


def test_lpips_accepts_the_lpips_package_layout(lpips_file: Path, tmp_path: Path) -> None:
    """A state dict of lpips.LPIPS(net="alex") names the trunk net.sliceK.N.*."""
    slice_of = {0: 1, 3: 2, 6: 3, 8: 4, 10: 5}  # features index -> lpips slice
    state = torch.load(lpips_file, weights_only=True)
    renamed = {}
    for key, value in state.items():
        if key.startswith("features."):
            index = int(key.split(".")[1])
            key = f"net.slice{slice_of[index]}.{key[len('features.'):]}"
        renamed[key] = value
    renamed["scaling_layer.shift"] = torch.zeros(1, 3, 1, 1)  # present in that layout, unused here
    torch.save(renamed, tmp_path / "lpips_package.pth")
    target = torch.from_numpy(_frames(2, 48, 40, seed=4)).float()
    pred = target.flip(1)
    a = lpips_metric(str(lpips_file)).per_frame(pred, target)
    b = lpips_metric(str(tmp_path / "lpips_package.pth")).per_frame(pred, target)
    assert torch.equal(a, b)
