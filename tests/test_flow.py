"""Stage 2, optical flow: accuracy on synthetic ground truth, consistency masks, float16
storage decision, RAFT through the real code path, and the flow store contract."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import nvd.data.flow
from nvd.core.errors import ConfigError, InputError, StoreError, WeightsError
from nvd.core.publish import partial_paths
from nvd.core.versioning import code_version
from nvd.data.flow import FLOW_BACKENDS, FlowConfig, compute_flow, float16_rounding_epe, load_flow
from nvd.data.flow.consistency import consistency_masks, round_trip_valid
from nvd.data.stores import new_array, open_store, provenance, write_store
from nvd.data.weights import WeightsConfig

H, W = 64, 96
PAD = 24  # texture margin around the visible frame, so warps never pull in border fill
MARGIN = 8  # interior = pixels at least this far from the border (flow is extrapolated there)
NO_WEIGHTS = WeightsConfig()


# ---------------------------------------------------------------------------- helpers


def write_frames(path: Path, frames: np.ndarray) -> Path:
    """A frames store (stage 'frames' contract) holding uint8 [T,H,W,3] ``frames``."""
    t, h, w, _ = frames.shape
    with write_store(path, "frames", config={}, code_version="test") as group:
        new_array(group, "frames", frames.shape, np.uint8, (1, h, w, 3), ("t", "y", "x", "c"))[:] = frames
        group.attrs.update(
            {
                "fps": None,
                "source": "synthetic",
                "source_fingerprint": "0" * 64,
                "frame_indices": list(range(t)),
                "source_frame_names": None,
                "source_size": [h, w],
                "size": [h, w],
            }
        )
    return path


def texture(h: int, w: int, seed: int, sigma: float = 2.0) -> np.ndarray:
    """Smooth random RGB texture, float32 [h,w,3] in [0,1]: blurred noise has structure at
    every orientation near the blur scale, which both DIS and Farneback can lock onto."""
    noise = np.random.default_rng(seed).random((h, w, 3)).astype(np.float32)
    t = cv2.GaussianBlur(noise, (0, 0), sigma)
    return (t - t.min()) / (t.max() - t.min())


def to_uint8(img: np.ndarray) -> np.ndarray:
    return (img * 255).clip(0, 255).round().astype(np.uint8)


def affine_sequence(
    motion: np.ndarray, n_frames: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frames where each one is the previous one moved by the 2x3 affine ``motion``.

    Returns (frames uint8 [T,H,W,3], forward float64 [H,W,2], backward float64 [H,W,2]).
    warpAffine puts the content at p onto motion(p), so the true forward flow is
    motion(p) - p and the backward flow at q is motion^-1(q) - q, the same for every pair.
    """
    big = texture(H + 2 * PAD, W + 2 * PAD, seed)
    frames = [big]
    for _ in range(n_frames - 1):
        moved = cv2.warpAffine(
            frames[-1], motion, big.shape[1::-1], flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT
        )
        frames.append(moved)
    crop = np.stack([to_uint8(f[PAD : PAD + H, PAD : PAD + W]) for f in frames])
    ys, xs = np.mgrid[0:H, 0:W].astype(np.float64) + PAD
    points = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    forward = points @ motion.T - points[..., :2]
    backward = points @ cv2.invertAffineTransform(motion).T - points[..., :2]
    return crop, forward, backward


def flow_of(tmp_path: Path, frames: np.ndarray, cfg: FlowConfig) -> dict[str, np.ndarray]:
    """compute_flow on ``frames`` (uint8 [T,H,W,3]) through real stores, read back with load_flow."""
    frames_store = write_frames(tmp_path / "frames.zarr", frames)
    return load_flow(compute_flow(frames_store, tmp_path / "flow.zarr", cfg, NO_WEIGHTS))


def interior_epe(flow: np.ndarray, truth: np.ndarray) -> float:
    """Mean end-point error (px) over pixels at least MARGIN from the border."""
    diff = (flow - truth)[MARGIN:-MARGIN, MARGIN:-MARGIN]
    return float(np.hypot(diff[..., 0], diff[..., 1]).mean())


