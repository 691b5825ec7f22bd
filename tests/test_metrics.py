"""Quality metrics: PSNR on known values, SSIM against scikit-image, LPIPS from a local file,
MS-SSIM against pytorch_msssim and FLIP against flip_evaluator."""

from __future__ import annotations

import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity
from torchvision.models import alexnet

from nvd.core.errors import WeightsError
from nvd.eval.metrics import (
    LPIPS,
    flip,
    flip_per_frame,
    lpips_metric,
    ms_ssim,
    ms_ssim_loss_term,
    ms_ssim_per_frame,
    ms_ssim_win_size,
    psnr,
    psnr_per_frame,
    ssim,
    ssim_per_frame,
)


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


def _noisy(target: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    noise = torch.randn(target.shape, generator=torch.Generator().manual_seed(seed), dtype=target.dtype)
    return (target + sigma * noise).clamp(0, 1)


def test_identical_frames_give_ms_ssim_one_and_flip_zero() -> None:
    target = torch.from_numpy(_frames(2, 96, 64, seed=5)).float()
    assert ms_ssim_per_frame(target, target).tolist() == pytest.approx([1.0, 1.0], abs=1e-5)
    assert ms_ssim(target, target) == pytest.approx(1.0, abs=1e-5)
    assert flip_per_frame(target, target).tolist() == [0.0, 0.0]
    assert flip(target, target) == 0.0


def test_ms_ssim_and_flip_order_with_noise() -> None:
    target = torch.from_numpy(_frames(1, 64, 96, seed=6)).float()
    preds = [_noisy(target, sigma, seed=7) for sigma in (0.01, 0.03, 0.1, 0.3)]
    ms = [ms_ssim(p, target) for p in preds]
    fl = [flip(p, target) for p in preds]
    assert ms == sorted(ms, reverse=True) and len(set(ms)) == len(ms), ms
    assert fl == sorted(fl) and len(set(fl)) == len(fl), fl
    assert 0 < ms[-1] < ms[0] < 1 and 0 < fl[0] < fl[-1] < 1


def test_ms_ssim_matches_pytorch_msssim() -> None:
    import pytorch_msssim

    # > 160 px: the standard MS-SSIM (11x11 window, 5 scales); 10 frames span two chunks.
    target = torch.from_numpy(_frames(10, 168, 176, seed=8)).float()
    pred = _noisy(target, 0.05, seed=9)
    expected = pytorch_msssim.ms_ssim(
        pred.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2), data_range=1.0, size_average=False
    )
    got = ms_ssim_per_frame(pred, target)
    assert got.dtype == torch.float32 and got.shape == (10,)
    assert torch.allclose(got, expected, rtol=0, atol=1e-6)
    assert ms_ssim(pred, target) == pytest.approx(expected.mean().item(), abs=1e-6)
    # The same frames as uint8 in [0, 255] give the MS-SSIM of the quantised frames.
    pred8, target8 = (pred[:2] * 255).round(), (target[:2] * 255).round()
    as_uint8 = ms_ssim_per_frame(pred8.to(torch.uint8), target8.to(torch.uint8), data_range=255.0)
    assert torch.allclose(as_uint8, ms_ssim_per_frame(pred8 / 255, target8 / 255), atol=1e-5)
    # Smaller frames: pytorch_msssim with the documented smaller window.
    small_t, small_p = target[:2, :96, :100].double(), pred[:2, :96, :100].double()
    expected = pytorch_msssim.ms_ssim(
        small_p.permute(0, 3, 1, 2), small_t.permute(0, 3, 1, 2), data_range=1.0, size_average=False, win_size=5
    )
    got = ms_ssim_per_frame(small_p, small_t)
    assert got.dtype == torch.float64 and torch.allclose(got, expected, rtol=0, atol=1e-12)


def test_ms_ssim_window_rule() -> None:
    table = {33: 3, 64: 3, 65: 5, 96: 5, 97: 7, 128: 7, 129: 9, 160: 9, 161: 11, 720: 11}
    assert {s: ms_ssim_win_size(s, 1280) for s in table} == table
    assert ms_ssim_win_size(1280, 96) == ms_ssim_win_size(96, 1280) == 5
    with pytest.raises(ValueError, match="at least 33 px"):
        ms_ssim_win_size(32, 64)
    with pytest.raises(ValueError, match="at least 33 px"):
        ms_ssim(torch.zeros(1, 32, 64, 3), torch.zeros(1, 32, 64, 3))


