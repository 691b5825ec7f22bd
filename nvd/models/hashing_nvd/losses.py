"""Training losses of the layered decomposition (Layered Neural Atlases / Hashing-NVD).

Every loss is a pure function of tensors the training loop has already computed (the model
run at the sampled pixels and at whatever shifted or flow-matched points the loss needs)
and returns a differentiable scalar. ``LossWeights`` is the single source of the default
weights (Hashing-NVD's, about 1000x smaller than LNA's with the same ratios);
``active_weights`` applies the iteration schedules and ``combine`` forms the weighted total.

Conventions: N sampled pixels, K layers (the K-1 foreground objects first, background last),
coordinates normalised as ``x / (rez/2) - 1`` with ``rez = max(W, H)``, so one pixel is
``2 / rez`` normalised units. Layer k's mapping starts near ``uv = xy * scale_k``.

Reductions over optional subsets (valid flow points, foreground layers) divide a sum by
``max(count, 1)``: an empty subset gives an exact 0 that is still part of the graph, so
``backward`` works and nothing turns into NaN. Valid points are selected with
``torch.where`` rather than boolean indexing, which would force a device sync on a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

# The model clamps alpha to [ALPHA_EPS, 1 - ALPHA_EPS]; losses that take a log clamp again so
# an alpha produced elsewhere (tests, a different model) cannot give an infinite loss.
ALPHA_EPS = 1e-5


@dataclass(frozen=True)
class LossWeights:
    """Weight of each loss term and the schedules (Hashing-NVD defaults).

    ``alpha_bootstrapping`` applies for iterations ``< alpha_bootstrapping_until`` and the
    global rigidity terms for iterations ``< global_rigidity_until``. ``rigidity_step_px`` and
    ``global_rigidity_step_px`` are the finite-difference steps (pixels) of the two rigidity
    terms; they live here so that the whole loss configuration is one object.
    """

    rgb: float = 5.0
    gradient: float = 1.0
    sparsity: float = 1.0
    alpha_bootstrapping: float = 2.0
    alpha_bootstrapping_until: int = 10_000
    alpha_regularization: float = 0.1
    flow_alpha: float = 0.05
    optical_flow: float = 0.01
    rigidity: float = 0.001
    rigidity_step_px: float = 1.0
    global_rigidity_foreground: float = 0.005
    global_rigidity_background: float = 0.05
    global_rigidity_step_px: float = 100.0
    global_rigidity_until: int = 5_000
    residual_regularization: float = 0.5
    residual_consistency: float = 0.1


def active_weights(weights: LossWeights, iteration: int) -> dict[str, float]:
    """Weight of every loss term at ``iteration`` (0-based); 0.0 means "do not compute it".

    Keys are the term names that ``combine`` expects. Global rigidity is two terms,
    ``global_rigidity_foreground`` and ``global_rigidity_background``: the training loop calls
    ``rigidity_loss`` once on the foreground layers (``[:, :-1]`` of uv and ``uv_scales``,
    averaged over them) and once on the background layer (``[:, -1:]``), with the wide step
    ``global_rigidity_step_px``. Two plain scalar terms keep every loss a scalar and let the
    log show each part; a video without objects gives an exact 0 foreground term.
    """
    bootstrapping = iteration < weights.alpha_bootstrapping_until
    global_rigidity = iteration < weights.global_rigidity_until
    return {
        "rgb": weights.rgb,
        "gradient": weights.gradient,
        "sparsity": weights.sparsity,
        "alpha_bootstrapping": weights.alpha_bootstrapping if bootstrapping else 0.0,
        "alpha_regularization": weights.alpha_regularization,
        "flow_alpha": weights.flow_alpha,
        "optical_flow": weights.optical_flow,
        "rigidity": weights.rigidity,
        "global_rigidity_foreground": weights.global_rigidity_foreground if global_rigidity else 0.0,
        "global_rigidity_background": weights.global_rigidity_background if global_rigidity else 0.0,
        "residual_regularization": weights.residual_regularization,
        "residual_consistency": weights.residual_consistency,
    }


def combine(terms: dict[str, Tensor], weights: dict[str, float]) -> tuple[Tensor, dict[str, float]]:
    """Weighted sum of the loss terms, and the raw (unweighted) value of each term used.

    ``terms`` maps a name from ``active_weights`` to a scalar loss; every name must have a
    weight (a misspelt name fails with KeyError rather than silently dropping a loss). Terms
    whose weight is 0 are left out of both the total and the returned values. The values are
    raw so that logs stay comparable when weights or schedules change; they are read with a
    single device transfer (one sync per call rather than one per term).
    """
    used = [(name, term) for name, term in terms.items() if weights[name] != 0.0]
    if not used:
        raise ValueError("combine: no loss term has a non-zero weight")
    total = torch.stack([weights[name] * term.reshape(()) for name, term in used]).sum()
    raw = torch.stack([term.detach().reshape(()) for _, term in used]).tolist()
    return total, {name: value for (name, _), value in zip(used, raw)}


def rgb_loss(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error over pixels and channels. pred, target: [N, 3]."""
    return F.mse_loss(pred, target)