TRANSLATION = np.float64([[1, 0, 2.3], [0, 1, -1.6]])  # sub-pixel in both axes
# 3 deg rotation + 4 % zoom about the centre: up to 3.8 px.
SIMILARITY = cv2.getRotationMatrix2D((PAD + W / 2, PAD + H / 2), 3.0, 1.04)


# ---------------------------------------------------------------- accuracy (DIS, Farneback)

# Measured mean interior EPE, worst of 2 pairs x 2 directions, texture seeds 0-4
# (OpenCV 5.0, 64x96 frames, after the float16 store round trip):
#   translation: DIS 0.084-0.093 px, Farneback 0.046-0.048 px
#   similarity:  DIS 0.078-0.095 px, Farneback 0.127-0.144 px
# Limits are ~2x the worst measurement: loose enough for other OpenCV builds, tight enough
# to catch a sign flip, swapped (dx, dy), a frame-order mix-up or a resize (each of those
# costs >= 1 px here). DIS must be far below 1 px on a textured translation.
EPE_LIMITS = {
    ("dis", "translation"): 0.2,
    ("dis", "similarity"): 0.2,
    ("farneback", "translation"): 0.1,
    ("farneback", "similarity"): 0.3,
}


@pytest.mark.parametrize("motion_name", ["translation", "similarity"])
@pytest.mark.parametrize("backend", ["dis", "farneback"])
def test_flow_matches_known_motion(tmp_path: Path, backend: str, motion_name: str) -> None:
    motion = {"translation": TRANSLATION, "similarity": SIMILARITY}[motion_name]
    frames, true_fwd, true_bwd = affine_sequence(motion, n_frames=3)
    flow = flow_of(tmp_path, frames, FlowConfig(backend=backend))
    limit = EPE_LIMITS[backend, motion_name]
    for pair in range(2):
        assert interior_epe(flow["forward"][pair], true_fwd) < limit
        assert interior_epe(flow["backward"][pair], true_bwd) < limit


def test_translation_masks_valid_inside_invalid_where_target_leaves(tmp_path: Path) -> None:
    frames, _, _ = affine_sequence(TRANSLATION, n_frames=2)
    flow = flow_of(tmp_path, frames, FlowConfig())
    fwd_valid, bwd_valid = flow["forward_valid"][0], flow["backward_valid"][0]
    interior = np.s_[MARGIN:-MARGIN, MARGIN:-MARGIN]
    assert fwd_valid[interior].mean() > 0.99
    assert bwd_valid[interior].mean() > 0.99
    # dx = +2.3: forward targets of the last two columns (and backward ones of the first
    # two) land outside the frame, whatever the ~0.1 px flow error.
    assert not fwd_valid[:, -2:].any()
    assert not bwd_valid[:, :2].any()
    # dy = -1.6: forward targets of the first row leave through the top.
    assert not fwd_valid[0].any()


