r"""Exact sums of doubles, independent of the order of the additions and of how the terms are split
between MPI ranks (the DMC population's reductions, `vmc.mc.dmc.Population.step`).

A floating-point sum depends on the order of its additions: per-rank partial sums combined across ranks
give other last bits than one sum in slot order, and other bits again on another number of ranks. Here
every term is added *exactly* into a fixed-point accumulator that spans the whole range of doubles
(`LIMBS` digits of 32 bits in int64, 2^-1074 to beyond 2^1024), so the accumulated value is the exact
mathematical sum whatever the order; accumulators are combined by adding their digits (an MPI_SUM of
int64, exact and associative), and only the final value is rounded to the nearest double
(`value`: round half to even, as IEEE addition rounds). So

    value(sum of accumulators of any partition of the terms) == the exactly rounded sum of all terms,

bit for bit on 1, 2 or 1024 ranks. The three counters after the digits keep IEEE's rules for infinite
and NaN terms (any NaN, or +inf with -inf: NaN; else the infinity).

An accumulator is `WIDTH` int64 (568 bytes); adding a term costs a few integer operations on three
digits (no normalization until `value`). A term adds less than 2^33 to a digit, so the digits stay
exact (no int64 overflow) for up to 2^30 terms in all, on all ranks together (DMC: at most 10^7 walkers).

>>> x = np.array([1e16, 1.0, -1e16, 0.5])
>>> float(np.sum(x)), value(accumulate(x))          # the float sum loses the 1.0
(0.5, 1.5)
>>> a, b = accumulate(x[:1]), accumulate(x[1:])      # two "ranks": add the digits, then round
>>> value(a + b) == value(accumulate(x[::-1]))
True
>>> prefix(np.zeros(WIDTH, dtype=np.int64), x).tolist()   # exactly rounded running sums
[1e+16, 1e+16, 1.0, 1.5]
"""
from __future__ import annotations

import math

import numba
import numpy as np

LIMBS = 68                        # digits of 32 bits: bits 0 .. 2175 above 2^-1074 (sums beyond 2^1024 too)
NAN, POS_INF, NEG_INF = LIMBS, LIMBS + 1, LIMBS + 2   # counters of non-finite terms
WIDTH = LIMBS + 3
_MASK = (1 << 32) - 1
_TWO53 = 9007199254740992.0


@numba.njit(cache=True, inline="always")
def add(acc, x):
    """acc += x exactly (acc: int64 (WIDTH,))."""
    if not math.isfinite(x):
        if math.isnan(x):
            acc[NAN] += 1
        elif x > 0.0:
            acc[POS_INF] += 1
        else:
            acc[NEG_INF] += 1
        return
    if x == 0.0:
        return
    m, e = math.frexp(x)                  # x = m 2^e, 0.5 <= |m| < 1
    mant = np.int64(abs(m) * _TWO53)      # 53-bit integer, exact
    p = e - 53 + 1074                     # bit position of mant's lowest bit above 2^-1074
    if p < 0:                             # subnormal: the low bits of mant are zero
        mant >>= -p
        p = 0
    q, s = p >> 5, p & 31
    lo = (mant & _MASK) << s              # < 2^63
    hi = (mant >> 32) << s                # < 2^53
    sign = 1 if x > 0.0 else -1
    acc[q] += sign * (lo & _MASK)
    acc[q + 1] += sign * ((lo >> 32) + (hi & _MASK))
    acc[q + 2] += sign * (hi >> 32)


@numba.njit(cache=True)
def accumulate_into(acc, values):
    """acc += every element of `values` (1-D), exactly."""
    for i in range(values.shape[0]):
        add(acc, values[i])


@numba.njit(cache=True, inline="always")
def _carry(a):
    """Propagate the carries: every digit into [0, 2^32), the sign in the top one."""
    for i in range(LIMBS - 1):
        c = a[i] >> 32
        a[i] -= c << 32
        a[i + 1] += c


