r"""Transition rules of one particle, shared by the VMC chain (`vmc.mc.samplers`) and the DMC step (`vmc.mc.dmc`).

A rule proposes x_i' from x_i and says what its proposal density contributes to the acceptance; the callers
add |psi(x')/psi(x)|^2 (from the factor contract) and decide. The functions take plain arrays and a random
stream, never the factors: the drift F = 2 grad_i ln|psi| is summed over the factors by the caller.

* Metropolis (brute force): x_i' = x_i + step (U - 1/2), U uniform in [0, 1)^D; symmetric, so nothing enters
  the acceptance.
* Langevin (importance sampling; DMC's drift-diffusion): x_i' = x_i + D F_i(x) dt + sqrt(dt) xi, D = 1/2,
  xi ~ N(0, 1), with the drift limited near nodes and cusps (`limit_drift`), and the ratio of the proposal
  densities G(y; x) = exp(-(y - x - D dt F(x))^2 / (4 D dt)) in the acceptance:
      ln G(x; x') - ln G(x'; x) = [(x' - x - dt F(x)/2)^2 - (x - x' - dt F(x')/2)^2] / (2 dt).

The displacements are per coordinate and take the random numbers drawn by the caller (`vmc.mc.streams`:
`uniform`, `standard_normal` of a VMC walker's or a DMC slot's stream). Why not the stream itself: an inlined
function that takes the stream (or the positions) binds its arrays anew, and across a call with a raise path the
reference counts of that binding are left in the caller's loop
(tests/test_samplers.py::test_the_chain_kernel_counts_no_references_in_its_loops).
The caller also forms x' = x_i + dx in the same loop over the coordinates: in a loop of its own, LLVM versioned
and vectorized the displacement loop of DMC's step (three copies of the normal draw, 10-25 % slower at N = 12).
"""
from __future__ import annotations

import math

import numba


@numba.njit(cache=True, inline="always")
def drift_scale(c):
    """The factor UNR's limit puts on a drift velocity v with c = v^2 dt: (-1 + sqrt(1 + 2c)) / c (1 at c -> 0).

    >>> round(drift_scale(4.0), 12), drift_scale(0.0)
    (0.5, 1.0)
    """
    return (-1.0 + math.sqrt(1.0 + 2.0 * c)) / c if c > 1e-12 else 1.0


@numba.njit(cache=True, inline="always")
def limit_drift(force, dt):
    """Scale the quantum force F = 2 v so that the drift step v dt stays below ~sqrt(2 dt) near nodes
    and cusps (Umrigar, Nightingale, Runge, J. Chem. Phys. 99, 2865 (1993), with a = 1):
        v -> v (-1 + sqrt(1 + 2 v^2 dt)) / (v^2 dt).
    Unchanged to first order for small v dt; the Green's function uses the same limited drift both
    ways, so detailed balance stays exact. Without it a walker next to a node of the determinants is
    thrown far away by the ~1/d drift, the reverse move is never accepted and the walker freezes."""
    v2 = 0.0
    for d in range(force.shape[0]):
        v2 += 0.25 * force[d] * force[d]
    c = v2 * dt
    if c > 1e-12:
        scale = drift_scale(c)
        for d in range(force.shape[0]):
            force[d] *= scale


@numba.njit(cache=True, inline="always")
def drift_force(grad, dt, force):
    """force[:D] = the limited drift force 2 grad[:D] (grad: grad_i ln|psi| of the moving particle)."""
    for d in range(force.shape[0]):
        force[d] = 2.0 * grad[d]
    limit_drift(force, dt)


@numba.njit(cache=True, inline="always")
def metropolis_displacement(step, u):
    """One coordinate of the brute-force displacement, step (u - 1/2), from a uniform u in [0, 1)."""
    return step * (u - 0.5)


@numba.njit(cache=True, inline="always")
def langevin_displacement(force, dt, xi):
    """One coordinate of the Langevin displacement, F dt / 2 + sqrt(dt) xi, from the limited drift force F at x
    and a standard normal xi."""
    return 0.5 * force * dt + math.sqrt(dt) * xi


@numba.njit(cache=True, inline="always")
def langevin_log_ratio(x, first, xp, f_old, f_new, dt):
    """ln G(x; x') - ln G(x'; x) of the Langevin move x_i -> xp, with the limited drift forces f_old at x and
    f_new at x' (4 D dt = 2 dt)."""
    log_green = 0.0
    for d in range(xp.shape[0]):
        back = x[first + d] - xp[d] - 0.5 * dt * f_new[d]
        forth = xp[d] - x[first + d] - 0.5 * dt * f_old[d]
        log_green += forth * forth - back * back
    return log_green / (2.0 * dt)


@numba.njit(cache=True)
def velocity_ratio(grad, P, D, tau):
    """|v_bar| / |v| of UNR for v = grad ln|psi| with each particle's drift limited as in the moves."""
    v2 = 0.0
    vb2 = 0.0
    for i in range(P):
        s2 = 0.0
        for d in range(D):
            s2 += grad[i * D + d] ** 2
        scale = drift_scale(s2 * tau)
        v2 += s2
        vb2 += scale * scale * s2
    return math.sqrt(vb2 / v2) if v2 > 0.0 else 1.0
