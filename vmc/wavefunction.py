r"""Gaussian-binary restricted Boltzmann machine (RBM) trial state.

The M = P*D coordinates X of P particles in D dimensions are the visible units; there are N
hidden units. With the hidden pre-activations

    u_j(X) = b_j + sum_k X_k W_kj / sigma^2

the RBM's (unnormalised) marginal over the visible units is

    F(X) = exp(-sum_k (X_k - a_k)^2 / (2 sigma^2)) * prod_j (1 + exp(u_j)),

and the trial state is psi(X) = F(X)^g. With g = 1/2 (the default), |psi|^2 = F is exactly the
marginal p(x) of the TrialState, which is what makes Gibbs sampling possible; g = 1 is the other common
choice. Because the Gaussian factor of psi is exp(-g x^2 / (2 sigma^2)), the exact non-interacting
ground state exp(-omega x^2 / 2) needs sigma^2 = g / omega: 1/(2 omega) for g = 1/2, 1/omega for g = 1
(see `default_sigma`). The hidden units only add a convex term (softplus) to ln psi, so they cannot
narrow a too-wide envelope: the default width matters.

`TrialState` multiplies the RBM by optional Padé-Jastrow (`vmc.jastrow`) and Slater-determinant
(`vmc.slater`) factors. All parameters live in one flat float64 vector
``params = [a (M), b (N), W (M*N, row-major), beta (with the Jastrow factor), sigma]``; `a`, `b`, `W`,
`beta` and `sigma` are views or properties. The first `n_opt` entries are the variational parameters
the optimizers update (sigma is included only with ``optimize_sigma``), so every optimizer works on a
plain vector.

Hot loops are the `numba.njit` kernels below, over plain arrays; `TrialState` only holds the vector.
"""
from __future__ import annotations

import math

import numba
import numpy as np

# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


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


@numba.njit(cache=True)
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


@numba.njit(cache=True)
def log_psi(x, a, b, W, sigma, g):
    """ln psi = g [ -sum_k (x_k - a_k)^2 / (2 sigma^2) + sum_j softplus(u_j) ]."""
    M, N = W.shape
    u = np.empty(N)
    hidden_preactivation(x, b, W, sigma, u)
    s = 0.0
    for k in range(M):
        d = x[k] - a[k]
        s -= d * d
    s /= 2.0 * sigma * sigma
    for j in range(N):
        s += softplus(u[j])
    return g * s


@numba.njit(cache=True)
def grad_lap_log_psi(x, u, a, W, sigma, g, grad, lap, sig, dsig):
    """Gradient and diagonal second derivatives of ln psi in x, given u = u(x).

    d_k ln psi   = g [ -(x_k - a_k) + sum_j W_kj s(u_j) ] / sigma^2
    d_k^2 ln psi = g [ -1 / sigma^2 + sum_j W_kj^2 s(u_j) (1 - s(u_j)) / sigma^4 ]

    with s the logistic sigmoid; results are written into ``grad`` and ``lap`` (length M);
    ``sig`` and ``dsig`` (length N) are scratch space.
    """
    M, N = W.shape
    inv_s2 = 1.0 / (sigma * sigma)
    for j in range(N):
        s = sigmoid(u[j])
        sig[j] = s
        dsig[j] = s * (1.0 - s)
    for k in range(M):
        gk = -(x[k] - a[k])
        lk = 0.0
        for j in range(N):
            w = W[k, j]
            gk += w * sig[j]
            lk += w * w * dsig[j]
        grad[k] = g * gk * inv_s2
        lap[k] = g * (lk * inv_s2 - 1.0) * inv_s2


@numba.njit(cache=True)
def log_psi_grad_params(x, u, a, W, sigma, g, out, sigma_index):
    """d ln F^g / d theta for theta = [a, b, W (row-major)] into out[:M + N + M N], and the sigma
    derivative into out[sigma_index] when sigma_index >= 0:

    d/da_k   = g (x_k - a_k) / sigma^2
    d/db_j   = g s(u_j)
    d/dW_kj  = g x_k s(u_j) / sigma^2
    d/dsigma = g [ sum_k (x_k - a_k)^2 - 2 sum_j s(u_j) sum_k x_k W_kj ] / sigma^3

    """
    M, N = W.shape
    inv_s2 = 1.0 / (sigma * sigma)
    for k in range(M):
        out[k] = g * (x[k] - a[k]) * inv_s2
    off = M + N
    sxw = 0.0
    for j in range(N):
        s = sigmoid(u[j])
        out[M + j] = g * s
        xw = 0.0
        for k in range(M):
            out[off + k * N + j] = g * x[k] * s * inv_s2
            xw += x[k] * W[k, j]
        sxw += s * xw
    if sigma_index >= 0:
        d2 = 0.0
        for k in range(M):
            d = x[k] - a[k]
            d2 += d * d
        out[sigma_index] = g * (d2 - 2.0 * sxw) * inv_s2 / sigma