def test_occlusion_flagged_by_consistency(tmp_path: Path) -> None:
    """A textured square moves 6 px right over a static textured background.

    The background strip it covers has no match in frame 1 (forward occlusion) and the strip
    it uncovers has none in frame 0 (backward). Measured with these seeds: 77 % of the
    covered strip flagged in the forward mask, 81 % of the uncovered strip in the backward
    mask, 0 % of the far background (over 5 seed pairs: >= 56 % and >= 62 %, always 0 %).
    DIS extrapolates flow into the occluded strip from either side, so only a majority is
    flagged, never all of it.
    """
    h, w, side, move = 96, 128, 40, 6
    background = to_uint8(texture(h, w, seed=10))
    square = to_uint8(texture(side, side, seed=100, sigma=1.5))
    y0, x0 = (h - side) // 2, w // 4
    frames = np.stack([background, background])
    frames[0, y0 : y0 + side, x0 : x0 + side] = square
    frames[1, y0 : y0 + side, x0 + move : x0 + move + side] = square
    flow = flow_of(tmp_path, frames, FlowConfig())

    rows = np.s_[y0 + 3 : y0 + side - 3]  # away from the square's top/bottom edges
    covered = np.zeros((h, w), bool)
    covered[rows, x0 + side + 1 : x0 + side + move - 1] = True
    uncovered = np.zeros((h, w), bool)
    uncovered[rows, x0 + 1 : x0 + move - 1] = True
    far = np.zeros((h, w), bool)
    far[MARGIN:-MARGIN, MARGIN:-MARGIN] = True
    far[y0 - MARGIN : y0 + side + MARGIN, x0 - MARGIN : x0 + side + move + MARGIN] = False

    assert (~flow["forward_valid"][0][covered]).mean() > 0.5
    assert (~flow["backward_valid"][0][uncovered]).mean() > 0.5
    assert flow["forward_valid"][0][far].mean() > 0.99
    assert flow["backward_valid"][0][far].mean() > 0.99


# ------------------------------------------------------------ consistency on built flows


def constant_flow(dx: float, dy: float, h: int = 20, w: int = 30) -> np.ndarray:
    return np.broadcast_to(np.float32([dx, dy]), (h, w, 2)).copy()


def target_inside(flow: np.ndarray) -> np.ndarray:
    """bool [H,W]: p + flow(p) lies in [0, W-1] x [0, H-1]."""
    h, w = flow.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx, ty = xs + flow[..., 0], ys + flow[..., 1]
    return (tx >= 0) & (tx <= w - 1) & (ty >= 0) & (ty <= h - 1)


@pytest.mark.parametrize("dx, dy", [(3.0, -2.0), (0.25, 1.75), (-4.5, 0.0), (0.0, 0.0)])
def test_exact_inverse_flows_valid_except_leaving_frame(dx: float, dy: float) -> None:
    fwd, bwd = constant_flow(dx, dy), constant_flow(-dx, -dy)
    fwd_valid, bwd_valid = consistency_masks(fwd, bwd, threshold=1.0)
    np.testing.assert_array_equal(fwd_valid, target_inside(fwd))
    np.testing.assert_array_equal(bwd_valid, target_inside(bwd))


def test_affine_flow_and_its_inverse_are_consistent() -> None:
    """Non-constant flows: the backward flow must be read at p + f(p), not at p."""
    h, w = 48, 64
    motion = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 1.1)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    points = np.stack([xs, ys, np.ones_like(xs)], axis=-1)
    fwd = (points @ motion.T - points[..., :2]).astype(np.float32)
    bwd = (points @ cv2.invertAffineTransform(motion).T - points[..., :2]).astype(np.float32)
    # Bilinear interpolation of an affine field is exact, so a tight threshold must pass.
    fwd_valid, bwd_valid = consistency_masks(fwd, bwd, threshold=0.05)
    np.testing.assert_array_equal(fwd_valid, target_inside(fwd))
    np.testing.assert_array_equal(bwd_valid, target_inside(bwd))
    # The test discriminates: reading bwd at p instead of p + f(p) is off by > 1 px here.
    assert np.hypot(*(fwd + bwd).reshape(-1, 2).T).max() > 1.0


def test_backward_flow_is_looked_up_at_the_target() -> None:
    """Integer forward flow of +5 px in x, backward flow correct only from column 20 on."""
    fwd = constant_flow(5.0, 0.0)
    bwd = constant_flow(-5.0, 0.0)
    bwd[:, :20] = (3.0, 0.0)
    valid = round_trip_valid(fwd, bwd, 1.0)
    xs = np.arange(fwd.shape[1])
    expected_cols = (xs + 5 >= 20) & (xs + 5 <= fwd.shape[1] - 1)
    np.testing.assert_array_equal(valid, np.broadcast_to(expected_cols, valid.shape))


