r"""An exchange-symmetric RBM: one-body hidden units shared by all particles, and pair hidden units fed
by the distances r_ij (a neural Jastrow factor in RBM form).

    ln psi = g [ -sum_i |r_i - a|^2 / (2 sigma^2) + sum_i sum_h softplus(b_h + r_i . W_h / sigma^2) ]
             + sum_{i<j} G(r_ij),      G(r) = sum_k softplus(c_k + sum_m V_mk phi_m(r)),
    phi_m(r) = exp(-omega r^2 / s_m),  s_m = 1/4, 1, 4   (Gaussians of width 1/2, 1, 2 trap lengths)

Why this form. The coordinate RBM couples coordinate k to hidden unit j by W_kj, so exchanging two
particles changes psi (the README admits it). Here every particle sees the same one-body hidden units
(weights shared: psi is a product over particles of one one-body function, times the Gaussian), and
correlations enter only through functions of r_ij, so psi is symmetric under every exchange of two
particles whatever the parameters, and the determinants alone carry the antisymmetry. The pair
features are even, smooth and bounded in r: G has zero slope at r = 0, so it leaves the electron-electron
cusp to the Padé-Jastrow factor (which satisfies Kato's condition exactly) and adds a flexible,
bounded correlation at the scale of the trap; softplus of a linear map of the features is an RBM's
marginal over binary pair hidden units, prod_{i<j} prod_k (1 + exp(c_k + V_k . phi(r_ij))).

Derivatives (s = sigmoid, s' = s (1 - s); Delta = r_i - r_j; phi_m' = -2 omega r / s_m phi_m,
phi_m'' = (-2 omega / s_m + 4 omega^2 r^2 / s_m^2) phi_m; h = G'/r is finite at r = 0):

    d_{id} ln psi   = g [ -(x_id - a_d) + sum_h W_dh s(u_ih) ] / sigma^2 + sum_{j != i} h(r_ij) Delta_d
    d_{id}^2 ln psi = g [ -1/sigma^2 + sum_h W_dh^2 s'(u_ih) / sigma^4 ]
                      + sum_{j != i} [ h + (G'' - h) Delta_d^2 / r^2 ]
    G'(r) = sum_k s(v_k) sum_m V_mk phi_m',  G'' = sum_k [ s'(v_k) (sum_m V_mk phi_m')^2 + s(v_k) sum_m V_mk phi_m'' ]
    d/dc_k = sum_{i<j} s(v_ijk),  d/dV_mk = sum_{i<j} s(v_ijk) phi_m(r_ij),  and the one-body
    derivatives as for the coordinate RBM summed over particles (see `vmc.model.factors.rbm`).

This module is written only against `vmc.model.factors.contract`; the trial state selects it with
`wavefunction.rbm = "symmetric"` (`wavefunction.pair_hidden` pair units).
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .contract import implements
from .rbm import sigmoid, softplus

FEATURE_SCALES = (0.25, 1.0, 4.0)   # s_m: phi_m(r) = exp(-omega r^2 / s_m)


class SymmetricData(NamedTuple):
    a: np.ndarray          # (D,) centre of the Gaussian
    b: np.ndarray          # (N,) one-body hidden biases
    W: np.ndarray          # (D, N) one-body weights, shared by all particles
    c: np.ndarray          # (K,) pair hidden biases
    V: np.ndarray          # (F, K) pair weights
    sigma: np.ndarray      # (1,)
    inv_s: np.ndarray      # (F,) omega / s_m
    g: float
    P: int
    D: int
    slot: int              # first entry of [a, b, W, c, V] in d ln psi / d theta
    sigma_slot: int
    u: np.ndarray          # (walkers, P, N) one-body pre-activations
    sp: np.ndarray         # (walkers, P, N) softplus(u)
    pair: np.ndarray       # (walkers, P, P) G(r_ij)
    u_new: np.ndarray      # (N,) scratch
    sp_new: np.ndarray     # (N,)
    pair_new: np.ndarray   # (P,) G(r_ij') for the proposal
    phi: np.ndarray        # (F,) scratch
    dphi: np.ndarray       # (F,)
    ddphi: np.ndarray      # (F,)

    WALKER_CACHE = ("u", "sp", "pair")


@numba.njit(cache=True, inline="always")
def _features(f, r):
    """phi_m(r), phi_m'(r) / r and phi_m''(r) into the scratch."""
    for m in range(f.inv_s.shape[0]):
        q = f.inv_s[m]
        e = math.exp(-q * r * r)
        f.phi[m] = e
        f.dphi[m] = -2.0 * q * e
        f.ddphi[m] = (-2.0 * q + 4.0 * q * q * r * r) * e


@numba.njit(cache=True, inline="always")
def pair_function(f, r):
    """(G(r), G'(r) / r, G''(r))."""
    _features(f, r)
    G = 0.0
    h = 0.0
    G2 = 0.0
    for k in range(f.c.shape[0]):
        v = f.c[k]
        d1 = 0.0
        d2 = 0.0
        for m in range(f.phi.shape[0]):
            v += f.V[m, k] * f.phi[m]
            d1 += f.V[m, k] * f.dphi[m]
            d2 += f.V[m, k] * f.ddphi[m]
        s = sigmoid(v)
        G += softplus(v)
        h += s * d1
        G2 += s * (1.0 - s) * d1 * d1 * r * r + s * d2
    return G, h, G2


