r"""Gaussian-binary restricted Boltzmann machine (RBM) factor over the particles' coordinates.

The M = P*D coordinates X of P particles in D dimensions are the visible units; there are N
hidden units. With the hidden pre-activations

    u_j(X) = b_j + sum_k X_k W_kj / sigma^2

the RBM's (unnormalised) marginal over the visible units is

    F(X) = exp(-sum_k (X_k - a_k)^2 / (2 sigma^2)) * prod_j (1 + exp(u_j)),

and the factor is psi_RBM = F^g. With g = 1/2 (the default), |psi|^2 = F is exactly the marginal
p(x) of the RBM, which is what makes Gibbs sampling possible; g = 1 is the other common choice.
Because the Gaussian factor of psi is exp(-g x^2 / (2 sigma^2)), the exact non-interacting ground
state exp(-omega x^2 / 2) needs sigma^2 = g / omega (`default_sigma`). The hidden units only add a
convex term (softplus) to ln psi, so they cannot narrow a too-wide envelope: the default width matters.

    ln psi       = g [ -sum_k (x_k - a_k)^2 / (2 sigma^2) + sum_j softplus(u_j) ]
    d_k ln psi   = g [ -(x_k - a_k) + sum_j W_kj s(u_j) ] / sigma^2
    d_k^2 ln psi = g [ -1 / sigma^2 + sum_j W_kj^2 s(u_j) (1 - s(u_j)) / sigma^4 ]
    d/da_k = g (x_k - a_k) / sigma^2,   d/db_j = g s(u_j),   d/dW_kj = g x_k s(u_j) / sigma^2,
    d/dsigma = g [ sum_k (x_k - a_k)^2 - 2 sum_j s(u_j) sum_k x_k W_kj ] / sigma^3

with s the logistic sigmoid. The per-walker cache holds u, softplus(u) and s(u), so a one-particle move
costs O(N D) plus N exponentials (softplus and sigmoid of the proposal share one), and the gradients at
x and x' (the drift) and the local energy cost none. Note that W couples coordinates by index: this factor is not
symmetric under particle exchange (`vmc.model.factors.symmetric` is).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .contract import implements


@numba.njit(cache=True, inline="always")
def softplus(u):
    """ln(1 + e^u), without overflow for large |u|."""
    if u > 0.0:
        return u + math.log1p(math.exp(-u))
    return math.log1p(math.exp(u))


@numba.njit(cache=True, inline="always")
def sigmoid(u):
    """1 / (1 + e^-u), without overflow for large |u|."""
    if u >= 0.0:
        return 1.0 / (1.0 + math.exp(-u))
    e = math.exp(u)
    return e / (1.0 + e)


def default_sigma(omega: float, g: float) -> float:
    """Width that makes the W = 0, a = 0 state exact for the non-interacting trap: sigma^2 = g/omega.

    >>> round(default_sigma(1.0, 0.5) ** 2, 12), default_sigma(1.0, 1.0) ** 2
    (0.5, 1.0)
    """
    return math.sqrt(g / omega)


@numba.njit(cache=True, inline="always")
def softplus_sigmoid(u):
    """(ln(1 + e^u), 1 / (1 + e^-u)) from one exponential, bit-identical to `softplus` and `sigmoid`."""
    if u > 0.0:
        e = math.exp(-u)
        return u + math.log1p(e), 1.0 / (1.0 + e)
    e = math.exp(u)
    return math.log1p(e), e / (1.0 + e)


class RBMData(NamedTuple):
    """Kernel data: parameter views, constants, per-walker cache (u, softplus(u), sigmoid(u)) and scratch.
    The sigmoids are cached because every gradient needs them: the drift at x and x' of an importance-
    sampling move and the local energy then cost no exponential beyond the proposal's N."""
    a: np.ndarray            # (M,)
    b: np.ndarray            # (N,)
    W: np.ndarray            # (M, N)
    sigma: np.ndarray        # (1,) view, so updates of the flat vector are seen
    g: float
    D: int
    slot: int                # first entry of [a, b, W] in d ln psi / d theta
    sigma_slot: int          # entry of sigma, -1 when sigma is fixed
    u: np.ndarray            # (walkers, N) hidden pre-activations
    sp: np.ndarray           # (walkers, N) softplus(u)
    sg: np.ndarray           # (walkers, N) sigmoid(u)
    u_new: np.ndarray        # (N,) scratch: a proposal's u, softplus(u) and sigmoid(u)
    sp_new: np.ndarray
    sg_new: np.ndarray

    WALKER_CACHE = ("u", "sp", "sg")