def test_backward_flow_is_interpolated_bilinearly() -> None:
    """Half-pixel targets between columns whose backward flows are -0.5 and +0.3.

    Bilinear: -0.1, residual 0.4 < 0.5 everywhere. Nearest-neighbour would give residual
    0 or 0.8 and flag half the frame.
    """
    fwd = constant_flow(0.5, 0.0)
    bwd = constant_flow(-0.5, 0.0)
    bwd[:, 1::2, 0] = 0.3
    valid = round_trip_valid(fwd, bwd, 0.5)
    assert valid[:, :-1].all()
    assert not valid[:, -1].any()  # target x = W - 0.5 is outside


@pytest.mark.parametrize("disagreement", [(2.0, 0.0), (0.0, -2.0), (1.5, 1.5)])
def test_flows_disagreeing_by_2px_are_invalid(disagreement: tuple[float, float]) -> None:
    fwd = constant_flow(1.0, 1.0)
    bwd = constant_flow(-1.0 + disagreement[0], -1.0 + disagreement[1])
    fwd_valid, bwd_valid = consistency_masks(fwd, bwd, threshold=1.0)
    assert not fwd_valid.any()
    assert not bwd_valid.any()


@pytest.mark.parametrize(
    "residual, threshold, valid",
    [
        ((0.99, 0.0), 1.0, True),
        ((1.01, 0.0), 1.0, False),
        ((0.0, -0.99), 1.0, True),
        ((0.7, 0.7), 1.0, True),  # |r| = 0.990: the test is on the Euclidean norm ...
        ((0.72, 0.72), 1.0, False),  # ... |r| = 1.018, although each component is < 1
        ((1.5, 0.0), 2.0, True),
        ((1.5, 0.0), 1.4, False),
    ],
)
def test_threshold_boundary(residual: tuple[float, float], threshold: float, valid: bool) -> None:
    fwd = constant_flow(2.0, 1.0)
    bwd = constant_flow(-2.0 + residual[0], -1.0 + residual[1])
    inside = target_inside(fwd)
    mask = round_trip_valid(fwd, bwd, threshold)
    assert mask[inside].all() if valid else not mask.any()


def test_consistency_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match=r"\[H,W,2\]"):
        consistency_masks(constant_flow(0, 0), constant_flow(0, 0, h=21), 1.0)


# ------------------------------------------------------------------- float16 decision


FlowPairs = list[tuple[np.ndarray, np.ndarray]]


