r"""Transition rules of one particle, shared by the VMC chain (`vmc.mc.samplers`) and the DMC step (`vmc.mc.dmc`).

A rule (`Move`: its kind, its size, and DMC's fixed-node flag) proposes x_i' from x_i and `move` returns the
log of the acceptance ratio A = |psi(x')/psi(x)|^2 (the factor contract speaks of ln|psi|, summed by
`vmc.model.wavefunction`) times the ratio of the proposal densities; the caller accepts with probability
min(1, A) from its own uniform (DMC adds the branching weight).

* Metropolis (brute force): x_i' = x_i + step (U - 1/2), U uniform in [0, 1)^D; symmetric, so nothing enters
  the acceptance.
* Langevin (importance sampling; DMC's drift-diffusion): x_i' = x_i + D F_i(x) dt + sqrt(dt) xi, D = 1/2,
  F = 2 grad_i ln|psi| (the drift "force"), xi ~ N(0, 1), with the drift limited near nodes and cusps
  (`limit_drift`, which keeps the sampling exact), and the ratio of the proposal densities
  G(y; x) = exp(-(y - x - D dt F(x))^2 / (4 D dt)) in the acceptance:
      ln G(x; x') - ln G(x'; x) = [(x' - x - dt F(x)/2)^2 - (x - x' - dt F(x')/2)^2] / (2 dt).
* Fixed node (DMC): a move to where psi changes sign is forbidden (A = 0) and counted as a crossing.

A rule draws from the walker's stream (`vmc.mc.streams`) and forms x' = x_i + dx in the same loop over the
coordinates: in a loop of its own, LLVM versioned and vectorized the displacement loop of DMC's step (three
copies of the normal draw, 10-25 % slower at N = 12). The rules are `factor_kernel`s written into their
callers' loops, so no call takes the tuple of factors
(tests/test_samplers.py::test_the_chain_kernel_counts_no_references_in_its_loops).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ..model.wavefunction import add_grad_current_all, add_grad_proposed_all, factor_kernel, propose_all
from .streams import standard_normal, uniform


METROPOLIS, LANGEVIN = 0, 1


class Move(NamedTuple):
    """A one-particle rule: kind (METROPOLIS, LANGEVIN), size (the step or the time step) and whether a move that
    changes the sign of psi is forbidden (DMC's fixed node)."""
    kind: int
    size: float
    fixed_node: bool


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
def drift_force(force, dt):
    """force[:D] = the limited drift force 2 force[:D], from grad_i ln|psi| of the moving particle in force."""
    for d in range(force.shape[0]):
        force[d] *= 2.0
    limit_drift(force, dt)


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


@factor_kernel
def move(factors, w, x, i, rule, rng, xp, dx, f_old, f_new):
    """Propose the move of particle i by `rule` (a `Move`) into xp (dx the displacement); return (ln of the
    acceptance ratio, crossed). The ratio is |psi(x')/psi(x)|^2, times G(x; x') / G(x'; x) for Langevin (f_old,
    f_new: the limited drift forces at x and x'), and -inf for a move psi forbids; with rule.fixed_node also for
    a move that changes the sign of psi, which is then crossed. The caller draws the uniform after this."""
    D = xp.shape[0]
    first = i * D
    dt = rule.size
    if rule.kind == METROPOLIS:
        for d in range(D):
            dx[d] = rule.size * (uniform(rng) - 0.5)
            xp[d] = x[first + d] + dx[d]
    else:
        for d in range(D):
            f_old[d] = 0.0
        add_grad_current_all(factors, w, x, i, f_old)
        drift_force(f_old, dt)
        for d in range(D):
            dx[d] = 0.5 * f_old[d] * dt + math.sqrt(dt) * standard_normal(rng)
            xp[d] = x[first + d] + dx[d]
    log_ratio, sign = propose_all(factors, w, x, i, xp, dx)
    crossed = rule.fixed_node and log_ratio != -np.inf and sign < 0.0          # fixed node: psi would change sign
    if crossed:
        log_ratio = -np.inf
    log_ratio = 2.0 * log_ratio          # |psi|^2
    if rule.kind == LANGEVIN and log_ratio != -np.inf:
        for d in range(D):
            f_new[d] = 0.0
        add_grad_proposed_all(factors, w, x, i, xp, f_new)
        drift_force(f_new, dt)
        log_ratio += langevin_log_ratio(x, first, xp, f_old, f_new, dt)
    return log_ratio, crossed


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