@numba.njit(cache=True, inline="always")
def _distance(x, i, xj_index, xp, D):
    r2 = 0.0
    for d in range(D):
        t = xp[d] - x[xj_index * D + d]
        r2 += t * t
    return math.sqrt(r2)


@numba.njit(cache=True, inline="always")
def _one_body(f, xi, u):
    """u_h = b_h + r_i . W_h / sigma^2 for one particle at xi."""
    inv_s2 = 1.0 / (f.sigma[0] * f.sigma[0])
    for h in range(f.b.shape[0]):
        v = f.b[h]
        for d in range(f.D):
            v += xi[d] * inv_s2 * f.W[d, h]
        u[h] = v


@numba.njit(cache=True)
def sym_init(f, w, x):
    D = f.D
    for i in range(f.P):
        _one_body(f, x[i * D:(i + 1) * D], f.u[w, i])
        for h in range(f.b.shape[0]):
            f.sp[w, i, h] = softplus(f.u[w, i, h])
    for i in range(f.P):
        f.pair[w, i, i] = 0.0
        for j in range(i + 1, f.P):
            G, _, _ = pair_function(f, _distance(x, i, j, x[i * D:(i + 1) * D], D))
            f.pair[w, i, j] = G
            f.pair[w, j, i] = G


@numba.njit(cache=True)
def sym_refresh(f, w, x):
    sym_init(f, w, x)


@numba.njit(cache=True)
def sym_log_value(f, w, x):
    sym_init(f, w, x)
    sigma = f.sigma[0]
    gauss = 0.0
    hidden = 0.0
    for i in range(f.P):
        for d in range(f.D):
            t = x[i * f.D + d] - f.a[d]
            gauss -= t * t
        for h in range(f.b.shape[0]):
            hidden += f.sp[w, i, h]
    pair = 0.0
    for i in range(f.P):
        for j in range(i + 1, f.P):
            pair += f.pair[w, i, j]
    return f.g * (gauss / (2.0 * sigma * sigma) + hidden) + pair, 1.0


@numba.njit(cache=True)
def sym_propose(f, w, x, i, xp, dx):
    D = f.D
    sigma = f.sigma[0]
    _one_body(f, xp, f.u_new)
    s = 0.0
    for d in range(D):
        do = x[i * D + d] - f.a[d]
        dn = xp[d] - f.a[d]
        s -= dn * dn - do * do
    s /= 2.0 * sigma * sigma
    for h in range(f.b.shape[0]):
        f.sp_new[h] = softplus(f.u_new[h])
        s += f.sp_new[h] - f.sp[w, i, h]
    pair = 0.0
    for j in range(f.P):
        if j == i:
            f.pair_new[j] = 0.0
            continue
        G, _, _ = pair_function(f, _distance(x, i, j, xp, D))
        f.pair_new[j] = G
        pair += G - f.pair[w, i, j]
    return f.g * s + pair, 1.0


@numba.njit(cache=True, inline="always")
def _add_grad(f, w, x, i, xi, u, out):
    D = f.D
    inv_s2 = 1.0 / (f.sigma[0] * f.sigma[0])
    for d in range(D):
        v = -(xi[d] - f.a[d])
        for h in range(f.b.shape[0]):
            v += f.W[d, h] * sigmoid(u[h])
        out[d] += f.g * v * inv_s2
    for j in range(f.P):
        if j == i:
            continue
        r = _distance(x, i, j, xi, D)
        _, h, _ = pair_function(f, r)
        for d in range(D):
            out[d] += h * (xi[d] - x[j * D + d])


@numba.njit(cache=True)
def sym_add_grad_current(f, w, x, i, out):
    _add_grad(f, w, x, i, x[i * f.D:(i + 1) * f.D], f.u[w, i], out)


@numba.njit(cache=True)
def sym_add_grad_proposed(f, w, x, i, xp, out):
    _add_grad(f, w, x, i, xp, f.u_new, out)


@numba.njit(cache=True)
def sym_accept(f, w, x, i, xp):
    for h in range(f.b.shape[0]):
        f.u[w, i, h] = f.u_new[h]
        f.sp[w, i, h] = f.sp_new[h]
    for j in range(f.P):
        if j != i:
            f.pair[w, i, j] = f.pair_new[j]
            f.pair[w, j, i] = f.pair_new[j]