def fake_backend(flows: FlowPairs) -> Callable[[Any], Iterator[tuple[np.ndarray, np.ndarray]]]:
    """A stand-in for an OpenCV backend that yields fixed (forward, backward) flows."""

    def pair_flows(frames: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        assert frames.shape[0] - 1 == len(flows)
        return iter(flows)

    return pair_flows


def random_flows(n_pairs: int, h: int, w: int, scale: float, seed: int = 0) -> FlowPairs:
    """n_pairs (forward, backward) float32 [h,w,2] flows uniform in [-scale, scale]."""
    rng = np.random.default_rng(seed)
    flows = rng.uniform(-scale, scale, (n_pairs, 2, h, w, 2)).astype(np.float32)
    return [(fwd, bwd) for fwd, bwd in flows]


def run_fake(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flows: FlowPairs, cfg: FlowConfig = FlowConfig()
) -> Path:
    """compute_flow with the DIS backend replaced by ``fake_backend(flows)``."""
    monkeypatch.setattr(nvd.data.flow, "dis_flows", fake_backend(flows))
    h, w = flows[0][0].shape[:2]
    frames = np.zeros((len(flows) + 1, h, w, 3), np.uint8)
    return compute_flow(write_frames(tmp_path / "frames.zarr", frames), tmp_path / "flow.zarr", cfg, NO_WEIGHTS)


def round_trip_epe(stored: np.ndarray, original: np.ndarray) -> float:
    return float(np.hypot(*(stored - original).reshape(-1, 2).T).max())


def test_small_flow_stored_as_float16_within_tolerance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # |v| < 8 px: float16 spacing there is <= 2^-8, so rounding moves a vector < 0.003 px.
    flows = random_flows(3, 20, 30, scale=8.0)
    group = open_store(run_fake(tmp_path, monkeypatch, flows), "flow")
    assert group["forward"].dtype == np.float16 and group["backward"].dtype == np.float16
    assert group.attrs["dtype"] == "float16"
    loaded = load_flow(tmp_path / "flow.zarr")
    for i, (fwd, bwd) in enumerate(flows):
        assert round_trip_epe(loaded["forward"][i], fwd) < 0.01
        assert round_trip_epe(loaded["backward"][i], bwd) < 0.01
    measured = max(
        round_trip_epe(loaded[name][i], flows[i][k])
        for i in range(3)
        for k, name in enumerate(["forward", "backward"])
    )
    assert group.attrs["float16_max_epe"] == pytest.approx(measured, rel=1e-5)
    assert loaded["forward"].dtype == np.float32


def test_large_flow_stored_as_float32_exactly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # |v| up to 1000 px: float16 spacing is 0.5 px there, rounding errors reach ~0.35 px.
    flows = random_flows(2, 20, 30, scale=8.0)
    # One pair with huge motion, after float16 writes have begun, decides for the whole video.
    flows[1] = (flows[1][0], flows[1][1] + np.float32(990.3))
    group = open_store(run_fake(tmp_path, monkeypatch, flows), "flow")
    assert group["forward"].dtype == np.float32 and group.attrs["dtype"] == "float32"
    assert group["forward"].metadata.dimension_names == ("pair", "y", "x", "uv")
    assert group.attrs["float16_max_epe"] > 0.1
    # The float16 arrays written before the large pair came along were replaced, no leftovers.
    assert sorted(p.name for p in (tmp_path / "flow.zarr").iterdir()) == [
        "backward", "backward_valid", "forward", "forward_valid", "zarr.json"
    ]
    loaded = load_flow(tmp_path / "flow.zarr")
    for i, (fwd, bwd) in enumerate(flows):
        np.testing.assert_array_equal(loaded["forward"][i], fwd)
        np.testing.assert_array_equal(loaded["backward"][i], bwd)


def test_float16_decision_is_strict_at_the_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    flows = random_flows(1, 20, 30, scale=8.0)
    epe = max(float16_rounding_epe(f) for f in flows[0])
    at_limit = open_store(run_fake(tmp_path / "a", monkeypatch, flows, FlowConfig(max_float16_epe=epe)))
    above = open_store(run_fake(tmp_path / "b", monkeypatch, flows, FlowConfig(max_float16_epe=epe * 1.001)))
    assert at_limit.attrs["dtype"] == "float32"
    assert above.attrs["dtype"] == "float16"


def test_failure_mid_video_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A backend error after some pairs, or an error in the writer thread, propagates and
    removes the partial store together with its staging files."""
    good = random_flows(1, 20, 30, scale=1.0)[0]

    def failing_backend(frames: Any) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        yield good
        yield good
        raise RuntimeError("backend broke")

    frames = write_frames(tmp_path / "frames.zarr", np.zeros((6, 20, 30, 3), np.uint8))
    monkeypatch.setattr(nvd.data.flow, "dis_flows", failing_backend)
    with pytest.raises(RuntimeError, match="backend broke"):
        compute_flow(frames, tmp_path / "flow.zarr", FlowConfig(), NO_WEIGHTS)
    monkeypatch.setattr(nvd.data.flow, "dis_flows", fake_backend([good, good, (good[0], good[1][:-1])] + [good] * 2))
    with pytest.raises(ValueError, match=r"\[H,W,2\]"):  # raised in the writer thread
        compute_flow(frames, tmp_path / "flow.zarr", FlowConfig(), NO_WEIGHTS)
    assert not (tmp_path / "flow.zarr").exists()
    assert partial_paths(tmp_path / "flow.zarr") == []


def test_float16_rounding_epe() -> None:
    assert float16_rounding_epe(np.float32([[0.5, -2.0], [1024.0, 3.0]])) == 0.0  # representable
    assert float16_rounding_epe(np.float32([[1000.25, 0.0]])) == pytest.approx(0.25)  # spacing 0.5
    assert float16_rounding_epe(np.float32([[7e4, 0.0]])) == np.inf  # beyond float16's range
    assert float16_rounding_epe(np.zeros((0, 2), np.float32)) == 0.0


# ----------------------------------------------------------------------------- RAFT


@pytest.fixture(scope="module")
def raft_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised RAFT-large state dict: the real loading path, no download."""
    import torch
    from torchvision.models.optical_flow import raft_large

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "raft_random.pth"
    torch.save(raft_large(weights=None, progress=False).state_dict(), path)
    return path


@pytest.fixture(scope="module")
def tiny_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 frames of 43x61: neither side a multiple of 8, both below RAFT's 128 px minimum."""
    frames = to_uint8(np.stack([texture(43, 61, seed) for seed in range(3)]))
    return write_frames(tmp_path_factory.mktemp("raft") / "frames.zarr", frames)


def raft_cfg(**overrides: Any) -> FlowConfig:
    """RAFT on CPU with 2 refinement steps: the full code path at a fraction of the cost."""
    return FlowConfig(backend="raft", raft_iterations=2, device="cpu", **overrides)


def test_raft_real_code_path(tmp_path: Path, raft_weights: Path, tiny_frames: Path) -> None:
    weights = WeightsConfig(raft=str(raft_weights))
    out = compute_flow(tiny_frames, tmp_path / "flow.zarr", raft_cfg(batch_size=4), weights)
    group = open_store(out, "flow")
    assert group.attrs["backend"] == "raft"
    assert provenance(group)["config"]["weights"] == {"raft": str(raft_weights)}
    flow = load_flow(out)
    for name in ("forward", "backward"):
        assert flow[name].shape == (2, 43, 61, 2)
        assert np.isfinite(flow[name]).all()
        assert flow[f"{name}_valid"].shape == (2, 43, 61)
        assert flow[f"{name}_valid"].dtype == bool
    assert group.attrs["dtype"] == group["forward"].dtype.name  # random weights: either may fit

    # Pairs and directions keep their places whatever the batching: one pair per call must
    # give the same flows as both pairs (4 image pairs) in one call.
    single = load_flow(compute_flow(tiny_frames, tmp_path / "single.zarr", raft_cfg(batch_size=1), weights))
    tol = 1e-3 + (group.attrs["float16_max_epe"] if group.attrs["dtype"] == "float16" else 0)
    for name in ("forward", "backward"):
        np.testing.assert_allclose(single[name], flow[name], atol=tol)


def test_raft_flow_matches_direct_model_call(raft_weights: Path, tiny_frames: Path) -> None:
    """raft_flows pads, pairs (i -> i+1 forward, i+1 -> i backward) and crops like a hand call."""
    import torch
    import torch.nn.functional as F

    from nvd.data.flow.raft import load_raft, raft_flows

    device = torch.device("cpu")
    model = load_raft(raft_weights, device)
    frames = open_store(tiny_frames, "frames")["frames"][:]
    pairs = list(raft_flows(frames, model, device, iterations=2, batch_size=2))
    assert len(pairs) == 2

    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 127.5 - 1
    x = F.pad(x, (0, 128 - 61, 0, 128 - 43), mode="replicate")
    with torch.inference_mode():
        fwd = model(x[1:2], x[2:3], num_flow_updates=2)[-1][0, :, :43, :61].permute(1, 2, 0).numpy()
        bwd = model(x[2:3], x[1:2], num_flow_updates=2)[-1][0, :, :43, :61].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(pairs[1][0], fwd, atol=1e-4)
    np.testing.assert_allclose(pairs[1][1], bwd, atol=1e-4)


@pytest.mark.parametrize(
    "h, w, padded", [(43, 61, (128, 128)), (130, 141, (136, 144)), (128, 256, (128, 256))]
)
def test_raft_input_padding(h: int, w: int, padded: tuple[int, int]) -> None:
    import torch

    from nvd.data.flow.raft import _prepare

    frames = np.random.default_rng(0).integers(0, 256, (2, h, w, 3), dtype=np.uint8)
    x = _prepare(frames, torch.device("cpu"))
    assert tuple(x.shape) == (2, 3, *padded)
    assert x.min() >= -1 and x.max() <= 1
    # The original pixels stay where they were; the padding repeats the last row/column.
    x = x.numpy()
    np.testing.assert_allclose(x[:, :, :h, :w].transpose(0, 2, 3, 1), frames / 127.5 - 1, atol=1e-6)
    np.testing.assert_array_equal(x[:, :, h:, :], np.broadcast_to(x[:, :, h - 1 : h, :], x[:, :, h:, :].shape))
    np.testing.assert_array_equal(x[:, :, :, w:], np.broadcast_to(x[:, :, :, w - 1 : w], x[:, :, :, w:].shape))


def test_raft_state_dict_of_another_model(tmp_path: Path, tiny_frames: Path) -> None:
    import torch
    from torchvision.models.optical_flow import raft_small

    wrong = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None, progress=False).state_dict(), wrong)
    with pytest.raises(WeightsError, match=r"weights\.raft") as info:
        compute_flow(tiny_frames, tmp_path / "flow.zarr", raft_cfg(), WeightsConfig(raft=str(wrong)))
    assert str(wrong) in str(info.value)
    assert not (tmp_path / "flow.zarr").exists()