@numba.njit(cache=True, inline="always")
def softplus_all(u, sp):
    """sp_j = softplus(u_j): cached per walker so a move costs N new softplus evaluations, not 2N."""
    for j in range(u.shape[0]):
        sp[j] = softplus(u[j])


@numba.njit(cache=True, inline="always")
def shift_hidden(u, W, sigma, first, dx, u_new, sp_new):
    """u'_j = u_j + sum_d dx_d W[first + d, j] / sigma^2 and sp'_j = softplus(u'_j): the O(N D)
    update when one particle (coordinates first..first+D-1) moves by dx."""
    inv_s2 = 1.0 / (sigma * sigma)
    N = u.shape[0]
    for j in range(N):
        v = u[j]
        for d in range(dx.shape[0]):
            v += dx[d] * inv_s2 * W[first + d, j]
        u_new[j] = v
        sp_new[j] = softplus(v)


@numba.njit(cache=True, inline="always")
def log_psi_sq_ratio(x, a, sigma, g, first, x_new_p, sp, sp_new):
    """ln |psi(x')|^2 - ln |psi(x)|^2 when only coordinates first..first+D-1 change to x_new_p.

    = 2 g [ -sum_d ((x'_d - a_d)^2 - (x_d - a_d)^2) / (2 sigma^2) + sum_j (softplus(u'_j) - softplus(u_j)) ]
    with sp = softplus(u), sp_new = softplus(u') precomputed.
    """
    s = 0.0
    for d in range(x_new_p.shape[0]):
        k = first + d
        do = x[k] - a[k]
        dn = x_new_p[d] - a[k]
        s -= dn * dn - do * do
    s /= 2.0 * sigma * sigma
    for j in range(sp.shape[0]):
        s += sp_new[j] - sp[j]
    return 2.0 * g * s


@numba.njit(cache=True, inline="always")
def drift_particle(x, u, a, W, sigma, g, first, xp, force):
    """Quantum force F = 2 grad ln psi for the D coordinates of one particle at positions ``xp``.

    ``u`` must be the pre-activations for the configuration in which that particle sits at ``xp``.
    """
    N = u.shape[0]
    inv_s2 = 1.0 / (sigma * sigma)
    for d in range(xp.shape[0]):
        k = first + d
        f = -(xp[d] - a[k])
        for j in range(N):
            f += W[k, j] * sigmoid(u[j])
        force[d] = 2.0 * g * f * inv_s2


# ----------------------------------------------------------------------------------------------
# Parameter container
# ----------------------------------------------------------------------------------------------


def default_sigma(omega: float, g: float) -> float:
    """Width that makes the W = 0, a = 0 state exact for the non-interacting trap: sigma^2 = g/omega.

    >>> default_sigma(1.0, 0.5) ** 2, default_sigma(1.0, 1.0) ** 2
    (0.5, 1.0)
    """
    return math.sqrt(g / omega)


