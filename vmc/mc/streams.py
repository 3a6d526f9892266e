r"""Random streams: one per VMC walker (a numpy PCG64 Generator), one per DMC slot and step (counter-based).

* VMC: every walker owns a `numpy.random.Generator` (PCG64, spawned from one `SeedSequence`), advanced by its
  chain; a checkpoint stores its state as six uint64 words (`rng_words`, `rng_state`).
* DMC: slots, not walkers, own the random numbers, and they need no state: the move of the walker in slot j
  at step t draws from a SplitMix64 stream seeded by hashing (key, j, t) (`stream`), so a checkpoint holds no
  generator states and a resumed run draws the same numbers (`vmc.mc.dmc`, "Random numbers").

`standard_normal(rng)` and `uniform(rng)` draw from either (`CounterStream` for DMC), so a transition rule
(`vmc.mc.moves`) is written once for both.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

# ----------------------------------------------------------------------------------------------
# Counter-based streams: SplitMix64 seeded by (key, slot, step)
# ----------------------------------------------------------------------------------------------

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_TO_UNIT = 1.0 / 9007199254740992.0   # 2^-53


class CounterStream(NamedTuple):
    """The stream of one (slot, step) (`stream` seeds it): the SplitMix64 counter and the Box-Muller spare
    (spare[0] > 0 flags the cached second normal spare[1])."""
    state: np.ndarray   # uint64 (1,)
    spare: np.ndarray   # float64 (2,)


@numba.njit(cache=True, inline="always")
def _mix(z):
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@numba.njit(cache=True)
def stream(key0, key1, slot, step, rng):
    """Seed the CounterStream rng with the stream of (slot, step) and clear its cached normal."""
    h = _mix(key0 ^ _mix(np.uint64(slot) + key1))
    rng.state[0] = _mix(h ^ _mix(np.uint64(step) * _GOLDEN + key1))
    rng.spare[0] = 0.0


@numba.njit(cache=True)
def counter_stream():
    """A CounterStream to seed with `stream`."""
    return CounterStream(np.zeros(1, dtype=np.uint64), np.zeros(2))


@numba.njit(cache=True, inline="always")
def _uniform(st):
    st[0] += _GOLDEN
    return float(_mix(st[0]) >> _S11) * _TO_UNIT


@numba.njit(cache=True, inline="always")
def _normal(st, spare):
    if spare[0] > 0.0:
        spare[0] = 0.0
        return spare[1]
    u1 = 1.0 - _uniform(st)
    u2 = _uniform(st)
    r = math.sqrt(-2.0 * math.log(u1))
    spare[0] = 1.0
    spare[1] = r * math.sin(2.0 * math.pi * u2)
    return r * math.cos(2.0 * math.pi * u2)


@numba.njit(cache=True)
def uniforms(key0, key1, slot, step, n):
    """n uniforms of the stream (slot, step) (tests, and the comb's u)."""
    rng = counter_stream()
    stream(key0, key1, slot, step, rng)
    out = np.empty(n)
    for k in range(n):
        out[k] = _uniform(rng.state)
    return out


# ----------------------------------------------------------------------------------------------
# Draws from either design
# ----------------------------------------------------------------------------------------------


def uniform(rng):
    """The next uniform in [0, 1) of rng (a numpy Generator or a CounterStream: 53 random bits); numba only."""
    raise NotImplementedError("numba only")


def standard_normal(rng):
    """The next standard normal of rng (a numpy Generator or a CounterStream: Box-Muller); numba only."""
    raise NotImplementedError("numba only")


def _is_counter(rng) -> bool:
    return isinstance(rng, types.BaseNamedTuple) and rng.instance_class is CounterStream


@overload(uniform, inline="always")
def _uniform_of(rng):
    if isinstance(rng, types.NumPyRandomGeneratorType):
        return lambda rng: rng.random()
    if _is_counter(rng):
        return lambda rng: _uniform(rng.state)
    return None


@overload(standard_normal, inline="always")
def _standard_normal_of(rng):
    if isinstance(rng, types.NumPyRandomGeneratorType):
        return lambda rng: rng.standard_normal()
    if _is_counter(rng):
        return lambda rng: _normal(rng.state, rng.spare)
    return None


# ----------------------------------------------------------------------------------------------
# PCG64 states as words (checkpoints)
# ----------------------------------------------------------------------------------------------

_MASK64 = (1 << 64) - 1


def rng_words(states: list[dict]) -> np.ndarray:
    """PCG64 states as uint64 words (n, 6): state and increment (128 bits each, high word first),
    has_uint32, uinteger; `rng_state` inverts it.

    >>> g = np.random.Generator(np.random.PCG64(7))
    >>> rng_state(rng_words([g.bit_generator.state])[0]) == g.bit_generator.state
    True
    """
    out = np.empty((len(states), 6), dtype=np.uint64)
    for w, st in enumerate(states):
        s, inc = st["state"]["state"], st["state"]["inc"]
        out[w] = (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, st["has_uint32"], st["uinteger"])
    return out


def rng_state(words) -> dict:
    hi, lo, ihi, ilo, has, uint = (int(v) for v in words)
    return {"bit_generator": "PCG64", "state": {"state": (hi << 64) | lo, "inc": (ihi << 64) | ilo},
            "has_uint32": has, "uinteger": uint}