def test_raft_file_that_is_not_a_state_dict(tmp_path: Path, tiny_frames: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match=r"weights\.raft"):
        compute_flow(tiny_frames, tmp_path / "flow.zarr", raft_cfg(), WeightsConfig(raft=str(junk)))


def test_raft_weights_unset_or_missing_fail_before_reading_frames(tmp_path: Path) -> None:
    missing_frames = tmp_path / "no_frames.zarr"  # would be a StoreError if it were read first
    with pytest.raises(WeightsError, match=r"'weights\.raft' is not set"):
        compute_flow(missing_frames, tmp_path / "flow.zarr", raft_cfg(), NO_WEIGHTS)
    with pytest.raises(WeightsError, match=r"weights\.raft.*does not exist"):
        compute_flow(missing_frames, tmp_path / "o.zarr", raft_cfg(), WeightsConfig(raft=str(tmp_path / "x.pth")))


# ----------------------------------------------------------------- store contract, errors


def test_store_contract(tmp_path: Path) -> None:
    frames, _, _ = affine_sequence(TRANSLATION, n_frames=4)
    cfg = FlowConfig(backend="dis", consistency_threshold=0.75)
    frames_store = write_frames(tmp_path / "frames.zarr", frames)
    out = compute_flow(frames_store, tmp_path / "flow.zarr", cfg, WeightsConfig(raft="/ignored.pth"))
    assert out == tmp_path / "flow.zarr"
    group = open_store(out, "flow")
    assert sorted(group.array_keys()) == ["backward", "backward_valid", "forward", "forward_valid"]
    for name in ("forward", "backward"):
        array = group[name]
        assert array.shape == (3, H, W, 2)
        assert array.chunks == (1, H, W, 2)
        assert array.metadata.dimension_names == ("pair", "y", "x", "uv")
        valid = group[f"{name}_valid"]
        assert valid.shape == (3, H, W) and valid.dtype == bool
        assert valid.chunks == (1, H, W)
        assert valid.metadata.dimension_names == ("pair", "y", "x")
    assert group.attrs["backend"] == "dis"
    assert group.attrs["dtype"] == group["forward"].dtype.name == "float16"  # ~2 px motions
    assert 0 < group.attrs["float16_max_epe"] < cfg.max_float16_epe
    prov = provenance(group)
    assert prov["stage"] == "flow"
    assert prov["config"] == {"flow": asdict(cfg), "weights": {}}  # weights only matter for RAFT
    assert prov["code_version"] == code_version("flow")
    # Staging files and partial stores are gone.
    assert sorted(p.name for p in out.iterdir()) == sorted([*group.array_keys(), "zarr.json"])
    assert partial_paths(out) == []


