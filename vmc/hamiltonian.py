r"""Electrons in an isotropic harmonic trap (a quantum dot), atomic units.

    H = sum_i ( -1/2 nabla_i^2 + 1/2 omega^2 r_i^2 ) + sum_{i<j} 1 / r_ij

The local energy E_L = (H psi) / psi needs only the gradient and diagonal second derivatives of
ln psi in the M = P*D coordinates:

    E_L = -1/2 sum_k [ (d_k ln psi)^2 + d_k^2 ln psi ] + 1/2 omega^2 sum_k x_k^2 + sum_{i<j} 1/r_ij.

The three parts (kinetic, trap, interaction) are kept separate because they are reported separately
(and the virial theorem <T> = <V_trap> checks the non-interacting case).
"""
from __future__ import annotations

import math

import numba

KINETIC, TRAP, INTERACTION, PAIR_DISTANCE = 0, 1, 2, 3
N_OBSERVABLES = 4
OBSERVABLE_NAMES = ("kinetic", "trap", "interaction", "pair_distance")


@numba.njit(cache=True)
def kinetic_energy(grad, lap):
    """T_L = -1/2 sum_k [ (d_k ln psi)^2 + d_k^2 ln psi ]."""
    s = 0.0
    for k in range(grad.shape[0]):
        s += grad[k] * grad[k] + lap[k]
    return -0.5 * s


@numba.njit(cache=True)
def trap_energy(x, omega):
    """V_trap = 1/2 omega^2 sum_k x_k^2."""
    s = 0.0
    for k in range(x.shape[0]):
        s += x[k] * x[k]
    return 0.5 * omega * omega * s


@numba.njit(cache=True, inline="always")
def pair_distance(x, i, j, dimensions):
    """r_ij = |x_i - x_j| for particles i, j of the flat coordinates x."""
    r2 = 0.0
    for d in range(dimensions):
        diff = x[i * dimensions + d] - x[j * dimensions + d]
        r2 += diff * diff
    return math.sqrt(r2)


@numba.njit(cache=True)
def pair_sums(x, particles, dimensions):
    """(sum_{i<j} 1/r_ij, mean r_ij over pairs); (0, 0) for a single particle."""
    inv = 0.0
    dist = 0.0
    for i in range(particles):
        for j in range(i + 1, particles):
            r = pair_distance(x, i, j, dimensions)
            inv += 1.0 / r
            dist += r
    n_pairs = particles * (particles - 1) // 2
    if n_pairs > 0:
        dist /= n_pairs
    return inv, dist


@numba.njit(cache=True)
def local_observables(x, grad, lap, omega, particles, dimensions, interaction, out):
    """Write (T_L, V_trap, V_int, mean r_ij) for configuration x into ``out``; V_int = 0 if switched off.

    E_L = out[0] + out[1] + out[2].
    """
    out[KINETIC] = kinetic_energy(grad, lap)
    out[TRAP] = trap_energy(x, omega)
    inv, dist = pair_sums(x, particles, dimensions)
    out[INTERACTION] = inv if interaction else 0.0
    out[PAIR_DISTANCE] = dist


class Hamiltonian:
    """Parameters of H: P particles in D dimensions, trap frequency omega, Coulomb on/off."""

    def __init__(self, particles: int, dimensions: int, omega: float, interaction: bool = True):
        if omega <= 0:
            raise ValueError(f"omega must be > 0, got {omega}")
        self.particles, self.dimensions = particles, dimensions
        self.omega, self.interaction = float(omega), bool(interaction)
