r"""Padé-Jastrow factor: the electron-electron cusp the RBM lacks.

    J(X) = exp( sum_{i<j} a_ij f(r_ij) ),   f(r) = r / (1 + beta r)

with a_ij fixed by Kato's cusp condition (for 1/r_ij in D >= 2 dimensions): 1/(D-1) for
antiparallel spins (or distinguishable particles / bosons), 1/(D+1) for parallel spins; beta > 0
is variational. Then E_L stays finite as r_ij -> 0: the kinetic term -a (D-1)/r from f'(0) = 1
cancels the Coulomb 1/r.

Derivatives (f' = 1/(1 + beta r)^2, f'' = -2 beta / (1 + beta r)^3, Delta = x_i - x_j):

    d/dx_{i,d} ln J   = sum_j a_ij f'(r) Delta_d / r
    d^2/dx_{i,d}^2 ln J = sum_j a_ij [ f''(r) Delta_d^2 / r^2 + f'(r) (1/r - Delta_d^2 / r^3) ]
    d ln J / d beta   = -sum_{i<j} a_ij r^2 / (1 + beta r)^2
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from ..hamiltonian import pair_distance
from .contract import implements


def cusp_matrix(particles: int, dimensions: int, fermions: bool) -> np.ndarray:
    """a_ij: spin up = particles 0..P/2-1 for fermions; 1/(D+1) for parallel, 1/(D-1) otherwise.

    >>> cusp_matrix(2, 2, True)
    array([[0., 1.],
           [1., 0.]])
    """
    a = np.full((particles, particles), 1.0 / (dimensions - 1))
    if fermions:
        up = np.arange(particles) < particles // 2
        same = up[:, None] == up[None, :]
        a[same] = 1.0 / (dimensions + 1)
    np.fill_diagonal(a, 0.0)
    return a


@numba.njit(cache=True)
def log_jastrow(x, P, D, cusp, beta):
    """ln J = sum_{i<j} a_ij r_ij / (1 + beta r_ij)."""
    s = 0.0
    for i in range(P):
        for j in range(i + 1, P):
            r = pair_distance(x, i, j, D)
            s += cusp[i, j] * r / (1.0 + beta * r)
    return s


@numba.njit(cache=True, inline="always")
def delta_log_jastrow(x, P, D, cusp, beta, i, xp, r, r_new):
    """ln J(x') - ln J(x) when particle i moves to xp; r (P, P) the distances at x, r_new (P,) receives r'_ij."""
    s = 0.0
    for j in range(P):
        if j == i:
            continue
        r2n = 0.0
        for d in range(D):
            dn = xp[d] - x[j * D + d]
            r2n += dn * dn
        ro = r[i, j]
        rn = math.sqrt(r2n)
        r_new[j] = rn
        s += cusp[i, j] * (rn / (1.0 + beta * rn) - ro / (1.0 + beta * ro))
    return s


@numba.njit(cache=True, inline="always")
def add_drift_jastrow(x, P, D, cusp, beta, i, xp, r_i, out):
    """out += grad_{x_i} ln J with particle i at xp (others at x): sum_j a_ij f'(r) (xp - x_j) / r,
    with r_i[j] = |xp - x_j|."""
    for j in range(P):
        if j == i:
            continue
        r = r_i[j]
        q = 1.0 + beta * r
        c = cusp[i, j] / (q * q * r)
        for d in range(D):
            out[d] += c * (xp[d] - x[j * D + d])


@numba.njit(cache=True, inline="always")
def add_grad_lap_jastrow(x, P, D, cusp, beta, dist, grad, lap):
    """grad += d_k ln J, lap += d_k^2 ln J for every coordinate k; dist (P, P) the pair distances at x."""
    for i in range(P):
        for j in range(i + 1, P):
            r = dist[i, j]
            r2 = r * r
            q = 1.0 + beta * r
            a = cusp[i, j]
            f1 = 1.0 / (q * q)
            f2 = -2.0 * beta / (q * q * q)
            for d in range(D):
                diff = x[i * D + d] - x[j * D + d]
                g = a * f1 * diff / r
                second = a * (f2 * diff * diff / r2 + f1 * (1.0 / r - diff * diff / (r2 * r)))
                grad[i * D + d] += g
                grad[j * D + d] -= g
                lap[i * D + d] += second
                lap[j * D + d] += second


@numba.njit(cache=True, inline="always")
def dlog_jastrow_dbeta(x, P, D, cusp, beta):
    """d ln J / d beta = -sum_{i<j} a_ij r^2 / (1 + beta r)^2."""
    s = 0.0
    for i in range(P):
        for j in range(i + 1, P):
            r = pair_distance(x, i, j, D)
            q = 1.0 + beta * r
            s -= cusp[i, j] * r * r / (q * q)
    return s


# ----------------------------------------------------------------------------------------------
# The factor
# ----------------------------------------------------------------------------------------------


class JastrowData(NamedTuple):
    """The pair distances r_ij of every walker are kept: a move changes only particle i's row, so the drift
    at x needs no square root and the proposal only the P - 1 new distances."""
    cusp: np.ndarray       # (P, P) a_ij
    beta: np.ndarray       # (1,) view of beta in the flat vector
    P: int
    D: int
    slot: int              # entry of beta in d ln psi / d theta
    r: np.ndarray          # (walkers, P, P) r_ij at the walker's positions
    r_new: np.ndarray      # (P,) scratch: the proposal's r'_ij

    WALKER_CACHE = ("r",)


@numba.njit(cache=True)
def jastrow_init(f, w, x):
    r = f.r[w]
    for i in range(f.P):
        r[i, i] = 0.0
        for j in range(i + 1, f.P):
            r[i, j] = r[j, i] = pair_distance(x, i, j, f.D)


@numba.njit(cache=True)
def jastrow_accept(f, w, x, i, xp):
    r, r_new = f.r, f.r_new
    for j in range(f.P):
        if j != i:
            r[w, i, j] = r_new[j]
            r[w, j, i] = r_new[j]


@numba.njit(cache=True)
def jastrow_log_value(f, w, x):
    return log_jastrow(x, f.P, f.D, f.cusp, f.beta[0]), 1.0


@numba.njit(cache=True)
def jastrow_propose(f, w, x, i, xp, dx):
    return delta_log_jastrow(x, f.P, f.D, f.cusp, f.beta[0], i, xp, f.r[w], f.r_new), 1.0


@numba.njit(cache=True)
def jastrow_add_grad_current(f, w, x, i, out):
    add_drift_jastrow(x, f.P, f.D, f.cusp, f.beta[0], i, x[i * f.D:(i + 1) * f.D], f.r[w, i], out)


@numba.njit(cache=True)
def jastrow_add_grad_proposed(f, w, x, i, xp, out):
    add_drift_jastrow(x, f.P, f.D, f.cusp, f.beta[0], i, xp, f.r_new, out)


@numba.njit(cache=True)
def jastrow_add_grad_lap(f, w, x, grad, lap):
    add_grad_lap_jastrow(x, f.P, f.D, f.cusp, f.beta[0], f.r[w], grad, lap)


@numba.njit(cache=True)
def jastrow_add_dlog(f, w, x, out):
    if f.slot >= 0:
        out[f.slot] += dlog_jastrow_dbeta(x, f.P, f.D, f.cusp, f.beta[0])


implements(JastrowData, init=jastrow_init, refresh=jastrow_init, log_value=jastrow_log_value,
           propose=jastrow_propose, add_grad_current=jastrow_add_grad_current,
           add_grad_proposed=jastrow_add_grad_proposed, accept=jastrow_accept,
           add_grad_lap=jastrow_add_grad_lap, add_dlog=jastrow_add_dlog)


class PadeJastrow:
    """The Padé-Jastrow factor: one variational parameter beta (kept >= 0: f(r) = r / (1 + beta r) has a
    pole at r = -1/beta for beta < 0)."""

    name = "jastrow"

    def __init__(self, particles: int, dimensions: int, fermions: bool, beta: float = 1.0):
        self.particles, self.dimensions, self.beta0 = particles, dimensions, float(beta)
        self.cusp = cusp_matrix(particles, dimensions, fermions)

    def parameters(self) -> list[tuple[str, int, bool]]:
        return [("beta", 1, True)]

    def initial(self) -> dict:
        return {"beta": self.beta0}

    def randomize(self, views: dict, rng, scale: float) -> None:
        pass

    def constrain(self, views: dict) -> None:
        if views["beta"][0] < 0.0:
            views["beta"][0] = 0.0

    def named(self, views: dict) -> dict:
        return {"beta": views["beta"]}

    def kernel_data(self, views: dict, slots: dict, n_walkers: int) -> JastrowData:
        P = self.particles
        return JastrowData(self.cusp, views["beta"], P, self.dimensions, slots["beta"], np.empty((n_walkers, P, P)),
                           np.empty(P))