def test_unknown_backend(tmp_path: Path) -> None:
    cfg = FlowConfig(backend="rafts")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"flow\.backend.*'rafts'.*raft, dis, farneback"):
        compute_flow(tmp_path / "f.zarr", tmp_path / "o.zarr", cfg, NO_WEIGHTS)
    assert FLOW_BACKENDS == ("raft", "dis", "farneback")


@pytest.mark.parametrize(
    "field, value",
    [("consistency_threshold", 0.0), ("max_float16_epe", -1.0), ("raft_iterations", 0), ("batch_size", 0)],
)
def test_bad_config_values(tmp_path: Path, field: str, value: float) -> None:
    with pytest.raises(ConfigError, match=rf"flow\.{field}"):
        compute_flow(tmp_path / "f.zarr", tmp_path / "o.zarr", FlowConfig(**{field: value}), NO_WEIGHTS)


def test_unusable_frames_stores(tmp_path: Path) -> None:
    one = write_frames(tmp_path / "one.zarr", np.zeros((1, 8, 8, 3), np.uint8))
    with pytest.raises(InputError, match="at least 2 frames"):
        compute_flow(one, tmp_path / "o.zarr", FlowConfig(), NO_WEIGHTS)
    with pytest.raises(StoreError, match="does not exist"):
        compute_flow(tmp_path / "missing.zarr", tmp_path / "o.zarr", FlowConfig(), NO_WEIGHTS)
    with write_store(tmp_path / "other.zarr", "masks", config={}, code_version="test"):
        pass
    with pytest.raises(StoreError, match="expected a 'frames' store"):
        compute_flow(tmp_path / "other.zarr", tmp_path / "o.zarr", FlowConfig(), NO_WEIGHTS)
    assert not (tmp_path / "o.zarr").exists()