def gradient_loss(pred: Tensor, pred_dx: Tensor, pred_dy: Tensor,
                  target: Tensor, target_dx: Tensor, target_dy: Tensor) -> Tensor:
    """Squared error of the rendered finite differences against the ground truth's.

    All inputs [N, 3]: colours at p, at p + (1 px, 0) and at p + (0, 1 px), rendered (pred*)
    and ground truth (target*). Each direction contributes the mean over pixels and channels
    of the squared difference (the same normalisation as ``rgb_loss``); the two directions
    are summed, as in LNA.
    """
    loss_x = F.mse_loss(pred_dx - pred, target_dx - target)
    loss_y = F.mse_loss(pred_dy - pred, target_dy - target)
    return loss_x + loss_y


def sparsity_loss(foreground_rgb: Tensor, alpha: Tensor) -> Tensor:
    """Penalise foreground texture where the layer is not visible.

    foreground_rgb: [N, K-1, 3] texture colours of the foreground layers at their uv;
    alpha: [N, K]. Returns the mean over N and the K-1 layers of
    ``sum_c ((1 - alpha_k) * rgb_k,c)^2``; 0 when K == 1.
    """
    n, layers = foreground_rgb.shape[:2]
    hidden = (1.0 - alpha[:, :layers]).unsqueeze(-1) * foreground_rgb
    return hidden.square().sum() / max(n * layers, 1)


def alpha_bootstrapping_loss(log_alpha: Tensor, masks: Tensor) -> Tensor:
    """Binary cross-entropy of alpha against the object masks, mean over N and K.

    log_alpha: [N, K] log layer weights whose rows' exponentials sum to 1 (the model's
    ``log_alpha``); masks: [N, K-1] float in {0, 1}, one channel per object in layer order.
    The background target is ``1 - max_k mask_k`` (all ones when K == 1).

    Both logs come from log_alpha, ``log(1 - alpha_k)`` as the logsumexp of the other layers'
    log weights, so neither is clamped: the loss grows linearly with how confidently wrong
    a layer is and its gradient never vanishes. (BCE on clamped alpha, as in the references,
    has zero gradient at the clamp, so a saturated wrong layer could never be corrected.)
    """
    # Appending a zero column makes the max well defined with no objects, and does not change
    # it otherwise because masks are non-negative.
    padded = torch.cat([masks, masks.new_zeros(masks.shape[0], 1)], dim=1)
    background = 1.0 - padded.amax(dim=1, keepdim=True)
    target = torch.cat([masks, background], dim=1)
    k = log_alpha.shape[1]
    if k == 1:  # background only: its target is 1, there is no 1 - alpha term
        return -(target * log_alpha).mean()
    itself = torch.eye(k, dtype=torch.bool, device=log_alpha.device)  # [K, K]: row k masks out layer k
    log_rest = torch.logsumexp(log_alpha[:, None, :].masked_fill(itself, -torch.inf), dim=2)  # log(1 - alpha_k)
    return -(target * log_alpha + (1 - target) * log_rest).mean()