@numba.njit(cache=True, inline="always")
def hidden_preactivation(x, b, W, sigma, u):
    """u_j = b_j + sum_k x_k W_kj / sigma^2, written into ``u``."""
    inv_s2 = 1.0 / (sigma * sigma)
    M, N = W.shape
    for j in range(N):
        u[j] = b[j]
    for k in range(M):
        xk = x[k] * inv_s2
        for j in range(N):
            u[j] += xk * W[k, j]


@numba.njit(cache=True, inline="always")
def _cache_hidden(f, w):
    for j in range(f.u.shape[1]):
        f.sp[w, j], f.sg[w, j] = softplus_sigmoid(f.u[w, j])


@numba.njit(cache=True)
def rbm_init(f, w, x):
    hidden_preactivation(x, f.b, f.W, f.sigma[0], f.u[w])
    _cache_hidden(f, w)


@numba.njit(cache=True)
def rbm_refresh(f, w, x):
    pass


@numba.njit(cache=True)
def rbm_log_value(f, w, x):
    sigma = f.sigma[0]
    hidden_preactivation(x, f.b, f.W, sigma, f.u_new)
    s = 0.0
    for k in range(x.shape[0]):
        d = x[k] - f.a[k]
        s -= d * d
    s /= 2.0 * sigma * sigma
    for j in range(f.u_new.shape[0]):
        s += softplus(f.u_new[j])
    return f.g * s, 1.0


@numba.njit(cache=True)
def rbm_propose(f, w, x, i, xp, dx):
    """u'_j = u_j + sum_d dx_d W[iD + d, j] / sigma^2, and the change of ln psi."""
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    first = i * f.D
    N = f.u_new.shape[0]
    for j in range(N):
        v = f.u[w, j]
        for d in range(dx.shape[0]):
            v += dx[d] * inv_s2 * f.W[first + d, j]
        f.u_new[j] = v
        f.sp_new[j], f.sg_new[j] = softplus_sigmoid(v)
    s = 0.0
    for d in range(xp.shape[0]):
        k = first + d
        do = x[k] - f.a[k]
        dn = xp[d] - f.a[k]
        s -= dn * dn - do * do
    s /= 2.0 * sigma * sigma
    for j in range(N):
        s += f.sp_new[j] - f.sp[w, j]
    return f.g * s, 1.0


@numba.njit(cache=True, inline="always")
def _add_grad_particle(f, sg, first, xp, out):
    """out += grad_i ln psi = g [-(x_i - a_i) + sum_j W_ij sigmoid(u_j)] / sigma^2 for sigmoids sg."""
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    for d in range(xp.shape[0]):
        k = first + d
        v = -(xp[d] - f.a[k])
        for j in range(sg.shape[0]):
            v += f.W[k, j] * sg[j]
        out[d] += f.g * v * inv_s2


@numba.njit(cache=True)
def rbm_add_grad_current(f, w, x, i, out):
    first = i * f.D
    _add_grad_particle(f, f.sg[w], first, x[first:first + f.D], out)


@numba.njit(cache=True)
def rbm_add_grad_proposed(f, w, x, i, xp, out):
    _add_grad_particle(f, f.sg_new, i * f.D, xp, out)


@numba.njit(cache=True)
def rbm_accept(f, w, x, i, xp):
    for j in range(f.u_new.shape[0]):
        f.u[w, j] = f.u_new[j]
        f.sp[w, j] = f.sp_new[j]
        f.sg[w, j] = f.sg_new[j]


@numba.njit(cache=True)
def rbm_add_grad_lap(f, w, x, grad, lap):
    M, N = f.W.shape
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    sig = f.sg[w]
    for k in range(M):
        gk = -(x[k] - f.a[k])
        lk = 0.0
        for j in range(N):
            wkj = f.W[k, j]
            gk += wkj * sig[j]
            lk += wkj * wkj * (sig[j] * (1.0 - sig[j]))
        grad[k] += f.g * gk * inv_s2
        lap[k] += f.g * (lk * inv_s2 - 1.0) * inv_s2