class TrialState:
    """psi = [det D_up det D_down] x F_RBM^g x J: the RBM with optional Padé-Jastrow and Slater factors.

    Parameters live in one flat vector ``params = [a (M), b (N), W (M N), beta (with jastrow), sigma]``;
    `a`, `b`, `W`, `beta`, `sigma` are views/properties, and the first `n_opt` entries (sigma only with
    ``optimize_sigma``) are what the optimizers update. ``fermions`` sets the Jastrow cusp values
    (spin up = particles 0..P/2-1); the determinants need fermions, closed shells and ``omega``.

    >>> wf = TrialState(particles=2, dimensions=2, hidden=3, sigma=1.0)
    >>> wf.n_params, wf.n_opt, wf.W.shape
    (24, 23, (4, 3))
    """

    def __init__(self, particles: int, dimensions: int, hidden: int, sigma: float, g: float = 0.5,
                 optimize_sigma: bool = False, params: np.ndarray | None = None, jastrow: bool = False,
                 slater: bool = False, fermions: bool = True, omega: float = 1.0, beta: float = 1.0):
        if g not in (0.5, 1.0):
            raise ValueError(f"g must be 0.5 or 1.0, got {g}")
        self.particles, self.dimensions, self.hidden = particles, dimensions, hidden
        self.g = float(g)
        self.optimize_sigma = bool(optimize_sigma)
        self.jastrow, self.slater, self.fermions, self.omega = bool(jastrow), bool(slater), bool(fermions), float(omega)
        M, N = particles * dimensions, hidden
        self.n_visible = M
        self.n_rbm = M + N + M * N
        self.beta_index = self.n_rbm if jastrow else -1
        self.n_params = self.n_rbm + int(self.jastrow) + 1
        self.n_opt = self.n_params if optimize_sigma else self.n_params - 1
        self.sigma_index = self.n_params - 1 if optimize_sigma else -1
        if params is None:
            params = np.zeros(self.n_params)
            params[-1] = sigma
            if jastrow:
                params[self.beta_index] = beta
        self.params = np.ascontiguousarray(params, dtype=np.float64)
        if self.params.shape != (self.n_params,):
            raise ValueError(f"params must have length {self.n_params}, got {self.params.shape}")
        self.a = self.params[:M]
        self.b = self.params[M:M + N]
        self.W = self.params[M + N:self.n_rbm].reshape(M, N)
        from .jastrow import cusp_matrix
        self.cusp = cusp_matrix(particles, dimensions, fermions) if jastrow else np.zeros((particles, particles))
        if slater:
            from .slater import quantum_numbers
            if not fermions or particles % 2:
                raise ValueError("Slater determinants need an even number of fermions")
            self.qn = quantum_numbers(particles // 2, dimensions)
        else:
            self.qn = np.zeros((0, dimensions), dtype=np.int64)

    @property
    def sigma(self) -> float:
        return float(self.params[-1])

    @property
    def beta(self) -> float:
        return float(self.params[self.beta_index]) if self.jastrow else 0.0

    @property
    def theta(self) -> np.ndarray:
        """The variational parameters: a view of the first `n_opt` entries of `params`."""
        return self.params[:self.n_opt]

    def constrain(self) -> None:
        """Project the parameters back into their domain after an update: beta >= 0 (the Padé-Jastrow
        f(r) = r / (1 + beta r) has a pole at r = -1/beta for beta < 0), sigma > 0."""
        if self.jastrow and self.params[self.beta_index] < 0.0:
            self.params[self.beta_index] = 0.0
        if self.params[-1] <= 1e-3:
            self.params[-1] = 1e-3

    def randomize(self, rng: np.random.Generator, scale: float) -> "TrialState":
        """Draw a, b, W from N(0, scale^2) (beta and sigma unchanged)."""
        self.params[:self.n_rbm] = rng.normal(0.0, scale, self.n_rbm)
        return self

    def views(self) -> dict[str, np.ndarray]:
        """The named parameter arrays stored beside the flat vector in the output file."""
        return {"a": self.a, "b": self.b, "W": self.W}

    def copy(self) -> "TrialState":
        return TrialState(self.particles, self.dimensions, self.hidden, self.sigma, self.g, self.optimize_sigma,
                          self.params.copy(), self.jastrow, self.slater, self.fermions, self.omega)

    # Python-level conveniences (tests, analysis); the samplers call the kernels directly.
    def hidden_preactivation(self, x: np.ndarray) -> np.ndarray:
        u = np.empty(self.hidden)
        hidden_preactivation(x, self.b, self.W, self.sigma, u)
        return u

    def log_psi(self, x: np.ndarray) -> float:
        """ln |psi(x)|."""
        value = log_psi(x, self.a, self.b, self.W, self.sigma, self.g)
        if self.jastrow:
            from .jastrow import log_jastrow
            value += log_jastrow(x, self.particles, self.dimensions, self.cusp, self.beta)
        if self.slater:
            from .slater import log_det_total
            value += log_det_total(x, self.particles, self.dimensions, self.omega)[0]
        return value

    def sign(self, x: np.ndarray) -> float:
        """Sign of psi(x) (the determinants' sign; +1 without them)."""
        if not self.slater:
            return 1.0
        from .slater import log_det_total
        return float(log_det_total(x, self.particles, self.dimensions, self.omega)[1])

    def grad_lap_log_psi(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Gradient and diagonal second derivatives of ln |psi| in x (sum over the factors)."""
        grad, lap = np.empty(self.n_visible), np.empty(self.n_visible)
        grad_lap_log_psi(x, self.hidden_preactivation(x), self.a, self.W, self.sigma, self.g, grad, lap,
                         np.empty(self.hidden), np.empty(self.hidden))
        if self.jastrow:
            from .jastrow import add_grad_lap_jastrow
            add_grad_lap_jastrow(x, self.particles, self.dimensions, self.cusp, self.beta, grad, lap)
        if self.slater:
            from .slater import grad_lap_log_det_total
            g_det, l_det = grad_lap_log_det_total(x, self.particles, self.dimensions, self.omega)
            grad += g_det
            lap += l_det
        return grad, lap

    def log_psi_grad_params(self, x: np.ndarray) -> np.ndarray:
        """d ln psi / d theta for the `n_opt` variational parameters."""
        out = np.empty(self.n_opt)
        log_psi_grad_params(x, self.hidden_preactivation(x), self.a, self.W, self.sigma, self.g, out,
                            self.sigma_index)
        if self.jastrow:
            from .jastrow import dlog_jastrow_dbeta
            out[self.beta_index] = dlog_jastrow_dbeta(x, self.particles, self.dimensions, self.cusp, self.beta)
        return out
