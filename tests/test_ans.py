"""Entropy coding of integer tensors (nvd.compression.ans): exact round trips through one ANS
stream, the model's predicted bits against real streams, constant and empty tensors."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.special import ndtr

from nvd.compression.ans import (
    PRECISION,
    STD_FLOOR,
    GaussianSide,
    decode_tensors,
    encode_tensors,
    fit_gaussian,
    float32,
    gaussian_bits,
    side_value,
    symbol_weights,
)


def rounded_gaussian(n: int, mean: float, std: float, seed: int = 0) -> np.ndarray:
    return np.round(np.random.default_rng(seed).normal(mean, std, size=n)).astype(np.int32)


def discrete_entropy(mean: float, std: float) -> float:
    """Bits per symbol of round(N(mean, std)) (the known answer)."""
    k = np.arange(math.floor(mean - 12 * std), math.ceil(mean + 12 * std) + 1)
    p = ndtr((k + 0.5 - mean) / std) - ndtr((k - 0.5 - mean) / std)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def test_gaussian_tensor_round_trip_is_exact_at_its_entropy():
    codes = rounded_gaussian(40_000, 3.0, 4.0).reshape(200, 200)
    side = fit_gaussian(codes)
    data = encode_tensors([codes], [side])
    (back,) = decode_tensors(data, [side], [codes.size])
    assert np.array_equal(back.reshape(codes.shape), codes)
    per_symbol = 8 * len(data) / codes.size
    assert per_symbol == pytest.approx(discrete_entropy(3.0, 4.0), rel=0.01)
    # the side information is the codes' own float32 mean and std, and their range
    assert side.mean == side_value(codes.mean()) == pytest.approx(codes.mean(), rel=5e-4)
    assert side.std == side_value(codes.std()) == pytest.approx(codes.std(), rel=5e-4)
    assert side_value(side.std) == side.std  # stored values are fixed points of the rounding
    assert (side.low, side.high) == (codes.min(), codes.max())


@pytest.mark.parametrize("std", [0.3, 1.0, 7.0, 300.0])
def test_predicted_bits_are_the_real_stream_within_one_percent(std):
    tensors = [rounded_gaussian(n, mean, std, seed) for seed, (n, mean) in
               enumerate([(20_000, 0.0), (5_000, -40.5), (300, 2.0)])]
    sides = [fit_gaussian(t) for t in tensors]
    predicted = sum(gaussian_bits(t, s) for t, s in zip(tensors, sides))
    real = 8 * len(encode_tensors(tensors, sides))
    # one stream for all tensors: only the coder's final flush (a few 32-bit words) on top
    assert predicted <= real <= predicted * 1.01
    assert real - predicted < 96


def test_symbol_weights_are_a_leaky_24_bit_distribution():
    side = GaussianSide(0.3, 2.0, -50, 40)
    weights = symbol_weights(side)
    assert weights.sum() == 1 << PRECISION and weights.min() >= 1
    # far in the tails every symbol keeps the smallest probability, the centre follows the CDF
    assert weights[0] == 1 and weights[-1] == 1
    centre = 0 - side.low
    assert weights[centre] / 2 ** PRECISION == pytest.approx(ndtr(0.1) - ndtr(-0.4), rel=1e-5)


def test_constant_and_empty_tensors_take_no_bits_and_come_back():
    constant, empty = np.full((3, 4), -7, dtype=np.int32), np.zeros((0, 5), dtype=np.int32)
    sides = [fit_gaussian(constant), fit_gaussian(empty)]
    assert sides[0] == GaussianSide(-7.0, float32(STD_FLOOR), -7, -7) and sides[0].std >= STD_FLOOR
    assert sides[1].constant and gaussian_bits(empty, sides[1]) == 0 == gaussian_bits(constant, sides[0])
    assert encode_tensors([constant, empty], sides) == b""
    varied = rounded_gaussian(1_000, 0.0, 2.0)
    all_sides = [sides[0], fit_gaussian(varied), sides[1]]
    back = decode_tensors(encode_tensors([constant, varied, empty], all_sides), all_sides, [12, 1_000, 0])
    assert np.array_equal(back[0], constant.reshape(-1)) and np.array_equal(back[1], varied)
    assert back[2].shape == (0,)


def test_side_information_survives_json_bit_for_bit():
    side = fit_gaussian(rounded_gaussian(777, 1.234567, 3.21))
    text = json.dumps(side.to_json())
    assert GaussianSide.from_json(json.loads(text)) == side
    assert len(text) < 40  # shortest float32 decimals, not 17-digit doubles


def test_bad_codes_and_streams_are_refused():
    side = GaussianSide(0.0, 1.0, -3, 3)
    with pytest.raises(ValueError, match="outside"):
        encode_tensors([np.array([4], dtype=np.int32)], [side])
    with pytest.raises(ValueError, match="integers"):
        fit_gaussian(np.array([0.5]))
    data = encode_tensors([np.array([1, 2, -3], dtype=np.int32)], [side])
    with pytest.raises(ValueError, match="whole number"):
        decode_tensors(data[:-1], [side], [3])
    with pytest.raises(ValueError, match="more data"):
        decode_tensors(data, [side], [1])
    with pytest.raises(ValueError, match="std"):
        GaussianSide(0.0, 0.0, 0, 1)
