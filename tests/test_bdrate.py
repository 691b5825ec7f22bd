"""Bjontegaard deltas on curves with known answers."""

from __future__ import annotations

import math
import random

import pytest

from nvd.compression.bdrate import bd_quality, bd_rate

# A realistic anchor: PSNR against bpp, concave in log-rate (not a polynomial of it).
ANCHOR = [(0.02, 25.1), (0.05, 28.0), (0.11, 30.9), (0.26, 33.6), (0.61, 36.2), (1.3, 38.4)]
METHODS = ("pchip", "cubic")


@pytest.mark.parametrize("method", METHODS)
def test_a_constant_rate_factor_is_its_bd_rate(method):
    test = [(0.8 * rate, psnr) for rate, psnr in ANCHOR]
    assert bd_rate(ANCHOR, test, method) == pytest.approx(-20.0, abs=1e-9)
    assert bd_rate(test, ANCHOR, method) == pytest.approx(25.0, abs=1e-9)  # 1 / 0.8 - 1


@pytest.mark.parametrize("method", METHODS)
def test_a_constant_quality_shift_is_its_bd_quality(method):
    test = [(rate, psnr + 1.0) for rate, psnr in ANCHOR]
    assert bd_quality(ANCHOR, test, method) == pytest.approx(1.0, abs=1e-9)
    assert bd_quality(test, ANCHOR, method) == pytest.approx(-1.0, abs=1e-9)
    assert bd_rate(ANCHOR, test, method) < 0  # better quality at equal rate: fewer bits at equal quality


@pytest.mark.parametrize("method", METHODS)
def test_a_varying_gap_averages_over_the_shared_quality_interval(method):
    # log10(rate) linear in quality on both curves (both methods reproduce lines exactly):
    # anchor log10 r = (q - 40) / 10, test log10 r = (q - 40) / 8 on q in [25, 35] and
    # [30, 40]; shared [30, 35], mean log difference = the difference at q = 32.5.
    anchor = [(10 ** ((q - 40) / 10), q) for q in (25, 28, 31, 33, 35)]
    test = [(10 ** ((q - 40) / 8), q) for q in (30, 32, 36, 38, 40)]
    expected = (10 ** ((32.5 - 40) / 8 - (32.5 - 40) / 10) - 1) * 100
    assert bd_rate(anchor, test, method) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("method", METHODS)
def test_the_order_of_points_does_not_matter(method):
    test = [(rate * 0.7 * (1 + 0.1 * i), psnr + 0.2 * i) for i, (rate, psnr) in enumerate(ANCHOR)]
    shuffled_anchor, shuffled_test = ANCHOR[:], test[:]
    random.Random(0).shuffle(shuffled_anchor)
    random.Random(1).shuffle(shuffled_test)
    assert bd_rate(shuffled_anchor, shuffled_test, method) == pytest.approx(bd_rate(ANCHOR, test, method), abs=1e-9)
    assert bd_quality(shuffled_anchor, shuffled_test, method) == pytest.approx(bd_quality(ANCHOR, test, method),
                                                                              abs=1e-9)


def test_repeated_points_count_once_and_missing_qualities_are_left_out():
    test = [(0.9 * rate, psnr) for rate, psnr in ANCHOR]
    repeated = ANCHOR + ANCHOR[2:4] + [(0.3, None)]
    assert bd_rate(repeated, test) == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(repeated, test, "cubic") == pytest.approx(-10.0, abs=1e-9)


def test_disjoint_curves_or_too_few_points_give_none():
    high = [(rate * 10, psnr + 20) for rate, psnr in ANCHOR]  # 45-58 dB: above the anchor's 25-38
    assert bd_rate(ANCHOR, high) is None
    assert bd_rate(ANCHOR, high, "cubic") is None
    assert bd_quality(ANCHOR, [(rate * 1000, psnr) for rate, psnr in ANCHOR]) is None
    three = ANCHOR[:3]
    assert bd_rate(ANCHOR, [(0.9 * r, q) for r, q in three], "cubic") is None  # a cubic needs 4
    assert bd_rate(three, [(0.9 * r, q) for r, q in three], "pchip") == pytest.approx(-10.0, abs=1e-9)
    assert bd_rate(ANCHOR, [(0.9, 30.0)]) is None
    assert bd_rate(ANCHOR, []) is None


def test_pchip_and_cubic_agree_on_a_smooth_curve_and_bad_input_is_refused():
    test = [(rate * (0.75 + 0.05 * psnr / 38), psnr + 0.3) for rate, psnr in ANCHOR]
    pchip, cubic = bd_rate(ANCHOR, test), bd_rate(ANCHOR, test, "cubic")
    assert -40 < pchip < -15 and abs(pchip - cubic) < 1.0
    with pytest.raises(ValueError, match="unknown Bjontegaard method"):
        bd_rate(ANCHOR, test, "linear")
    with pytest.raises(ValueError, match="finite rate > 0"):
        bd_rate(ANCHOR, [(0.0, 30.0), *test])
    with pytest.raises(ValueError, match="test curve"):
        bd_quality(ANCHOR, [(0.1, math.inf), *test])