def test_import_is_cheap() -> None:
    """``import nvd.data.flow`` must not pull in torch (the OpenCV backends do not need it)."""
    import subprocess
    import sys

    code = "import sys, nvd.data.flow; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize("clip", ["orbit", "duo"])
def test_dis_recovers_demo_scene_ground_truth(clip, tmp_path):
    """DIS on the synthetic demo scenes against their exact flow (128x96, 24 frames).

    Measured mean end-point error on consistent pixels: 0.21 px (orbit), 0.35 px (duo, two
    crossing objects). The bound, 0.5 px, is the accuracy the decomposition's flow losses
    need (they compare uv at matched points; half a pixel is within one texel of the atlas)
    with ~1.5x margin on the harder scene. The consistency mask must keep >= 85% of pixels
    and select pixels no worse than the average.
    """
    from nvd.data.demo import SYNTHETIC_CLIPS, render_scene

    scene = render_scene(SYNTHETIC_CLIPS[clip])
    t, h, w, _ = scene.frames.shape
    with write_store(tmp_path / "frames.zarr", "frames", {}, "test") as group:
        new_array(group, "frames", scene.frames.shape, "uint8", (1, h, w, 3), ("t", "y", "x", "c"))[:] = scene.frames
    compute_flow(tmp_path / "frames.zarr", tmp_path / "flow.zarr", FlowConfig(backend="dis"), WeightsConfig())
    flow = load_flow(tmp_path / "flow.zarr")
    for direction, truth in (("forward", scene.flow_forward), ("backward", scene.flow_backward)):
        epe = np.linalg.norm(flow[direction] - truth, axis=-1)
        valid = flow[f"{direction}_valid"]
        assert valid.mean() >= 0.85
        assert epe[valid].mean() < 0.5
        assert epe[valid].mean() <= epe.mean()
