"""exp and log that LLVM can vectorize inside Numba loops.

``math.exp``/``math.log`` compile to calls into libm, which stop the loop vectorizer: in
the DAPPER E-step the K-long exponentials per local pass cost as much as the word loop.
These versions are branch-free polynomials (Cody-Waite reduction + Taylor for exp,
atanh series for log) with the power of two built by integer bit-casts, so a loop over
topics compiles to AVX/AVX-512 code (measured ~12x faster than libm exp, ~4x for log).
Accuracy: relative error <= 4e-16 for exp on [-708, 708] and absolute error <= 3e-16
(relative to max(1, |log x|)) for log of positive normal numbers; see
tests/test_vecmath.py, which checks them against NumPy over the whole range.

They are compiled without reassociation (Cody-Waite needs its operation order) and
without zero-division checks (``error_model="numpy"``), so callers keep their own
fastmath flags.  Domain: exp clamps its argument to [-708, 708]; log expects x > 0 and
finite (the callers only pass variances and normalizers, which are).
"""
from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from .jitcache import CACHE

LOG2E = 1.4426950408889634
LN2_HI = 0.6931471803691238  # ln 2 split so n * LN2_HI is exact for |n| < 2**20
LN2_LO = 1.9082149292705877e-10
SQRT2 = 1.4142135623730951
EXP_LIMIT = 708.0
# Horner coefficients, highest power first: 1/n! for n = 12..0, and 1/(2n+1) for n = 10..0
_EXP_TAYLOR = tuple(1.0 / math.factorial(n) for n in range(12, -1, -1))
_ATANH_SERIES = tuple(1.0 / (2 * n + 1) for n in range(10, -1, -1))
_FLAGS = dict(cache=CACHE, nogil=True, fastmath={"contract"}, error_model="numpy")


@intrinsic
def _bits_as_float(typingctx, x):
    sig = types.float64(types.int64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.DoubleType())

    return sig, codegen


@intrinsic
def _float_as_bits(typingctx, x):
    sig = types.int64(types.float64)

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return sig, codegen


@njit(**_FLAGS)
def vexp(x):
    """exp(x) for x clamped to [-708, 708]."""
    x = min(max(x, -EXP_LIMIT), EXP_LIMIT)
    n = math.floor(x * LOG2E + 0.5)
    r = (x - n * LN2_HI) - n * LN2_LO  # |r| <= ln2 / 2, so degree 12 is accurate to 2e-16
    p = 0.0
    for c in _EXP_TAYLOR:  # Horner; a loop over a constant tuple, unrolled by LLVM
        p = p * r + c
    return p * _bits_as_float((np.int64(n) + 1023) << 52)


@njit(**_FLAGS)
def vlog(x):
    """log(x) for positive, finite, normal x."""
    b = _float_as_bits(x)
    e = (b >> 52) - 1023
    f = _bits_as_float((b & 0xFFFFFFFFFFFFF) | 0x3FF0000000000000)  # mantissa in [1, 2)
    big = f > SQRT2  # fold onto [sqrt2/2, sqrt2); written as selects so loops vectorize
    f = f * 0.5 if big else f
    e = e + 1 if big else e
    s = (f - 1.0) / (f + 1.0)  # |s| <= 0.172: log f = 2 atanh(s), series to s**21
    s2 = s * s
    p = 0.0
    for c in _ATANH_SERIES:
        p = p * s2 + c
    fe = np.float64(e)
    return 2.0 * s * p + fe * LN2_HI + fe * LN2_LO
