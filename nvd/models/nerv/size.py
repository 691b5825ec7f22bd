"""Model size by target parameter count: solve the channel width for ``model_size``.

Counted parameters (``counted_parameters``): every parameter except the HNeRV encoder's, plus
num_frames * embedding numel for HNeRV (the embeddings are what a decoder-side copy stores;
the encoder is only needed to make them). This is what the public code reports as the model
size (decoder + embeddings).

The solver varies the real-valued ``channel_width`` x; every stage width is a rounded function
of x (blocks.nerv_widths / hnerv_widths), so the count is a non-decreasing step function of x.
Bisection finds the step straddling the target and keeps the nearer side. Where one step of x
is still too coarse for ``size_tolerance`` (NeRV: the stem's last layer adds
rows * cols * (stem_hidden + 1) parameters per channel; E-NeRV at small sizes), the config's
``trim_field`` (NeRV: stem_hidden, E-NeRV: block_dim) is raised from its configured value,
at the lower x, until the count is nearest the target. Counting builds the model on the meta
device: no memory, a few milliseconds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from nvd.core.errors import ConfigError
from nvd.models.nerv.base import NeRVFamilyModel
from nvd.models.nerv.config import ModelConfig
from nvd.models.nerv.registry import construct

MAX_WIDTH = float(1 << 16)
# Settings besides the width that set the smallest model of a family (named in errors).
SIZE_KNOBS = {"nerv": ["stem_hidden"], "enerv": ["block_dim", "t_hidden", "dim_head"],
              "hnerv": ["embed_channels (or fewer frames)"]}
WIDTH_RESOLUTION = 1e-3  # bisection stops when the bracket on channel_width is this narrow


def counted_parameters(model: NeRVFamilyModel, num_frames: int) -> int:
    """Parameters counted in the model size: all but the uncounted ones (HNeRV's encoder),
    plus ``num_frames`` stored embeddings (HNeRV: embed_channels * rows * cols each)."""
    skip = {id(p) for p in model.uncounted_parameters()}
    params = sum(p.numel() for p in model.parameters() if id(p) not in skip)
    return params + num_frames * model.embedding_numel


def count_parameters(cfg: ModelConfig, height: int, width: int, num_frames: int) -> int:
    """Counted parameters of the model of ``cfg`` (channel_width set), built on the meta device."""
    with torch.device("meta"):
        model = construct(cfg, height, width, num_frames)
    return counted_parameters(model, num_frames)


@dataclass(frozen=True)
class SizeSolution:
    """A solved config and the exact count it reaches."""

    cfg: ModelConfig  # channel_width (and the trim field, when used) filled in
    count: int  # counted parameters of cfg's model
    target: int  # round(model_size * 1e6)

    @property
    def relative_error(self) -> float:
        return (self.count - self.target) / self.target


class _Counter:
    """Memoised count of cfg with some fields replaced."""

    def __init__(self, cfg: ModelConfig, height: int, width: int, num_frames: int) -> None:
        self.cfg, self.size, self.cache = cfg, (height, width, num_frames), {}

    def __call__(self, **changes: float) -> int:
        key = tuple(sorted(changes.items()))
        if key not in self.cache:
            self.cache[key] = count_parameters(dataclasses.replace(self.cfg, **changes), *self.size)
        return self.cache[key]


def _snap(count: _Counter, x: float, extra: dict[str, int]) -> float:
    """The shortest decimal near x that builds the same-sized model (reports 97.5, not 97.49999)."""
    target = count(channel_width=x, **extra)
    for digits in range(7):
        short = round(x, digits)
        if short >= 1 and count(channel_width=short, **extra) == target:
            return short
    return x


def _bisect_width(count: _Counter, target: int) -> tuple[float, float]:
    """(lo, hi): count(lo) <= target < count(hi), hi - lo tiny; lo = hi = 1 if count(1) > target."""
    if count(channel_width=1.0) > target:
        return 1.0, 1.0
    lo, hi = 1.0, 2.0
    while count(channel_width=hi) <= target:
        lo, hi = hi, hi * 2
        if hi > MAX_WIDTH:
            raise ConfigError(f"{count.cfg.name}: model_size {count.cfg.model_size}M needs a width "
                              f"above {MAX_WIDTH:g}")
    while hi - lo > WIDTH_RESOLUTION:
        mid = (lo + hi) / 2
        if count(channel_width=mid) <= target:
            lo = mid
        else:
            hi = mid
    return lo, hi


def _trim(count: _Counter, x: float, target: int) -> tuple[int, int]:
    """(value, count): the trim field's value (>= its configured one) nearest the target at x."""
    field = count.cfg.trim_field
    lo = getattr(count.cfg, field)
    step, hi = 1, lo + 1
    while count(channel_width=x, **{field: hi}) <= target:
        lo, step = hi, step * 2
        hi = lo + step
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count(channel_width=x, **{field: mid}) <= target:
            lo = mid
        else:
            hi = mid
    counts = {v: count(channel_width=x, **{field: v}) for v in (lo, hi)}
    best = min(counts, key=lambda v: abs(counts[v] - target))
    return best, counts[best]


def solve_size(cfg: ModelConfig, height: int, width: int, num_frames: int) -> SizeSolution:
    """The config whose model (height x width, num_frames) counts nearest round(model_size * 1e6).

    Raises ConfigError when no width gets within cfg.size_tolerance: the budget is below the
    smallest model of these settings (the message names the knobs to lower), or the steps are
    too coarse and the config has no trim field.
    """
    target = round(cfg.model_size * 1e6)
    tol = cfg.size_tolerance
    count = _Counter(cfg, height, width, num_frames)
    smallest = count(channel_width=1.0)
    if smallest > target * (1 + tol):
        knobs = ["lower_width", *SIZE_KNOBS[cfg.family]] + (["boost_cfg.tat_hidden"] if cfg.boost else [])
        raise ConfigError(
            f"{cfg.name}: model_size {cfg.model_size}M is below the smallest model these settings "
            f"allow at {width}x{height} with {num_frames} frames ({smallest} parameters at "
            f"channel_width 1); raise model_size or lower {', '.join(knobs)}")
    lo, hi = _bisect_width(count, target)
    best = min((lo, hi), key=lambda x: abs(count(channel_width=x) - target))
    extra: dict[str, int] = {}
    if abs(count(channel_width=best) - target) > tol * target and cfg.trim_field:
        best = lo
        value, _ = _trim(count, lo, target)
        extra = {cfg.trim_field: value}
    reached = count(channel_width=best, **extra)
    if abs(reached - target) > tol * target:
        raise ConfigError(
            f"{cfg.name}: no channel_width gets within {tol:.0%} of model_size {cfg.model_size}M "
            f"at {width}x{height}: the nearest counts are {count(channel_width=lo)} and "
            f"{count(channel_width=hi)}; change reduce or lower_width, or size_tolerance")
    best = _snap(count, best, extra)
    solved = dataclasses.replace(cfg, channel_width=best, **extra)
    return SizeSolution(cfg=solved, count=count(channel_width=best, **extra), target=target)

