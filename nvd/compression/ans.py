"""Entropy coding of integer tensors under a per-tensor quantised Gaussian (constriction's ANS).

Model. A tensor of integer codes c (any shape, flattened in C order) is coded with one
``constriction.stream.model.QuantizedGaussian(low, high, mean, std)``: the Gaussian N(mean, std)
over the integers low..high (the codes' own minimum and maximum), leakily quantised to 24-bit
fixed point, the tails beyond low - 0.5 and high + 0.5 folded onto the end symbols, every
symbol in the range at least 2^-24. ``GaussianSide`` holds those four numbers, the side
information a decoder needs besides the tensor's size:

- mean and std are the codes' mean and population standard deviation, rounded to SIDE_DIGITS
  significant digits and then to float32 (``side_value``; kept as the Python floats of those
  float32 values, so the coder, the file and the decoder use bit-identical parameters); std
  is at least STD_FLOOR (a constant tensor has std 0);
- low and high are ints; low == high (a constant tensor) and empty tensors code no symbol at
  all: the decoder fills the tensor with ``low``.

``gaussian_bits(codes, side)``: the bits the model predicts, -sum log2 P(c), with P computed
the way constriction's leaky quantiser assigns it (the same integer weights up to the last
ulp of the normal CDF), so a real stream is longer only by the coder's flush (at most a few
32-bit words for the whole stream).

Stream. ``encode_tensors`` puts several tensors into ONE ANS stream (one coder: one flush for
all of them) and returns its bytes (uint32 words, little-endian); ``decode_tensors`` takes
them back in the same order given each tensor's side and size. The round trip is exact.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

PRECISION = 24  # constriction's default ANS models: probabilities in units of 2^-24
STD_FLOOR = 0.1  # smallest std of the model, in code units (a constant tensor has std 0)
SIDE_DIGITS = 4  # significant digits of side information (relative error < 5e-4: no bits lost)
_WORD = np.dtype("<u4")


def float32(value: float) -> float:
    """``value`` rounded to float32, as a Python float (exact in JSON and in f64 maths)."""
    return float(np.float32(value))


def side_value(value: float) -> float:
    """``value`` to SIDE_DIGITS significant decimal digits, as a float32 value: what side
    information (means, stds, scales, offsets) is rounded to, so it costs a few characters
    in a file and both coder and decoder use exactly the stored number."""
    return float32(float(f"{float(value):.{SIDE_DIGITS}g}"))


def short_float32(value: float) -> float:
    """The shortest decimal that rounds back to the same float32 as ``value``: what a file
    stores (``float32`` of it restores the value bit for bit)."""
    return float(str(np.float32(value)))


@dataclass(frozen=True)
class GaussianSide:
    """A tensor's entropy model: N(mean, std) over the integers low..high (see the module)."""

    mean: float
    std: float
    low: int
    high: int

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std >= STD_FLOOR):
            raise ValueError(f"ans: a Gaussian needs a finite mean and std >= {STD_FLOOR}, got "
                             f"{self.mean}, {self.std}")
        if self.high < self.low or self.high - self.low >= (1 << PRECISION) - 1:
            raise ValueError(f"ans: code range {self.low}..{self.high} is empty or wider than the "
                             f"coder's 2^{PRECISION} - 1 symbols")

    @property
    def constant(self) -> bool:
        """One symbol only: nothing is coded."""
        return self.low == self.high

    def to_json(self) -> list[float | int]:
        """[mean, std, low, high], floats as their shortest float32 decimal."""
        return [short_float32(self.mean), short_float32(self.std), int(self.low), int(self.high)]

    @classmethod
    def from_json(cls, values: Sequence[float | int]) -> "GaussianSide":
        mean, std, low, high = values
        return cls(float32(mean), float32(std), int(low), int(high))


def _flat_codes(codes: np.ndarray) -> np.ndarray:
    flat = np.asarray(codes).reshape(-1)
    if flat.size and not np.issubdtype(flat.dtype, np.integer):
        raise ValueError(f"ans: codes must be integers, got {flat.dtype}")
    return flat.astype(np.int64)