def alpha_regularization_loss(alpha: Tensor) -> Tensor:
    """Mean of ``-log(max_k alpha_k)`` over pixels: 0 when each pixel belongs to one layer.

    alpha: [N, K], rows summing to 1 (so the max is at least 1/K; the clamp only guards
    inputs that are not).
    """
    return -alpha.amax(dim=1).clamp_min(ALPHA_EPS).log().mean()


def flow_alpha_loss(alpha_p: Tensor, alpha_q: Tensor, valid: Tensor) -> Tensor:
    """Alpha consistency along optical flow.

    alpha_p, alpha_q: [N, K] alpha at p and at its flow-matched point q at t +- 1;
    valid: [N] bool, points whose flow passed the forward-backward check. Returns the L1
    difference summed over K, averaged over valid points (0 when none is valid).
    """
    diff = (alpha_p - alpha_q).abs().sum(dim=1)
    return torch.where(valid, diff, 0.0).sum() / valid.sum().clamp_min(1)


def optical_flow_loss(uv_p: Tensor, uv_q: Tensor, alpha_p: Tensor, valid: Tensor,
                      uv_scales: Tensor, resolution: int) -> Tensor:
    """Atlas coordinates must follow the optical flow.

    uv_p, uv_q: [N, K, 2] each layer's uv at p and at its flow-matched point q = (p + flow,
    t +- 1); alpha_p: [N, K]; valid: [N] bool; uv_scales: [K]; resolution: rez = max(W, H).
    Layer k's uv displacement ``||uv_p - uv_q||_2`` is converted to pixels with
    ``rez / (2 * scale_k)`` (the initial mapping shrinks a pixel to ``scale_k * 2 / rez``
    uv units), weighted by ``alpha_p[:, k]`` so that only the visible layer must match, summed
    over layers and averaged over valid points (0 when none is valid). The forward and
    backward directions are two calls whose results the training loop averages.

    alpha_p is not detached (as in the references): the rgb and flow-alpha terms keep alpha
    from shrinking merely to hide a mismatch.
    """
    to_pixels = resolution / (2.0 * uv_scales)  # [K]
    moved_px = torch.linalg.vector_norm(uv_p - uv_q, dim=-1) * to_pixels  # [N, K]
    per_point = (alpha_p * moved_px).sum(dim=1)
    return torch.where(valid, per_point, 0.0).sum() / valid.sum().clamp_min(1)


def mapping_jacobian(uv_p: Tensor, uv_dx: Tensor, uv_dy: Tensor, step_px: float,
                     uv_scales: Tensor, resolution: int) -> Tensor:
    """Jacobian of each layer's mapping by forward finite differences, in units where the
    initial mapping ``uv = xy * scale_k`` has J = I.

    uv_p, uv_dx, uv_dy: [N, K, 2] uv at p, p + (d, 0) and p + (0, d) with d = ``step_px``
    pixels; uv_scales: [K]; resolution: rez. Returns J [N, K, 2, 2] with
    ``J[..., i, j] = d uv_i / d x_j`` divided by scale_k (x in normalised units).
    """
    step = (uv_scales * (2.0 * step_px / resolution)).view(-1, 1)  # [K, 1], broadcasts over N
    return torch.stack([(uv_dx - uv_p) / step, (uv_dy - uv_p) / step], dim=-1)