@numba.njit(cache=True)
def sym_add_grad_lap(f, w, x, grad, lap):
    D = f.D
    inv_s2 = 1.0 / (f.sigma[0] * f.sigma[0])
    for i in range(f.P):
        for d in range(D):
            k = i * D + d
            gk = -(x[k] - f.a[d])
            lk = 0.0
            for h in range(f.b.shape[0]):
                s = sigmoid(f.u[w, i, h])
                wdh = f.W[d, h]
                gk += wdh * s
                lk += wdh * wdh * (s * (1.0 - s))
            grad[k] += f.g * gk * inv_s2
            lap[k] += f.g * (lk * inv_s2 - 1.0) * inv_s2
    for i in range(f.P):
        for j in range(i + 1, f.P):
            r = _distance(x, i, j, x[i * D:(i + 1) * D], D)
            _, h, G2 = pair_function(f, r)
            for d in range(D):
                delta = x[i * D + d] - x[j * D + d]
                grad[i * D + d] += h * delta
                grad[j * D + d] -= h * delta
                second = h + (G2 - h) * delta * delta / (r * r) if r > 0.0 else G2
                lap[i * D + d] += second
                lap[j * D + d] += second


@numba.njit(cache=True)
def sym_add_dlog(f, w, x, out):
    D, N = f.W.shape
    K = f.c.shape[0]
    F = f.phi.shape[0]
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    g = f.g
    o_b = f.slot + D
    o_W = o_b + N
    o_c = o_W + D * N
    o_V = o_c + K
    d2 = 0.0
    sxw = 0.0
    for i in range(f.P):
        for d in range(D):
            t = x[i * D + d] - f.a[d]
            out[f.slot + d] += g * t * inv_s2
            d2 += t * t
        for h in range(N):
            s = sigmoid(f.u[w, i, h])
            out[o_b + h] += g * s
            xw = 0.0
            for d in range(D):
                out[o_W + d * N + h] += g * x[i * D + d] * s * inv_s2
                xw += x[i * D + d] * f.W[d, h]
            sxw += s * xw
    if f.sigma_slot >= 0:
        out[f.sigma_slot] += g * (d2 - 2.0 * sxw) * inv_s2 / sigma
    for i in range(f.P):
        for j in range(i + 1, f.P):
            _features(f, _distance(x, i, j, x[i * D:(i + 1) * D], D))
            for k in range(K):
                v = f.c[k]
                for m in range(F):
                    v += f.V[m, k] * f.phi[m]
                s = sigmoid(v)
                out[o_c + k] += s
                for m in range(F):
                    out[o_V + m * K + k] += s * f.phi[m]


implements(SymmetricData, init=sym_init, refresh=sym_refresh, log_value=sym_log_value, propose=sym_propose,
           add_grad_current=sym_add_grad_current, add_grad_proposed=sym_add_grad_proposed, accept=sym_accept,
           add_grad_lap=sym_add_grad_lap, add_dlog=sym_add_dlog)


class SymmetricRBM:
    """The exchange-symmetric RBM as a factor: [a (D), b (N), W (D N), c (K), V (F K)] and sigma."""

    name = "rbm"

    def __init__(self, particles: int, dimensions: int, hidden: int, pair_hidden: int, sigma: float,
                 g: float = 0.5, optimize_sigma: bool = False, omega: float = 1.0):
        self.particles, self.dimensions, self.hidden, self.pair_hidden = particles, dimensions, hidden, pair_hidden
        self.g, self.sigma0, self.optimize_sigma, self.omega = float(g), float(sigma), bool(optimize_sigma), omega
        self.inv_s = np.array([omega / s for s in FEATURE_SCALES])

    def parameters(self) -> list[tuple[str, int, bool]]:
        D, N, K, F = self.dimensions, self.hidden, self.pair_hidden, len(FEATURE_SCALES)
        return [("a", D, True), ("b", N, True), ("W", D * N, True), ("c", K, True), ("V", F * K, True),
                ("sigma", 1, self.optimize_sigma)]

    def initial(self) -> dict:
        return {"sigma": self.sigma0}

    def randomize(self, views: dict, rng: np.random.Generator, scale: float) -> None:
        for name in ("a", "b", "W", "c", "V"):
            views[name][:] = rng.normal(0.0, scale, views[name].size)

    def constrain(self, views: dict) -> None:
        if views["sigma"][0] <= 1e-3:
            views["sigma"][0] = 1e-3

    def named(self, views: dict) -> dict:
        D, N, K = self.dimensions, self.hidden, self.pair_hidden
        return {"a": views["a"], "b": views["b"], "W": views["W"].reshape(D, N), "c": views["c"],
                "V": views["V"].reshape(len(FEATURE_SCALES), K)}

    def kernel_data(self, views: dict, slots: dict, n_walkers: int) -> SymmetricData:
        P, D, N, K, F = self.particles, self.dimensions, self.hidden, self.pair_hidden, len(FEATURE_SCALES)
        return SymmetricData(views["a"], views["b"], views["W"].reshape(D, N), views["c"], views["V"].reshape(F, K),
                             views["sigma"], self.inv_s, self.g, P, D, slots["a"], slots["sigma"],
                             np.empty((n_walkers, P, N)), np.empty((n_walkers, P, N)), np.empty((n_walkers, P, P)),
                             np.empty(N), np.empty(N), np.empty(P), np.empty(F), np.empty(F), np.empty(F))