@numba.njit(cache=True)
def _round(acc, a):
    """The exact value of acc rounded to the nearest double (ties to even); `a` (LIMBS,) is scratch."""
    if acc[NAN] > 0 or (acc[POS_INF] > 0 and acc[NEG_INF] > 0):
        return math.nan
    if acc[POS_INF] > 0:
        return math.inf
    if acc[NEG_INF] > 0:
        return -math.inf
    for i in range(LIMBS):
        a[i] = acc[i]
    _carry(a)
    negative = a[LIMBS - 1] < 0
    if negative:
        for i in range(LIMBS):
            a[i] = -a[i]
        _carry(a)
    h = LIMBS - 1
    while h >= 0 and a[h] == 0:
        h -= 1
    if h < 0:
        return 0.0
    b = 0
    top_digit = a[h]
    while top_digit > 0:
        b += 1
        top_digit >>= 1
    nbits = 32 * h + b                    # the exact value is an integer of nbits bits times 2^-1074
    if nbits <= 53:                       # at most 53 bits: exact (also every subnormal)
        v = a[0] + (a[1] << 32) if h >= 1 else a[0]
        r = math.ldexp(float(v), -1074)
        return -r if negative else r
    shift = nbits - 64                    # the lowest of the 64 leading bits
    sticky = False
    if shift < 0:
        top = np.uint64(a[0] + (a[1] << 32)) << np.uint64(-shift)
    else:
        q, r = shift >> 5, shift & 31
        top = np.uint64(a[q]) >> np.uint64(r)
        top |= np.uint64(a[q + 1]) << np.uint64(32 - r)
        if r > 0 and q + 2 < LIMBS:
            top |= np.uint64(a[q + 2]) << np.uint64(64 - r)
        if r > 0 and (a[q] & ((1 << r) - 1)) != 0:
            sticky = True
        for i in range(q):
            if a[i] != 0:
                sticky = True
    mant = top >> np.uint64(11)                       # the 53 leading bits
    half = (top >> np.uint64(10)) & np.uint64(1)      # the next bit
    if (top & np.uint64(0x3FF)) != 0:
        sticky = True
    if half == 1 and (sticky or (mant & np.uint64(1)) == 1):
        mant += np.uint64(1)
    r = math.ldexp(float(mant), shift + 11 - 1074)    # mant <= 2^53: exact; inf beyond the range
    return -r if negative else r


@numba.njit(cache=True)
def _value(acc):
    return _round(acc, np.empty(LIMBS, dtype=np.int64))


@numba.njit(cache=True)
def _values(accs, out):
    a = np.empty(LIMBS, dtype=np.int64)
    for k in range(accs.shape[0]):
        out[k] = _round(accs[k], a)


@numba.njit(cache=True)
def _prefix(start, values, out):
    acc = start.copy()
    a = np.empty(LIMBS, dtype=np.int64)
    for i in range(values.shape[0]):
        add(acc, values[i])
        out[i] = _round(acc, a)


def zeros(*shape: int) -> np.ndarray:
    """Empty accumulators (shape..., WIDTH)."""
    return np.zeros((*shape, WIDTH), dtype=np.int64)


def accumulate(values) -> np.ndarray:
    """A new accumulator holding the exact sum of `values` (any shape, flattened)."""
    acc = zeros()
    accumulate_into(acc, np.ascontiguousarray(values, dtype=np.float64).ravel())
    return acc


def value(acc: np.ndarray) -> float:
    """The exact sum an accumulator holds, rounded to the nearest double."""
    return float(_value(np.ascontiguousarray(acc, dtype=np.int64)))


def values(accs: np.ndarray) -> np.ndarray:
    """`value` of every accumulator of accs (q, WIDTH)."""
    out = np.empty(accs.shape[0])
    _values(np.ascontiguousarray(accs, dtype=np.int64), out)
    return out


def prefix(start: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The running sums start + x[0] + ... + x[i], each exact then rounded (non-decreasing for x >= 0)."""
    out = np.empty(x.shape[0])
    _prefix(np.ascontiguousarray(start, dtype=np.int64), np.ascontiguousarray(x, dtype=np.float64), out)
    return out


def fsum(values) -> float:
    """The exactly rounded sum of `values` (like math.fsum, but an overflowing sum is inf, not an error)."""
    return value(accumulate(values))