def rigidity_loss(uv_p: Tensor, uv_dx: Tensor, uv_dy: Tensor, step_px: float,
                  uv_scales: Tensor, resolution: int, eps: float = 1e-3) -> Tensor:
    """Keep the mapping locally rigid: mean over N and K of
    ``||J^T J||_F + ||(J^T J + eps I)^-1||_F`` with J from ``mapping_jacobian``.

    Shapes as in ``mapping_jacobian``. The value is ``sqrt(2) + sqrt(2)/(1+eps)`` for a
    rotation (J^T J = I), grows with stretching through the first norm and with shrinking or
    collapse through the second. A reflection also has J^T J = I; a mapping can only fold
    continuously by passing through a collapsed (rank-deficient) Jacobian, which is what gets
    penalised. The same function with a wide step
    (``global_rigidity_step_px``) is the global rigidity term. K may be 0 (the foreground
    part of a video without objects), which gives 0.
    """
    jac = mapping_jacobian(uv_p, uv_dx, uv_dy, step_px, uv_scales, resolution)
    gram = jac.transpose(-1, -2) @ jac  # [N, K, 2, 2], symmetric positive semi-definite
    # Closed-form 2x2 inverse: inv(A) = adj(A) / det(A) and ||adj(A)||_F = ||A||_F for 2x2,
    # so ||A^-1||_F = ||A||_F / det(A). A = J^T J + eps I is positive definite, det >= eps^2.
    a = gram[..., 0, 0] + eps
    b = gram[..., 0, 1]
    d = gram[..., 1, 1] + eps
    inverse_norm = torch.sqrt(a * a + 2.0 * b * b + d * d) / (a * d - b * b)
    # vector_norm has a zero (not NaN) gradient at a zero Jacobian.
    gram_norm = torch.linalg.vector_norm(gram, dim=(-2, -1))
    return (gram_norm + inverse_norm).sum() / max(gram_norm.numel(), 1)


def residual_regularization_loss(residual: Tensor) -> Tensor:
    """Mean of ``(residual - 1)^2``: the multiplicative residual stays near identity.
    residual: [N, K, 3] (any shape works)."""
    return (residual - 1.0).square().mean()


def residual_consistency_loss(residual_t: Tensor, residual_other: Tensor,
                              variance_weight: float = 16.0, eps: float = 1e-6) -> Tensor:
    """Residual consistency on atlas regions that other frames may not show.

    Our reading of the reference ("border patches: 1 - NCC between residual at t and at
    other frames where the uv leaves the frame, + 16 * mean variance"): atlas points near the
    frame border at t may be outside the frame at other times, where rgb never constrains the
    residual. The training loop takes a square patch of P pixels near the border at t, maps
    it to one layer's atlas and evaluates that layer's residual at the same uv for M other
    times. The residual there should be the same lighting change seen at t: same spatial
    pattern (NCC) and similar values over time (variance).

    residual_t: [P, 3] residual at t; residual_other: [M, P, 3], M >= 1, at the other times.
    Returns ``mean_{m,c} (1 - NCC(residual_t[:, c], residual_other[m, :, c]))
    + variance_weight * mean_{p,c} Var_time(residual[:, p, c])`` where the variance is the
    population variance over the M+1 times.

    NCC is zero-mean over the patch, per channel: ``(cov + eps) / sqrt((var_a + eps) *
    (var_b + eps))`` with cov and var as means over the patch. It lies in (-1, 1] and, being
    a smooth function, has finite gradients everywhere. A constant (flat) patch is treated
    as having no pattern: two flat patches correlate perfectly (1 - NCC = 0, the variance
    term alone compares their levels), a flat patch against a patterned one does not
    (1 - NCC near 1). The default eps = 1e-6 puts "flat" at a patch std of about 1e-3,
    below one 8-bit grey level, i.e. variation the video cannot show.
    """
    if residual_other.shape[0] == 0:
        raise ValueError("residual_consistency_loss: residual_other needs at least one other time")
    a = residual_t - residual_t.mean(dim=0)  # [P, 3]
    b = residual_other - residual_other.mean(dim=1, keepdim=True)  # [M, P, 3]
    cov = (a * b).mean(dim=1)  # [M, 3]
    var_a = a.square().mean(dim=0)  # [3]
    var_b = b.square().mean(dim=1)  # [M, 3]
    ncc = (cov + eps) / torch.sqrt((var_a + eps) * (var_b + eps))
    over_time = torch.cat([residual_t.unsqueeze(0), residual_other], dim=0)  # [M+1, P, 3]
    variance = over_time.var(dim=0, correction=0).mean()
    return (1.0 - ncc).mean() + variance_weight * variance