@pytest.mark.parametrize("size", [(96, 64), (36, 64)])
def test_small_frames_give_finite_scores(size: tuple[int, int]) -> None:
    target = torch.from_numpy(_frames(2, *size, seed=10)).float()
    pred = _noisy(target, 0.1, seed=11)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. pytorch_msssim's "Skipping Gaussian Smoothing"
        ms = ms_ssim_per_frame(pred, target)
    fl = flip_per_frame(pred, target)
    for values in (ms, fl):
        assert values.shape == (2,)
        assert torch.isfinite(values).all() and (values > 0).all() and (values <= 1).all(), values


def test_flip_matches_flip_evaluator() -> None:
    import flip_evaluator

    target = torch.from_numpy(_frames(2, 48, 80, seed=12)).float()
    pred = (target + 0.1).clamp(0, 1)  # a constant brightness offset
    expected = [
        flip_evaluator.evaluate(t.numpy(), p.numpy(), "LDR", applyMagma=False)[1] for p, t in zip(pred, target)
    ]
    got = flip_per_frame(pred, target)
    assert got.dtype == torch.float64 and got.tolist() == pytest.approx(expected, abs=1e-7)
    assert 0.02 < flip(pred, target) < 0.5
    # The default viewing condition is the package's, 67.02 pixels per degree.
    error_map, mean, params = flip_evaluator.evaluate(target[0].numpy(), pred[0].numpy(), "LDR", applyMagma=False)
    assert params["ppd"] == pytest.approx(67.02, abs=0.01)
    assert mean == pytest.approx(float(error_map.mean()), abs=1e-6)
    # uint8 frames in [0, 255] give the FLIP of the same frames scaled to [0, 1].
    pred8, target8 = (pred * 255).round(), (target * 255).round()
    as_uint8 = flip_per_frame(pred8.to(torch.uint8), target8.to(torch.uint8), data_range=255.0)
    assert torch.allclose(as_uint8, flip_per_frame(pred8 / 255, target8 / 255), atol=1e-7)


def test_ms_ssim_loss_term_has_gradients() -> None:
    target = torch.from_numpy(_frames(3, 64, 72, seed=13)).float()
    start = _noisy(target, 0.1, seed=14)
    pred = start.permute(0, 3, 1, 2).clone().requires_grad_(True)  # [B,3,H,W]
    loss = ms_ssim_loss_term(pred, target.permute(0, 3, 1, 2))
    assert loss.ndim == 0 and loss.requires_grad
    assert loss.item() == pytest.approx(1 - ms_ssim(start, target), abs=1e-6)
    loss.backward()
    assert pred.grad is not None and torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0
    # A small step against the gradient lowers the loss.
    with torch.no_grad():
        stepped = pred - 1e-3 * pred.grad / pred.grad.abs().max()
        assert ms_ssim_loss_term(stepped, target.permute(0, 3, 1, 2)) < loss
        identical = ms_ssim_loss_term(target.permute(0, 3, 1, 2), target.permute(0, 3, 1, 2))
    assert identical.item() == pytest.approx(0.0, abs=1e-5)


def test_ms_ssim_and_flip_refuse_mismatched_shapes() -> None:
    a, b = torch.zeros(1, 64, 64, 3), torch.zeros(1, 64, 72, 3)
    for fn in (ms_ssim, ms_ssim_per_frame, flip, flip_per_frame):
        with pytest.raises(ValueError, match=r"\[T,H,W,C\]"):
            fn(a, b)
    with pytest.raises(ValueError, match=r"\[B,C,H,W\]"):
        ms_ssim_loss_term(a.permute(0, 3, 1, 2), b.permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"\[B,C,H,W\]"):
        ms_ssim_loss_term(a[0], a[0])
    with pytest.raises(ValueError, match="RGB"):
        flip(a[..., :1], a[..., :1])


def test_missing_packages_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    frames = torch.zeros(1, 64, 64, 3)
    monkeypatch.setitem(sys.modules, "pytorch_msssim", None)  # makes `import pytorch_msssim` fail
    monkeypatch.setitem(sys.modules, "flip_evaluator", None)
    with pytest.raises(ImportError, match="pip install pytorch-msssim"):
        ms_ssim(frames, frames)
    with pytest.raises(ImportError, match="pip install pytorch-msssim"):
        ms_ssim_loss_term(frames.permute(0, 3, 1, 2), frames.permute(0, 3, 1, 2))
    with pytest.raises(ImportError, match="pip install flip-evaluator"):
        flip(frames, frames)
    assert psnr(frames + 0.1, frames) == pytest.approx(20.0, abs=1e-4)  # the others still work


def test_metric_packages_are_imported_lazily() -> None:
    code = (
        "import sys, nvd.eval.metrics; "
        "loaded = [m for m in ('pytorch_msssim', 'flip_evaluator') if m in sys.modules]; "
        "assert not loaded, loaded"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
