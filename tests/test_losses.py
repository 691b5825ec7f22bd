"""Loss functions of the decomposition: hand-computed values, edge cases, gradients, schedules."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import fields

import pytest
import torch
from torch import Tensor

from nvd.models.hashing_nvd.losses import (
    LossWeights,
    active_weights,
    alpha_bootstrapping_loss,
    alpha_regularization_loss,
    combine,
    flow_alpha_loss,
    gradient_loss,
    mapping_jacobian,
    optical_flow_loss,
    residual_consistency_loss,
    residual_regularization_loss,
    rgb_loss,
    rigidity_loss,
    sparsity_loss,
)
from nvd.models.hashing_nvd.model import hierarchical_alpha, hierarchical_log_alpha

SQRT2 = math.sqrt(2.0)


def t(values, **kwargs) -> Tensor:
    return torch.tensor(values, dtype=torch.float64, **kwargs)


def close(value: Tensor, expected: float, tol: float = 1e-9) -> bool:
    return abs(value.item() - expected) <= tol * max(1.0, abs(expected))


# ---- rgb, gradient -------------------------------------------------------------------------

def test_rgb_loss_is_per_element_mse():
    assert close(rgb_loss(t([[0.0, 0.0, 0.0]]), t([[1.0, 1.0, 1.0]])), 1.0)
    # Errors 0 and 1 on two pixels: mean over 6 elements of 0,0,0,1,1,1 = 0.5.
    two = t([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    assert close(rgb_loss(two, torch.zeros(2, 3, dtype=torch.float64)), 0.5)


def test_gradient_loss_compares_finite_differences():
    zeros = torch.zeros(1, 3, dtype=torch.float64)
    ones = torch.ones(1, 3, dtype=torch.float64)
    # Flat rendering, ground truth rising by 1 in x only: x error 1 per channel, y error 0.
    assert close(gradient_loss(zeros, zeros, zeros, zeros, ones, zeros), 1.0)
    # Both directions wrong by 1: the directions add.
    assert close(gradient_loss(zeros, zeros, zeros, zeros, ones, ones), 2.0)
    # A constant colour offset has the right differences: no gradient loss.
    target = t([[0.1, 0.2, 0.3]])
    target_dx, target_dy = target + 0.5, target - 0.25
    shifted = gradient_loss(target + 0.3, target_dx + 0.3, target_dy + 0.3, target, target_dx, target_dy)
    assert close(shifted, 0.0)


# ---- sparsity ------------------------------------------------------------------------------

def test_sparsity_loss_hand_value():
    # One foreground layer at alpha 0.25 with colour (1, 0.5, 0):
    # (1 - 0.25)^2 * (1 + 0.25 + 0) = 0.5625 * 1.25 = 0.703125.
    rgb = t([[[1.0, 0.5, 0.0]]])
    alpha = t([[0.25, 0.75]])
    assert close(sparsity_loss(rgb, alpha), 0.703125)
    # A fully visible foreground (alpha 1) costs nothing; the mean runs over N and layers:
    # two pixels, one at 0.703125 and one at 0 -> 0.3515625.
    rgb2 = t([[[1.0, 0.5, 0.0]], [[1.0, 1.0, 1.0]]])
    alpha2 = t([[0.25, 0.75], [1.0, 0.0]])
    assert close(sparsity_loss(rgb2, alpha2), 0.3515625)


def test_sparsity_loss_without_objects_is_zero_and_differentiable():
    alpha = torch.ones(4, 1, dtype=torch.float64, requires_grad=True)
    rgb = torch.rand(4, 0, 3, dtype=torch.float64, requires_grad=True)
    loss = sparsity_loss(rgb, alpha)
    assert loss.item() == 0.0
    loss.backward()


# ---- alpha bootstrapping and regularisation ------------------------------------------------

def logs(values) -> Tensor:
    """log of alpha rows given as probabilities (what the model's log_alpha holds)."""
    return t(values).log()


def test_alpha_bootstrapping_two_layers():
    # Object mask 1 -> targets (1, 0). alpha (0.5, 0.5): each BCE is log 2.
    assert close(alpha_bootstrapping_loss(logs([[0.5, 0.5]]), t([[1.0]])), math.log(2.0))
    # alpha (0.9, 0.1): -log 0.9 for the object and -log(1 - 0.1) for the background.
    assert close(alpha_bootstrapping_loss(logs([[0.9, 0.1]]), t([[1.0]])), -math.log(0.9))
    # Mask 0 -> targets (0, 1): -log(1 - 0.9) and -log 0.1, mean = -log 0.1.
    assert close(alpha_bootstrapping_loss(logs([[0.9, 0.1]]), t([[0.0]])), -math.log(0.1))


def test_alpha_bootstrapping_background_is_one_minus_max_mask():
    alpha = logs([[0.8, 0.1, 0.1], [0.1, 0.1, 0.8]])
    masks = t([[1.0, 0.0], [0.0, 0.0]])
    # Targets (1,0,0) and (0,0,1): row 1 -> -log .8, -log .9, -log .9; row 2 -> -log .9 twice, -log .8.
    expected = (-2 * math.log(0.8) - 4 * math.log(0.9)) / 6
    assert close(alpha_bootstrapping_loss(alpha, masks), expected)


def test_alpha_bootstrapping_background_only_targets_ones():
    alpha = logs([[0.5], [0.25]])
    masks = torch.zeros(2, 0, dtype=torch.float64)
    assert close(alpha_bootstrapping_loss(alpha, masks), (math.log(2.0) - math.log(0.25)) / 2)


def test_alpha_bootstrapping_equals_bce_of_the_model_alpha():
    torch.manual_seed(0)
    logits = torch.randn(64, 2, dtype=torch.float64) * 3
    masks = torch.zeros(64, 2, dtype=torch.float64)
    masks[torch.arange(64), torch.randint(0, 2, (64,))] = (torch.rand(64) > 0.3).double()  # at most one object each
    target = torch.cat([masks, 1 - masks.amax(1, keepdim=True)], dim=1)
    expected = torch.nn.functional.binary_cross_entropy(hierarchical_alpha(logits), target)
    assert close(alpha_bootstrapping_loss(hierarchical_log_alpha(logits), masks), expected.item(), tol=1e-9)


@pytest.mark.parametrize("logit", [-40.0, 40.0])
def test_alpha_bootstrapping_turns_a_saturated_wrong_layer_around(logit):
    # A layer confidently wrong by a logit of 40: BCE on clamped alpha has no gradient there
    # (the clamp is flat); this loss grows with the logit and pulls it back at full strength.
    logits = t([[logit]], requires_grad=True)
    mask = t([[1.0 if logit < 0 else 0.0]])
    loss = alpha_bootstrapping_loss(hierarchical_log_alpha(logits), mask)
    loss.backward()
    assert close(loss, 40.0, tol=1e-6)
    assert close(logits.grad.abs(), 1.0, tol=1e-6) and torch.sign(logits.grad).item() == math.copysign(1.0, logit)
    clamped = t([[logit]], requires_grad=True)
    target = t([[mask.item(), 1 - mask.item()]])
    torch.nn.functional.binary_cross_entropy(hierarchical_alpha(clamped), target).backward()
    assert clamped.grad.item() == 0.0


def test_alpha_regularization():
    assert close(alpha_regularization_loss(t([[1.0, 0.0], [0.0, 1.0]])), 0.0)
    assert close(alpha_regularization_loss(t([[0.5, 0.5]])), math.log(2.0))
    # Mean over pixels: one certain pixel (0) and one uniform over 4 layers (log 4) -> log 2.
    assert close(alpha_regularization_loss(t([[0.0, 0.0, 1.0, 0.0], [0.25] * 4])), math.log(2.0))


# ---- flow ----------------------------------------------------------------------------------

def test_flow_alpha_loss():
    alpha_p = t([[1.0, 0.0], [0.5, 0.5]])
    alpha_q = t([[0.0, 1.0], [0.5, 0.5]])
    # L1 summed over layers: 2 for the first point, 0 for the second.
    assert close(flow_alpha_loss(alpha_p, alpha_q, torch.tensor([True, True])), 1.0)
    assert close(flow_alpha_loss(alpha_p, alpha_q, torch.tensor([True, False])), 2.0)
    assert close(flow_alpha_loss(alpha_p, alpha_q, torch.tensor([False, True])), 0.0)


def test_flow_alpha_loss_ignores_invalid_points_values():
    alpha_p = t([[1.0, 0.0], [0.5, 0.5]])
    alpha_q = t([[float("nan"), float("inf")], [0.25, 0.75]])
    assert close(flow_alpha_loss(alpha_p, alpha_q, torch.tensor([False, True])), 0.5)


def test_optical_flow_loss_one_pixel_shift():
    # rez 2: one pixel is 2/2 = 1 normalised unit, i.e. 1 uv unit at scale 1.
    uv_p = t([[[0.5, 0.0]]])
    uv_q = t([[[-0.5, 0.0]]])
    loss = optical_flow_loss(uv_p, uv_q, t([[1.0]]), torch.tensor([True]), t([1.0]), 2)
    assert close(loss, 1.0)


def test_optical_flow_loss_scales_and_alpha_weighting():
    # rez 100, scale 0.5: one pixel is 0.5 * 2/100 = 0.01 uv. A (0.03, 0.04) uv move is 0.05 uv = 5 px.
    uv_p = t([[[0.1, 0.1]]])
    uv_q = t([[[0.13, 0.14]]])
    loss = optical_flow_loss(uv_p, uv_q, t([[1.0]]), torch.tensor([True]), t([0.5]), 100)
    assert close(loss, 5.0, tol=1e-9)
    # Two layers at scales 0.9 and 0.6, rez 768: layer 0 moves 2 px, layer 1 moves 3 px,
    # alpha (0.25, 0.75): 0.25 * 2 + 0.75 * 3 = 2.75.
    px0, px1 = 0.9 * 2 / 768, 0.6 * 2 / 768
    uv_p = torch.zeros(1, 2, 2, dtype=torch.float64)
    uv_q = t([[[2 * px0, 0.0], [0.0, -3 * px1]]])
    loss = optical_flow_loss(uv_p, uv_q, t([[0.25, 0.75]]), torch.tensor([True]), t([0.9, 0.6]), 768)
    assert close(loss, 2.75, tol=1e-9)


def test_optical_flow_loss_averages_over_valid_points_only():
    uv_p = torch.zeros(3, 1, 2, dtype=torch.float64)
    # 1 px, 3 px and a garbage point that is not valid.
    uv_q = t([[[1.0, 0.0]], [[0.0, 3.0]], [[float("nan"), 0.0]]])
    alpha = torch.ones(3, 1, dtype=torch.float64)
    loss = optical_flow_loss(uv_p, uv_q, alpha, torch.tensor([True, True, False]), t([1.0]), 2)
    assert close(loss, 2.0)


def test_flow_losses_without_valid_points_are_zero_and_differentiable():
    uv_p = torch.rand(5, 2, 2, dtype=torch.float64, requires_grad=True)
    uv_q = torch.rand(5, 2, 2, dtype=torch.float64, requires_grad=True)
    alpha_p = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    alpha_q = torch.rand(5, 2, dtype=torch.float64, requires_grad=True)
    none = torch.zeros(5, dtype=torch.bool)
    flow = optical_flow_loss(uv_p, uv_q, alpha_p, none, t([0.9, 0.6]), 64)
    flow_alpha = flow_alpha_loss(alpha_p, alpha_q, none)
    assert flow.item() == 0.0 and flow_alpha.item() == 0.0
    (flow + flow_alpha).backward()
    for tensor in (uv_p, uv_q, alpha_p, alpha_q):
        assert tensor.grad is not None and torch.all(tensor.grad == 0)


# ---- rigidity ------------------------------------------------------------------------------

def linear_mapping(jac: Tensor, scales: Tensor, step_px: float, rez: int,
                   n: int = 3) -> tuple[Tensor, Tensor, Tensor]:
    """uv at p, p + (d, 0), p + (0, d) for uv = scale_k * J_k x + c: jac [K, 2, 2], scales [K]."""
    k = jac.shape[0]
    uv_p = torch.rand(n, k, 2, dtype=torch.float64) * 0.5
    h = (scales * 2 * step_px / rez).view(1, k, 1)
    uv_dx = uv_p + h * jac[:, :, 0]
    uv_dy = uv_p + h * jac[:, :, 1]
    return uv_p, uv_dx, uv_dy


def rotation(theta: float) -> Tensor:
    c, s = math.cos(theta), math.sin(theta)
    return t([[c, -s], [s, c]])


def rigidity_of(jac: Tensor, eps: float = 1e-3) -> float:
    scales = t([0.9, 0.6])
    uv = linear_mapping(jac.expand(2, 2, 2), scales, 1.0, 768)
    return rigidity_loss(*uv, 1.0, scales, 768, eps=eps).item()


def test_mapping_jacobian_layout():
    # step 1 px, rez 2, scale 1: the normalising step is 1, so J is the raw difference.
    uv_p = t([[[0.0, 0.0]]])
    uv_dx = t([[[1.0, 3.0]]])  # d uv / d x = (1, 3): first column
    uv_dy = t([[[2.0, 4.0]]])  # d uv / d y = (2, 4): second column
    jac = mapping_jacobian(uv_p, uv_dx, uv_dy, 1.0, t([1.0]), 2)
    assert torch.equal(jac, t([[[[1.0, 2.0], [3.0, 4.0]]]]))


@pytest.mark.parametrize(("step_px", "rez"), [(1.0, 768), (100.0, 768), (3.0, 50)])
def test_initial_mapping_has_identity_jacobian(step_px: float, rez: int):
    scales = t([0.9, 0.9, 0.6])
    uv = linear_mapping(torch.eye(2, dtype=torch.float64).expand(3, 2, 2), scales, step_px, rez)
    jac = mapping_jacobian(*uv, step_px, scales, rez)
    assert torch.allclose(jac, torch.eye(2, dtype=torch.float64).expand_as(jac), atol=1e-9)


def test_rigidity_identity_and_rotation():
    eps = 1e-3
    expected = SQRT2 + SQRT2 / (1 + eps)
    assert math.isclose(rigidity_of(torch.eye(2, dtype=torch.float64)), expected, rel_tol=1e-9)
    assert math.isclose(rigidity_of(rotation(0.7)), expected, rel_tol=1e-9)
    assert math.isclose(rigidity_of(rotation(-2.0)), expected, rel_tol=1e-9)


def test_rigidity_penalises_scaling_and_collapse():
    eps = 1e-3
    rigid = SQRT2 + SQRT2 / (1 + eps)
    # 2x isotropic: J^T J = 4 I -> 4 sqrt2 + sqrt2 / (4 + eps).
    grown = rigidity_of(2 * torch.eye(2, dtype=torch.float64))
    assert math.isclose(grown, 4 * SQRT2 + SQRT2 / (4 + eps), rel_tol=1e-9)
    # 0.5x isotropic: J^T J = I/4 -> sqrt2/4 + sqrt2 / (1/4 + eps).
    shrunk = rigidity_of(0.5 * torch.eye(2, dtype=torch.float64))
    assert math.isclose(shrunk, SQRT2 / 4 + SQRT2 / (0.25 + eps), rel_tol=1e-9)
    # Rank 1: J^T J = diag(1, 0) -> 1 + sqrt(1/(1+eps)^2 + 1/eps^2), about 1001.
    collapsed = rigidity_of(t([[1.0, 0.0], [0.0, 0.0]]))
    assert math.isclose(collapsed, 1 + math.sqrt(1 / (1 + eps) ** 2 + 1 / eps**2), rel_tol=1e-9)
    assert grown > rigid and shrunk > rigid and collapsed > 500
    # J^T J cannot see orientation: a reflection scores like a rotation (a continuous fold
    # is penalised through the collapse it passes through).
    assert math.isclose(rigidity_of(t([[1.0, 0.0], [0.0, -1.0]])), rigid, rel_tol=1e-9)


def test_rigidity_closed_form_inverse_matches_linalg():
    torch.manual_seed(0)
    jac = torch.randn(6, 2, 2, 2, dtype=torch.float64)  # [N, K, 2, 2]
    scales = t([0.9, 0.6])
    uv_p = torch.rand(6, 2, 2, dtype=torch.float64)
    h = (scales * 2 / 64).view(1, 2, 1)
    uv_dx, uv_dy = uv_p + h * jac[..., 0], uv_p + h * jac[..., 1]
    gram = jac.transpose(-1, -2) @ jac
    eye = torch.eye(2, dtype=torch.float64)
    inverse = torch.linalg.inv(gram + 1e-3 * eye)
    expected = (torch.linalg.matrix_norm(gram) + torch.linalg.matrix_norm(inverse)).mean()
    assert close(rigidity_loss(uv_p, uv_dx, uv_dy, 1.0, scales, 64), expected.item(), tol=1e-9)


def test_rigidity_without_layers_is_zero():
    uv = torch.zeros(4, 0, 2, dtype=torch.float64, requires_grad=True)
    loss = rigidity_loss(uv, uv, uv, 100.0, torch.zeros(0, dtype=torch.float64), 768)
    assert loss.item() == 0.0
    loss.backward()


def test_rigidity_gradient_finite_at_zero_jacobian():
    uv_p = torch.rand(3, 2, 2, dtype=torch.float64, requires_grad=True)
    same = uv_p.detach().clone().requires_grad_(True)
    loss = rigidity_loss(uv_p, same, same, 1.0, t([0.9, 0.6]), 768)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(uv_p.grad).all() and torch.isfinite(same.grad).all()


# ---- residual ------------------------------------------------------------------------------

def test_residual_regularization():
    assert close(residual_regularization_loss(torch.ones(2, 3, 3, dtype=torch.float64)), 0.0)
    assert close(residual_regularization_loss(torch.full((2, 1, 3), 2.0, dtype=torch.float64)), 1.0)
    # (0.25 + 0 + 0.25) / 3.
    assert close(residual_regularization_loss(t([[[0.5, 1.0, 1.5]]])), 1 / 6)


def patch(values: list[float]) -> Tensor:
    """[P, 3] patch with the same value in all channels."""
    return t(values).unsqueeze(-1).expand(-1, 3).clone()


def test_residual_consistency_identical_and_anticorrelated():
    r = patch([1.0, 3.0])
    assert close(residual_consistency_loss(r, r.unsqueeze(0)), 0.0)
    # Swapped pixels: NCC = -1 -> 1 - NCC = 2; the two times (1, 3) at each pixel have
    # population variance 1 -> 16 * 1. Total 18 (eps = 0 for exact values).
    swapped = patch([3.0, 1.0]).unsqueeze(0)
    assert close(residual_consistency_loss(r, swapped, eps=0.0), 18.0)


def test_residual_consistency_averages_over_other_times():
    r = patch([1.0, 3.0])
    others = torch.stack([patch([1.0, 3.0]), patch([3.0, 1.0])])
    # 1 - NCC: (0 + 2) / 2 = 1. Each pixel over 3 times is (1, 1, 3) or (3, 3, 1):
    # mean 5/3, variance ((2/3)^2 * 2 + (4/3)^2) / 3 = 8/9 -> 1 + 16 * 8/9.
    assert close(residual_consistency_loss(r, others, eps=0.0), 1 + 16 * 8 / 9)


def test_residual_consistency_ncc_ignores_gain_and_offset():
    r = patch([0.9, 1.0, 1.2, 1.1])
    other = (2 * r - 0.5).unsqueeze(0)
    over_time = torch.stack([r, other[0]])
    variance = over_time.var(dim=0, correction=0).mean().item()
    assert close(residual_consistency_loss(r, other, eps=0.0), 16 * variance, tol=1e-9)


def test_residual_consistency_flat_patches():
    flat = torch.ones(4, 3, dtype=torch.float64)
    # Two flat patches: perfect correlation, the variance term compares levels:
    # (1, 1.5) at every pixel -> variance 0.0625 -> 16 * 0.0625 = 1.
    assert close(residual_consistency_loss(flat, 1.5 * flat.unsqueeze(0)), 1.0)
    # Flat vs patterned (0.5, 1.5, 0.5, 1.5): variance 0.25 of the pattern, so
    # NCC = eps / sqrt(eps * (0.25 + eps)); variance over time at each pixel is 0.0625.
    eps = 1e-6
    pattern = patch([0.5, 1.5, 0.5, 1.5]).unsqueeze(0)
    expected = 1 - math.sqrt(eps / (0.25 + eps)) + 1.0
    assert close(residual_consistency_loss(flat, pattern, eps=eps), expected, tol=1e-9)


def test_residual_consistency_needs_other_times():
    with pytest.raises(ValueError, match="at least one"):
        residual_consistency_loss(torch.ones(4, 3), torch.ones(0, 4, 3))


# ---- gradients of every loss ---------------------------------------------------------------

def _leaf(*shape: int, low: float = 0.05, high: float = 0.95) -> Tensor:
    return (low + (high - low) * torch.rand(*shape, dtype=torch.float64)).requires_grad_(True)


def _alpha(n: int, k: int) -> Tensor:
    alpha = torch.softmax(torch.randn(n, k, dtype=torch.float64), dim=1)
    return alpha.clamp(1e-5, 1 - 1e-5).requires_grad_(True)


GRADIENT_CASES: dict[str, Callable[[], tuple[Tensor, list[Tensor]]]] = {}


def _case(fn: Callable[[], tuple[Tensor, list[Tensor]]]) -> Callable[[], tuple[Tensor, list[Tensor]]]:
    GRADIENT_CASES[fn.__name__] = fn
    return fn


@_case
def rgb() -> tuple[Tensor, list[Tensor]]:
    a, b = _leaf(8, 3), _leaf(8, 3)
    return rgb_loss(a, b), [a]


@_case
def gradient() -> tuple[Tensor, list[Tensor]]:
    p = [_leaf(8, 3) for _ in range(3)]
    g = [torch.rand(8, 3, dtype=torch.float64) for _ in range(3)]
    return gradient_loss(*p, *g), p


@_case
def sparsity() -> tuple[Tensor, list[Tensor]]:
    rgb_, alpha = _leaf(8, 2, 3), _alpha(8, 3)
    return sparsity_loss(rgb_, alpha), [rgb_, alpha]


@_case
def bootstrapping() -> tuple[Tensor, list[Tensor]]:
    logits = _leaf(8, 2, low=-30.0, high=30.0)  # saturated ones included
    masks = (torch.rand(8, 2) > 0.5).double()
    return alpha_bootstrapping_loss(hierarchical_log_alpha(logits), masks), [logits]


@_case
def regularization() -> tuple[Tensor, list[Tensor]]:
    alpha = _alpha(8, 3)
    return alpha_regularization_loss(alpha), [alpha]


@_case
def flow_alpha() -> tuple[Tensor, list[Tensor]]:
    a, b = _alpha(8, 3), _alpha(8, 3)
    return flow_alpha_loss(a, b, torch.arange(8) % 2 == 0), [a, b]


@_case
def optical_flow() -> tuple[Tensor, list[Tensor]]:
    uv_p = _leaf(8, 3, 2)
    # Some points with zero displacement: the norm's gradient there must stay finite.
    still = torch.arange(8).view(8, 1, 1) < 4
    uv_q = torch.where(still, uv_p.detach(), torch.rand(8, 3, 2, dtype=torch.float64)).requires_grad_(True)
    alpha = _alpha(8, 3)
    valid = torch.ones(8, dtype=torch.bool)
    return optical_flow_loss(uv_p, uv_q, alpha, valid, t([0.9, 0.9, 0.6]), 768), [uv_p, uv_q, alpha]


@_case
def rigidity() -> tuple[Tensor, list[Tensor]]:
    uv = [_leaf(8, 3, 2) for _ in range(3)]
    return rigidity_loss(*uv, 1.0, t([0.9, 0.9, 0.6]), 768), uv


@_case
def residual_reg() -> tuple[Tensor, list[Tensor]]:
    r = _leaf(8, 3, 3, low=0.5, high=1.5)
    return residual_regularization_loss(r), [r]


@_case
def residual_consistency() -> tuple[Tensor, list[Tensor]]:
    r_t, r_o = _leaf(16, 3, low=0.5, high=1.5), _leaf(4, 16, 3, low=0.5, high=1.5)
    # One flat channel: the eps-safe NCC must give finite gradients there too.
    flat = torch.ones(4, 16, 3, dtype=torch.float64)
    flat[..., 1:] = 0
    r_o_flat = r_o * (1 - flat) + flat
    return residual_consistency_loss(r_t, r_o_flat), [r_t, r_o]


@pytest.mark.parametrize("name", sorted(GRADIENT_CASES))
def test_every_loss_backpropagates_finite_gradients(name: str):
    torch.manual_seed(1)
    loss, leaves = GRADIENT_CASES[name]()
    assert loss.shape == () and torch.isfinite(loss)
    loss.backward()
    for leaf in leaves:
        assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
        assert leaf.grad.abs().sum() > 0


# ---- weights, schedules, combine -----------------------------------------------------------

def test_active_weights_defaults_and_keys():
    weights = LossWeights()
    active = active_weights(weights, 0)
    loss_fields = {f.name for f in fields(LossWeights)} - {
        "alpha_bootstrapping_until", "global_rigidity_until", "rigidity_step_px", "global_rigidity_step_px"}
    assert set(active) == loss_fields
    assert all(active[name] == getattr(weights, name) for name in active)
    assert active["rgb"] == 5.0 and active["global_rigidity_background"] == 0.05


def test_active_weights_schedule_boundaries():
    weights = LossWeights()
    assert active_weights(weights, 9_999)["alpha_bootstrapping"] == 2.0
    assert active_weights(weights, 10_000)["alpha_bootstrapping"] == 0.0
    before, after = active_weights(weights, 4_999), active_weights(weights, 5_000)
    assert before["global_rigidity_foreground"] == 0.005 and before["global_rigidity_background"] == 0.05
    assert after["global_rigidity_foreground"] == 0.0 and after["global_rigidity_background"] == 0.0
    # Everything else is unaffected by the schedules.
    late = active_weights(weights, 50_000)
    assert late["rigidity"] == 0.001 and late["residual_consistency"] == 0.1
    # Custom boundaries.
    custom = LossWeights(alpha_bootstrapping_until=3, global_rigidity_until=0)
    assert active_weights(custom, 2)["alpha_bootstrapping"] == 2.0
    assert active_weights(custom, 3)["alpha_bootstrapping"] == 0.0
    assert active_weights(custom, 0)["global_rigidity_background"] == 0.0


def test_combine_weighted_total_and_raw_values():
    rgb_term = torch.tensor(2.0, requires_grad=True)
    terms = {
        "rgb": rgb_term,
        "gradient": torch.tensor(3.0),
        # Zero weight: left out entirely, even a NaN does not reach the total.
        "alpha_bootstrapping": torch.tensor(float("nan")),
    }
    weights = active_weights(LossWeights(), 10_000)
    total, values = combine(terms, weights)
    assert total.item() == pytest.approx(5.0 * 2.0 + 1.0 * 3.0)
    assert values == {"rgb": 2.0, "gradient": 3.0}
    total.backward()
    assert rgb_term.grad.item() == 5.0


def test_combine_errors():
    with pytest.raises(KeyError):
        combine({"rgbb": torch.tensor(1.0)}, active_weights(LossWeights(), 0))
    with pytest.raises(ValueError, match="non-zero"):
        combine({"alpha_bootstrapping": torch.tensor(1.0)}, active_weights(LossWeights(), 10_000))