@numba.njit(cache=True)
def rbm_add_dlog(f, w, x, out):
    M, N = f.W.shape
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    g = f.g
    # sigma first (and its sums only when it is variational): were this branch last, x, f and out would die
    # at different points on its two sides, and the reference counts of the inlined call would stay
    # (atomics in the sweep; see vmc.mc.samplers.run_chain). The sums and the result are unchanged bit for bit.
    if f.sigma_slot >= 0:
        d2 = 0.0
        for k in range(M):
            d = x[k] - f.a[k]
            d2 += d * d
        sxw = 0.0
        for j in range(N):
            xw = 0.0
            for k in range(M):
                xw += x[k] * f.W[k, j]
            sxw += f.sg[w, j] * xw
        out[f.sigma_slot] += g * (d2 - 2.0 * sxw) * inv_s2 / sigma
    for k in range(M):
        out[f.slot + k] += g * (x[k] - f.a[k]) * inv_s2
    off = f.slot + M + N
    for j in range(N):
        s = f.sg[w, j]
        out[f.slot + M + j] += g * s
        for k in range(M):
            out[off + k * N + j] += g * x[k] * s * inv_s2


@numba.njit(cache=True, inline="always")
def rbm_gibbs_sweep(f, w, x, draws, h):
    """One Gibbs update of the RBM joint distribution: h_j | x ~ Bernoulli(s(u_j)), then
    x | h ~ Normal(a + W h, sigma^2), from draws = N uniforms then M standard normals; the cache is recomputed
    for the new x. Samples F(x) (= |psi|^2
    for g = 1/2), so only for a trial state that is this factor alone with g = 1/2."""
    M, N = f.W.shape
    sigma = f.sigma[0]
    for j in range(N):
        h[j] = 1.0 if draws[j] < f.sg[w, j] else 0.0
    for k in range(M):
        mean = f.a[k]
        for j in range(N):
            mean += f.W[k, j] * h[j]
        x[k] = mean + sigma * draws[N + k]
    hidden_preactivation(x, f.b, f.W, sigma, f.u[w])
    _cache_hidden(f, w)


implements(RBMData, init=rbm_init, refresh=rbm_refresh, log_value=rbm_log_value, propose=rbm_propose,
           add_grad_current=rbm_add_grad_current, add_grad_proposed=rbm_add_grad_proposed, accept=rbm_accept,
           add_grad_lap=rbm_add_grad_lap, add_dlog=rbm_add_dlog, gibbs_sweep=rbm_gibbs_sweep)


class RBM:
    """The coordinate RBM as a factor: parameters [a (M), b (N), W (M N, row-major)] and sigma.

    `sigma` is variational only with ``optimize_sigma``; the trial state places it after the other
    variational parameters then, else at the end of the flat vector with the fixed parameters.
    """

    name = "rbm"

    def __init__(self, particles: int, dimensions: int, hidden: int, sigma: float, g: float = 0.5,
                 optimize_sigma: bool = False):
        self.particles, self.dimensions, self.hidden = particles, dimensions, hidden
        self.M, self.N = particles * dimensions, hidden
        self.g, self.sigma0, self.optimize_sigma = float(g), float(sigma), bool(optimize_sigma)

    def parameters(self) -> list[tuple[str, int, bool]]:
        """(name, size, variational) of each parameter block, in order."""
        return [("a", self.M, True), ("b", self.N, True), ("W", self.M * self.N, True),
                ("sigma", 1, self.optimize_sigma)]

    def initial(self) -> dict:
        return {"sigma": self.sigma0}

    def randomize(self, views: dict, rng: np.random.Generator, scale: float) -> None:
        """a, b, W from N(0, scale^2), drawn in one call (a, b, then W row-major)."""
        n = self.M + self.N + self.M * self.N
        draw = rng.normal(0.0, scale, n)
        views["a"][:] = draw[:self.M]
        views["b"][:] = draw[self.M:self.M + self.N]
        views["W"][:] = draw[self.M + self.N:]

    def constrain(self, views: dict) -> None:
        """sigma > 0 (kept >= 1e-3)."""
        if views["sigma"][0] <= 1e-3:
            views["sigma"][0] = 1e-3

    def named(self, views: dict) -> dict:
        """The parameter arrays in their natural shapes, for the output file."""
        return {"a": views["a"], "b": views["b"], "W": views["W"].reshape(self.M, self.N)}

    def kernel_data(self, views: dict, slots: dict, n_walkers: int) -> RBMData:
        N = self.N
        return RBMData(views["a"], views["b"], views["W"].reshape(self.M, N), views["sigma"], self.g,
                       self.dimensions, slots["a"], slots["sigma"], np.empty((n_walkers, N)),
                       np.empty((n_walkers, N)), np.empty((n_walkers, N)), np.empty(N), np.empty(N), np.empty(N))
