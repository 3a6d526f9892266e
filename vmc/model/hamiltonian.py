r"""The Hamiltonian as a list of named terms, and the observables measured beside it (atomic units).

    H = sum_i ( -1/2 nabla_i^2 + 1/2 omega^2 r_i^2 ) + sum_{i<j} 1 / r_ij
      =            kinetic      +       trap          +   interaction

The local energy E_L = (H psi) / psi needs only the gradient and the diagonal second derivatives of
ln psi in the M = P*D coordinates:

    kinetic_L = -1/2 sum_k [ (d_k ln psi)^2 + d_k^2 ln psi ],   trap = 1/2 omega^2 sum_k x_k^2,
    interaction = sum_{i<j} 1 / r_ij.

`TERMS` declares the terms, in the order of every output column (HDF5 datasets, the iteration record,
`vmc analyze`, `vmc report`, the summary); E_L is their sum. `OBSERVABLES` are measured beside them
(the mean pair distance) but are not part of E_L. A term is a `typing.NamedTuple` of its constants
with a numba kernel `value(t, x, grad, lap)` registered by `term`; adding one (a screened Coulomb
interaction, an anisotropic trap) is one class, one kernel and one entry in `TERMS`. The parts are kept
separate because they are reported separately (and the virial theorem <T> = <V_trap> checks the
non-interacting case).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numba
import numpy as np
from numba import types
from numba.extending import overload

_KERNELS: dict = {}


def value(t, x, grad, lap):
    """The local value of term `t` at x, given grad and lap of ln psi (numba only)."""
    raise NotImplementedError("numba only")


def _value_typer(t, x, grad, lap):
    if isinstance(t, types.BaseNamedTuple) and t.instance_class in _KERNELS:
        kernel = _KERNELS[t.instance_class]
        return getattr(kernel, "py_func", kernel)
    return None


overload(value, inline="always")(_value_typer)


def term(cls):
    """Register the numba kernel `value(t, x, grad, lap)` of the term class `cls`."""
    def register(kernel):
        _KERNELS[cls] = kernel
        return kernel
    return register


@numba.njit(cache=True, inline="always")
def pair_distance(x, i, j, dimensions):
    """r_ij = |x_i - x_j| for particles i, j of the flat coordinates x."""
    r2 = 0.0
    for d in range(dimensions):
        diff = x[i * dimensions + d] - x[j * dimensions + d]
        r2 += diff * diff
    return math.sqrt(r2)


class Kinetic(NamedTuple):
    scale: float = 0.5       # hbar^2 / (2 m) in atomic units


@term(Kinetic)
@numba.njit(cache=True)
def kinetic(t, x, grad, lap):
    """T_L = -1/2 sum_k [ (d_k ln psi)^2 + d_k^2 ln psi ]."""
    s = 0.0
    for k in range(grad.shape[0]):
        s += grad[k] * grad[k] + lap[k]
    return -t.scale * s


class Trap(NamedTuple):
    omega: float


@term(Trap)
@numba.njit(cache=True)
def trap(t, x, grad, lap):
    """V_trap = 1/2 omega^2 sum_k x_k^2."""
    s = 0.0
    for k in range(x.shape[0]):
        s += x[k] * x[k]
    return 0.5 * t.omega * t.omega * s


class Coulomb(NamedTuple):
    particles: int
    dimensions: int
    on: bool


@term(Coulomb)
@numba.njit(cache=True)
def coulomb(t, x, grad, lap):
    """V_int = sum_{i<j} 1 / r_ij (0 when switched off)."""
    if not t.on:
        return 0.0
    inv = 0.0
    for i in range(t.particles):
        for j in range(i + 1, t.particles):
            inv += 1.0 / pair_distance(x, i, j, t.dimensions)
    return inv


class PairDistance(NamedTuple):
    particles: int
    dimensions: int


@term(PairDistance)
@numba.njit(cache=True)
def mean_pair_distance(t, x, grad, lap):
    """The mean of r_ij over the P (P - 1) / 2 pairs (0 for one particle)."""
    dist = 0.0
    for i in range(t.particles):
        for j in range(i + 1, t.particles):
            dist += pair_distance(x, i, j, t.dimensions)
    n_pairs = t.particles * (t.particles - 1) // 2
    if n_pairs > 0:
        dist /= n_pairs
    return dist


@dataclass(frozen=True)
class Entry:
    name: str         # dataset and column name
    symbol: str       # how tables and figures show its mean
    build: Callable   # (particles, dimensions, omega, interaction) -> the term's NamedTuple


TERMS: tuple[Entry, ...] = (
    Entry("kinetic", "<T>", lambda P, D, omega, on: Kinetic()),
    Entry("trap", "<V_trap>", lambda P, D, omega, on: Trap(omega)),
    Entry("interaction", "<V_int>", lambda P, D, omega, on: Coulomb(P, D, on)),
)
OBSERVABLES: tuple[Entry, ...] = (
    Entry("pair_distance", "<r_12>", lambda P, D, omega, on: PairDistance(P, D)),
)
TERM_NAMES = tuple(e.name for e in TERMS)              # E_L = their sum
OBSERVABLE_NAMES = TERM_NAMES + tuple(e.name for e in OBSERVABLES)   # the measured columns, in order
SYMBOLS = {e.name: e.symbol for e in TERMS + OBSERVABLES}
N_TERMS, N_OBSERVABLES = len(TERM_NAMES), len(OBSERVABLE_NAMES)


def measure(terms, x, grad, lap, out):
    """out[k] = the k-th term or observable of the tuple `terms` (see `Hamiltonian.kernel_terms`); numba
    only, unrolled at compile time like the sums over factors in `vmc.model.wavefunction`."""
    raise NotImplementedError("numba only")


def _measure_typer(terms, x, grad, lap, out):
    """out[0] = value(terms[0], ...), out[1] = value(terms[1], ...), ... generated for the tuple's length."""
    lines = ["def impl(terms, x, grad, lap, out):"]
    lines += [f"    out[{k}] = value(terms[{k}], x, grad, lap)" for k in range(len(terms))]
    namespace = {}
    exec("\n".join(lines), {"value": value}, namespace)
    return namespace["impl"]


overload(measure, inline="always")(_measure_typer)


@numba.njit(cache=True)
def _measure_all(terms, x, grad, lap, out):
    measure(terms, x, grad, lap, out)


class Hamiltonian:
    """H for P particles in D dimensions, trap frequency omega, Coulomb on/off: builds the tuple of
    terms and observables the kernels evaluate."""

    def __init__(self, particles: int, dimensions: int, omega: float, interaction: bool = True):
        self.particles, self.dimensions = particles, dimensions
        self.omega, self.interaction = float(omega), bool(interaction)

    def kernel_terms(self) -> tuple:
        args = (self.particles, self.dimensions, self.omega, self.interaction)
        return tuple(e.build(*args) for e in TERMS + OBSERVABLES)

    def local_values(self, x, grad, lap) -> np.ndarray:
        """The terms and observables (`OBSERVABLE_NAMES`) at x, given grad and lap of ln psi; E_L is the sum
        of the first `N_TERMS`. The kernels' code path, callable from Python."""
        out = np.empty(N_OBSERVABLES)
        _measure_all(self.kernel_terms(), np.ascontiguousarray(x, dtype=np.float64), np.ascontiguousarray(grad),
                     np.ascontiguousarray(lap), out)
        return out
