r"""Random streams, one design for VMC and DMC: counter-based SplitMix64 streams keyed by (key, owner, step).

The draws of owner j (a VMC walker, a DMC slot) at step t (a VMC sweep, a DMC step) come from the stream of
`stream(key0, key1, j, t)`: a SplitMix64 counter seeded by hashing the four numbers, advanced by one draw per
uniform. A stream has no state worth keeping between steps, so a checkpoint holds no generator states, only
the step count, and a resumed run draws the same numbers; which rank runs which owner changes nothing.
`key` is two words of the run's root seed (`key_of`: VMC walkers and DMC slots have different children).

* `uniform(rng)`: 53 random bits in [0, 1).
* `standard_normal(rng)`: Marsaglia and Tsang's ziggurat (G. Marsaglia and W. W. Tsang, "The ziggurat method
  for generating random variables", J. Stat. Softw. 5(8), 2000) with 128 layers on 64-bit draws: 7 bits pick the
  layer, one the sign, 53 the abscissa; the layer's core is accepted at once (97.2 % of the draws), its wedge by
  one more uniform against exp(-x^2/2), the tail beyond R = 3.4426 by Marsaglia's exponential method: 1.04
  64-bit draws per normal (measured), against Box-Muller's two and a logarithm, a sine and a cosine.

VMC walker w's sweep s draws from (walker key, w, s) (`owner_stream`; `seek` positions it at a sweep); DMC's
slot j at step t from (DMC key, j, t).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

# ----------------------------------------------------------------------------------------------
# Counter-based streams: SplitMix64 seeded by (key, owner, step)
# ----------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0   # 2^-53


class CounterStream(NamedTuple):
    """A stream: the SplitMix64 counter `state` (1,) and `key` (4,) uint64: the owner's hash of key0, key1 and the
    owner, key1, the owner and the step `seek(rng, 0)` goes to (VMC; DMC seeds each step with `stream`)."""
    state: np.ndarray
    key: np.ndarray


def key_of(entropy, child: int) -> np.ndarray:
    """Two uint64 words from child `child` of the root seed (`numpy.random.SeedSequence` entropy: an int or
    a list of ints): 0 the initial parameters, 1 the VMC walkers, 2 the DMC slots."""
    return np.random.SeedSequence(entropy, spawn_key=(child,)).generate_state(2, np.uint64)


@numba.njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True, inline="always")
def _owner_hash(key0, key1, owner):
    return _mix(key0 ^ _mix(np.uint64(owner) + key1))


@numba.njit(cache=True, inline="always")
def _start(owner_hash, key1, step):
    return _mix(owner_hash ^ _mix(np.uint64(step) * _GOLDEN + key1))


@numba.njit(cache=True, inline="always")
def stream(key0, key1, owner, step, rng):
    """Seed the CounterStream rng with the stream of (owner, step)."""
    rng.state[0] = _start(_owner_hash(key0, key1, owner), key1, step)


@numba.njit(cache=True, inline="always")
def seek(rng, t):
    """Position rng at step key[3] + t of its owner (key[0] holds the owner's hash, `owner_stream`)."""
    k = rng.key
    rng.state[0] = _start(k[0], k[1], k[3] + np.uint64(t))


@numba.njit(cache=True)
def counter_stream():
    """A CounterStream to seed with `stream`."""
    return CounterStream(np.zeros(1, dtype=np.uint64), np.zeros(4, dtype=np.uint64))


def owner_stream(key: np.ndarray, owner: int, first_step: int) -> CounterStream:
    """The CounterStream of `owner` whose `seek(rng, t)` goes to step first_step + t."""
    key0, key1 = np.uint64(key[0]), np.uint64(key[1])
    return CounterStream(np.zeros(1, dtype=np.uint64),
                         np.array([_owner_hash(key0, key1, owner), key1, owner, first_step], dtype=np.uint64))


@numba.njit(cache=True, inline="always")
def _next(st):
    st[0] += _GOLDEN
    return _mix(st[0])


@numba.njit(cache=True, inline="always")
def _unit(u):
    return float(u >> _S11) * _TO_UNIT


@numba.njit(cache=True, inline="always")
def uniform(rng):
    """The next uniform in [0, 1) of rng (53 random bits)."""
    return _unit(_next(rng.state))


# The ziggurat's 128 layers of equal area V under exp(-x^2/2) (x >= 0): layer i spans [0, X[i]) between the
# heights F[i] and F[i + 1]; X[0] = V / f(R) is the base layer's width were it a rectangle (its tail beyond R).
_LAYERS = 128
_R = 3.442619855899
_V = 9.91256303526217e-3


def _ziggurat_tables() -> tuple[np.ndarray, np.ndarray]:
    x = np.empty(_LAYERS + 1)
    x[0], x[1], x[_LAYERS] = _V / math.exp(-0.5 * _R * _R), _R, 0.0
    for i in range(2, _LAYERS):
        x[i] = math.sqrt(-2.0 * math.log(_V / x[i - 1] + math.exp(-0.5 * x[i - 1] ** 2)))
    return x, np.exp(-0.5 * x * x)


_X, _F = _ziggurat_tables()
_LAYER_BITS, _SIGN_BIT = np.uint64(_LAYERS - 1), np.uint64(7)


@numba.njit(cache=True)
def _tail(st):
    """|x| of a normal beyond R (Marsaglia's exponential rejection)."""
    while True:
        a = -math.log(1.0 - _unit(_next(st))) / _R
        b = -math.log(1.0 - _unit(_next(st)))
        if 2.0 * b > a * a:
            return _R + a


@numba.njit(cache=True, inline="always")
def _ziggurat(st):
    while True:
        u = _next(st)
        i = int(u & _LAYER_BITS)
        x = _unit(u) * _X[i]
        sign = 2.0 * float((u >> _SIGN_BIT) & np.uint64(1)) - 1.0     # no branch: the bit is a coin
        if x < _X[i + 1]:
            return sign * x
        if i == 0:
            return sign * _tail(st)
        if _F[i + 1] + (_F[i] - _F[i + 1]) * _unit(_next(st)) < math.exp(-0.5 * x * x):
            return sign * x


@numba.njit(cache=True, inline="always")
def standard_normal(rng):
    """The next standard normal of rng (the ziggurat)."""
    return _ziggurat(rng.state)


@numba.njit(cache=True, inline="always")
def fill(rng, out, n_uniform):
    """out[:n_uniform] uniforms, the rest of out standard normals (one Gibbs sweep's random numbers)."""
    for k in range(out.shape[0]):
        out[k] = uniform(rng) if k < n_uniform else standard_normal(rng)


@numba.njit(cache=True)
def draws(key0, key1, owner, step, n, normal=False):
    """n uniforms (or standard normals) of the stream (owner, step): tests, the comb's u, starting positions."""
    rng = counter_stream()
    stream(key0, key1, owner, step, rng)
    out = np.empty(n)
    for k in range(n):
        out[k] = standard_normal(rng) if normal else uniform(rng)
    return out