def fit_gaussian(codes: np.ndarray) -> GaussianSide:
    """The side information of integer ``codes`` (any shape): their float32 mean and std
    (std floored at STD_FLOOR), min and max. Empty: N(0, STD_FLOOR) over {0}."""
    flat = _flat_codes(codes)
    if flat.size == 0:
        return GaussianSide(0.0, float32(STD_FLOOR), 0, 0)
    values = flat.astype(np.float64)
    mean = side_value(values.mean())
    # Rounding is monotonic and STD_FLOOR has SIDE_DIGITS digits: the floor survives it.
    std = side_value(max(float(values.std()), STD_FLOOR))
    return GaussianSide(mean, std, int(flat.min()), int(flat.max()))


def symbol_weights(side: GaussianSide) -> np.ndarray:
    """int64 [high - low + 1]: the fixed-point weight (probability * 2^PRECISION) of each
    symbol low..high under constriction's leaky quantiser (sum 2^PRECISION)."""
    n = side.high - side.low + 1
    total = 1 << PRECISION
    if n == 1:
        return np.array([total], dtype=np.int64)
    free = total - n  # every symbol first gets weight 1, the rest follows the CDF
    edges = np.arange(side.low, side.high, dtype=np.float64) + 0.5  # between consecutive symbols
    cumulative = np.floor(free * ndtr((edges - side.mean) / side.std)).astype(np.int64)
    left = np.concatenate(([0], cumulative + np.arange(1, n)))
    right = np.concatenate((cumulative + np.arange(1, n), [total]))
    return right - left


def gaussian_bits(codes: np.ndarray, side: GaussianSide) -> float:
    """-sum log2 P(c) of ``codes`` under ``side`` (0 for a constant or empty tensor)."""
    flat = _flat_codes(codes)
    if flat.size == 0 or side.constant:
        return 0.0
    if flat.min() < side.low or flat.max() > side.high:
        raise ValueError(f"ans: codes outside {side.low}..{side.high}")
    counts = np.bincount(flat - side.low, minlength=side.high - side.low + 1)
    used = counts > 0
    weights = symbol_weights(side)[used]
    return float(np.sum(counts[used] * (PRECISION - np.log2(weights))))


def _model(side: GaussianSide):  # noqa: ANN202 - constriction's model type
    import constriction

    return constriction.stream.model.QuantizedGaussian(side.low, side.high, side.mean, side.std)


def encode_tensors(tensors: Sequence[np.ndarray], sides: Sequence[GaussianSide]) -> bytes:
    """One ANS stream holding every tensor (integer codes, each within its side's range), in
    order; constant and empty tensors take no bits."""
    import constriction

    if len(tensors) != len(sides):
        raise ValueError(f"ans: {len(tensors)} tensors but {len(sides)} sides")
    coder = constriction.stream.stack.AnsCoder()
    # A stack: the last tensor goes in first so that decoding reads them in order.
    for codes, side in reversed(list(zip(tensors, sides))):
        flat = _flat_codes(codes)
        if flat.size == 0 or side.constant:
            if flat.size and (flat != side.low).any():
                raise ValueError(f"ans: a constant side ({side.low}) for a tensor that is not constant")
            continue
        if flat.min() < side.low or flat.max() > side.high:
            raise ValueError(f"ans: codes {flat.min()}..{flat.max()} outside {side.low}..{side.high}")
        coder.encode_reverse(flat.astype(np.int32), _model(side))
    return coder.get_compressed().astype(_WORD).tobytes()


def decode_tensors(data: bytes, sides: Sequence[GaussianSide], sizes: Sequence[int]) -> list[np.ndarray]:
    """The tensors of ``encode_tensors``'s stream: int32 [size] each, in order. ValueError when
    the stream is not a whole number of words or holds more or fewer symbols than asked for."""
    import constriction

    if len(data) % _WORD.itemsize:
        raise ValueError(f"ans: a stream of {len(data)} bytes is not a whole number of 32-bit words")
    if len(sides) != len(sizes):
        raise ValueError(f"ans: {len(sides)} sides but {len(sizes)} sizes")
    coder = constriction.stream.stack.AnsCoder(np.frombuffer(data, dtype=_WORD).astype(np.uint32))
    out = []
    for side, size in zip(sides, sizes):
        if size == 0 or side.constant:
            out.append(np.full(int(size), side.low, dtype=np.int32))
            continue
        out.append(np.asarray(coder.decode(_model(side), int(size)), dtype=np.int32))
    if not coder.is_empty():
        raise ValueError("ans: the stream holds more data than the tensors it was asked for")
    return out
