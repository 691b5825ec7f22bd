"""Bjontegaard deltas between two rate-distortion curves.

A curve is a sequence of (rate, quality) points: rate in any positive unit (bpp, bits,
kbit/s; the same for both curves), quality in any unit where higher is better (PSNR in dB,
MS-SSIM). Points may come in any order; points of equal quality (``bd_rate``) or of equal
rate (``bd_quality``) are merged into one at their mean, and a point whose quality is None
(a metric that could not be computed) is left out.

- ``bd_rate(anchor, test)``: the average rate difference of ``test`` against ``anchor`` at
  equal quality, in percent (-20: ``test`` needs 20 % fewer bits); log10(rate) is
  interpolated as a function of quality and the two integrated over the quality interval
  both curves cover.
- ``bd_quality(anchor, test)``: the average quality difference at equal rate (BD-PSNR,
  BD-MS-SSIM): quality as a function of log10(rate), over the shared log-rate interval.

Methods: ``"cubic"``, VCEG-M33 (Bjontegaard 2001): a least-squares cubic polynomial per
curve, integrated exactly; needs 4 points a curve. ``"pchip"``: piecewise cubic Hermite
interpolation through the points, monotone between them (scipy's PchipInterpolator, the
JVET common-test-condition and CompressAI practice), which does not overshoot between
distant points; needs 2 points a curve.

Both return None when a curve has too few points for the method or the two curves do not
overlap (no common quality interval for ``bd_rate``, no common rate interval for
``bd_quality``), rather than extrapolating.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METHODS = {"cubic": 4, "pchip": 2}  # method -> fewest points a curve needs


def _checked(points: Sequence[tuple[float, float | None]], name: str) -> list[tuple[float, float]]:
    """The (rate, quality) points with a quality; ValueError for a rate <= 0 or a non-finite value."""
    kept = []
    for point in points:
        rate, quality = point
        if quality is None:
            continue
        try:
            usable = math.isfinite(rate) and math.isfinite(quality) and rate > 0
        except TypeError:  # a None or a string
            usable = False
        if not usable:
            raise ValueError(f"{name} curve: point {tuple(point)!r} needs a finite rate > 0 and a finite quality")
        kept.append((float(rate), float(quality)))
    return kept


def _merged(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """x ascending without repeats, y averaged over the points that share an x."""
    unique, inverse = np.unique(x, return_inverse=True)
    sums = np.bincount(inverse, weights=y)
    counts = np.bincount(inverse)
    return unique, sums / counts


def _mean_difference(anchor: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                     method: str) -> float | None:
    """The mean of test(x) - anchor(x) over the x both cover, each curve y(x) interpolated
    by ``method``; None when too few points or no overlap."""
    if method not in METHODS:
        raise ValueError(f"unknown Bjontegaard method {method!r}; known: {list(METHODS)}")
    curves = [_merged(*curve) for curve in (anchor, test)]
    if any(len(x) < METHODS[method] for x, _ in curves):
        return None
    low = max(x[0] for x, _ in curves)
    high = min(x[-1] for x, _ in curves)
    if not high > low:
        return None
    integrals = []
    for x, y in curves:
        if method == "cubic":
            antiderivative = np.polyint(np.polyfit(x, y, 3))
            integrals.append(np.polyval(antiderivative, high) - np.polyval(antiderivative, low))
        else:
            from scipy.interpolate import PchipInterpolator

            integrals.append(PchipInterpolator(x, y).integrate(low, high))
    return float((integrals[1] - integrals[0]) / (high - low))


def _arrays(points: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    if not points:
        return np.zeros(0), np.zeros(0)
    rates, qualities = np.asarray(points, dtype=np.float64).T
    return np.log10(rates), qualities


def bd_rate(anchor: Sequence[tuple[float, float | None]], test: Sequence[tuple[float, float | None]],
            method: str = "pchip") -> float | None:
    """Average rate difference of ``test`` against ``anchor`` at equal quality, in percent
    (negative: ``test`` needs fewer bits); None without overlap or enough points (see the
    module docstring)."""
    (a_rate, a_quality), (t_rate, t_quality) = (_arrays(_checked(anchor, "anchor")),
                                                _arrays(_checked(test, "test")))
    mean_log_ratio = _mean_difference((a_quality, a_rate), (t_quality, t_rate), method)
    return None if mean_log_ratio is None else (10 ** mean_log_ratio - 1) * 100


def bd_quality(anchor: Sequence[tuple[float, float | None]], test: Sequence[tuple[float, float | None]],
               method: str = "pchip") -> float | None:
    """Average quality difference of ``test`` against ``anchor`` at equal rate (BD-PSNR in
    dB for PSNR; positive: ``test`` is better); None without overlap or enough points."""
    (a_rate, a_quality), (t_rate, t_quality) = (_arrays(_checked(anchor, "anchor")),
                                                _arrays(_checked(test, "test")))
    return _mean_difference((a_rate, a_quality), (t_rate, t_quality), method)
