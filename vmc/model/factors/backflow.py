r"""Backflow: the Slater determinants evaluated at quasi-particle coordinates, so that the nodes can move.

Every other factor of the trial state is positive, so without this one the nodes of psi are those of
the determinants of harmonic-oscillator orbitals and fixed-node DMC cannot do better than them. Here
(Feynman & Cohen, Phys. Rev. 102, 1189 (1956); Kwon, Ceperley & Martin, PRB 48, 12037 (1993))

    psi_BF(x) = det[phi_n(r_i')]_up det[phi_n(r_i')]_down,
    r_i' = r_i + sum_{j != i} eta_{s_ij}(r_ij^2) (r_i - r_j),

with the same Hermite orbitals phi_n as `vmc.model.factors.slater` (in sqrt(omega) x, without their
Gaussian, which stays with the RBM at the true coordinates) and s_ij = 0 for parallel, 1 for
antiparallel spins. eta is a small neural network in RBM form over the pair features of
`vmc.model.factors.symmetric` (neural backflow: Luo & Clark, PRL 122, 226401 (2019)); with q = r^2

    eta_s(q) = E(q) sum_k v_{s,k} sigmoid(z_{s,k}(q)),   z_{s,k} = c_{s,k} + sum_m U_{s,m,k} phi_m(q),
    phi_m(q) = exp(-omega q / s_m) (s_m = 1/4, 1, 4),    E(q) = exp(-omega q / s_E), s_E = 16.

Why this form. (i) eta is a smooth function of q = r^2: it is even and analytic in r_ij at r_ij = 0, so
r' is an analytic function of x and the determinants stay smooth: the backflow adds no kink where two
electrons meet and leaves Kato's cusp to the Padé-Jastrow factor. (ii) The Pauli node stays: for a
parallel pair at r_i = r_j, r_i' = r_j' (their other pairs are in the same channels), so det_up = 0.
(iii) eta is bounded, |eta| <= sum_k |v_k|, and the envelope E (width 4 trap lengths, wider than every
feature: the network shapes eta inside it) sends eta and the displacement eta r to zero far away: an
isolated electron is not moved. (iv) v = 0 gives eta = 0 exactly, r' = r and the plain determinants,
while d ln psi / d v_{s,k} = sum_{i<j} (G_i - G_j).(r_i - r_j) E sigmoid(z_{s,k}) != 0 there, so the
optimizer can switch backflow on; c, U start random (they break the symmetry between hidden units) and
do nothing until v moves. (v) The map is equivariant under exchanges that keep the spin channels, so a
same-spin exchange permutes two rows of one determinant (psi changes sign, |psi| does not) and
exchanging the whole up block with the down block leaves psi unchanged; a single opposite-spin exchange
changes psi, as for the plain determinants (psi is written for a fixed spin assignment).

Derivatives (after López Ríos, Ma, Drummond, Towler & Needs, PRE 74, 066701 (2006)). With
Delta = r_i - r_j, eta' = d eta / dq, eta'' = d^2 eta / dq^2 of the pair,

    B_ij[d, e] = eta delta_de + 2 eta' Delta_d Delta_e                     (symmetric in i <-> j)
    d r'_j / d x_{i,d} = J_ji[d, :]:  J_ii = I + sum_{l != i} B_il,  J_ji = -B_ij (j != i)
    C_ij[d, e] = 2 eta' Delta_e + 4 eta' Delta_d delta_de + 4 eta'' Delta_d^2 Delta_e   (odd in Delta)
    d^2 r'_j / d x_{i,d}^2 = K_ji[d, :]:  K_ii = sum_{l != i} C_il,  K_ji = -C_ij (j != i)

and with A_jn = phi_n(r_j'), F = A^-1 per spin block, G_j = grad_{r_j'} ln|det| = sum_n grad phi_n(r_j') F[n, j],
Q_j[e, l] = sum_n d_e phi_n(r_j') F[n, l], H_j[e, f] = sum_n d_e d_f phi_n(r_j') F[n, j]:

    d_{i,d} ln|psi_BF|   = Tr(F dA) = sum_j J_ji[d] . G_j = G_i[d] + sum_{l != i} (B_il (G_i - G_l))[d]
    d_{i,d}^2 ln|psi_BF| = Tr(F d^2 A) - Tr(F dA F dA)
                         = sum_j [ J_ji[d]^T H_j J_ji[d] + K_ji[d] . G_j ] - sum_blocks sum_{j,l} M_jl M_lj,
                           M_jl = J_ji[d] . Q_j[:, l]   (j, l in one block)
    d ln|psi_BF| / d theta = sum_{i<j} (G_i - G_j) . Delta_ij d eta_{s_ij}(q_ij) / d theta,
    d eta / d v_k = E s_k,  d eta / d c_k = E v_k s_k',  d eta / d U_mk = E v_k s_k' phi_m,

s_k = sigmoid(z_k), s_k' = s_k (1 - s_k). Every particle's move changes every r_j', so `propose` rebuilds
both determinants at x' (Gauss-Jordan with the sign, `invert_slogdet`: O(N^3) per move) into the
scratch, and `accept` copies them in; the cache per walker is eta of every pair (so a move evaluates only
the pairs of the moved particle), r' and both inverses, and stays equal to a fresh `init` (no
incremental update drifts). The local energy costs O(N^3) (the Laplacian sums above, the orbitals'
Hessians at the N quasi-positions). `Backflow` is the factor (`vmc.model.factors.contract`); it replaces
`SlaterDeterminants` in the trial state when `wavefunction.backflow = "rbm"`.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numba
import numpy as np

from .contract import implements
from .rbm import sigmoid
from .slater import hermite3, invert_slogdet, orbitals, quantum_numbers_for
from .symmetric import FEATURE_SCALES

ENVELOPE_SCALE = 16.0   # s_E: E(q) = exp(-omega q / s_E), width 4 trap lengths
CHANNELS = 2            # 0: parallel spins, 1: antiparallel


class BackflowData(NamedTuple):
    qn: np.ndarray         # (n, D) int64 quantum numbers of one spin's orbitals
    omega: float
    P: int
    D: int
    n: int                 # electrons per spin
    v: np.ndarray          # (2, K) output weights per channel
    c: np.ndarray          # (2, K) hidden biases
    U: np.ndarray          # (2, F, K) feature weights
    inv_s: np.ndarray      # (F,) omega / s_m
    env_q: float           # omega / s_E
    slots: np.ndarray      # (3,) first entries of v, c, U in d ln psi / d theta (-1: fixed)
    eta: np.ndarray        # (walkers, P, P) eta of every pair (0 on the diagonal)
    rq: np.ndarray         # (walkers, P, D) quasi-positions r'
    dinv: np.ndarray       # (walkers, 2, n, n) inverses of the determinants at r'
    logdet: np.ndarray     # (walkers, 2) ln|det| per block
    sign: np.ndarray       # (walkers, 2) sign of det per block
    # proposal scratch
    x_new: np.ndarray      # (P D,) coordinates with the moved particle at x'
    eta_new: np.ndarray    # (P, P) eta of every pair at x' (the moved particle's row and column new)
    rq_new: np.ndarray     # (P, D)
    dinv_new: np.ndarray   # (2, n, n)
    logdet_new: np.ndarray  # (2,)
    sign_new: np.ndarray   # (2,)
    # evaluation scratch
    phi: np.ndarray        # (F,) features
    dmat: np.ndarray       # (n, n)
    val: np.ndarray        # (n,) orbitals at one position
    g_orb: np.ndarray      # (n, D)
    l_orb: np.ndarray      # (n, D)
    h_orb: np.ndarray      # (n, D, D) orbital Hessians
    herm: np.ndarray       # (D, 3) H, H', H'' per dimension
    deta: np.ndarray       # (P, P) eta' of every pair
    d2eta: np.ndarray      # (P, P) eta''
    G: np.ndarray          # (P, D) quasi-gradients G_j
    Q: np.ndarray          # (P, D, n) Q_j
    H: np.ndarray          # (P, D, D) H_j
    J: np.ndarray          # (P, D) one row J_ji[d] for all j
    K: np.ndarray          # (P, D) one row K_ji[d]
    M: np.ndarray          # (n, n)

    WALKER_CACHE = ("eta", "rq", "dinv", "logdet", "sign")


# ----------------------------------------------------------------------------------------------
# eta and the quasi-positions
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def channel(f, i, j):
    """0 for a parallel-spin pair, 1 for an antiparallel one."""
    return 0 if i // f.n == j // f.n else 1


@numba.njit(cache=True, inline="always")
def distance2(x, i, j, D):
    q = 0.0
    for d in range(D):
        t = x[i * D + d] - x[j * D + d]
        q += t * t
    return q


@numba.njit(cache=True)
def eta_value(f, s, q):
    """eta_s(q) (E(q) sum_k v_k sigmoid(z_k))."""
    for m in range(f.inv_s.shape[0]):
        f.phi[m] = math.exp(-f.inv_s[m] * q)
    S = 0.0
    for k in range(f.v.shape[1]):
        z = f.c[s, k]
        for m in range(f.phi.shape[0]):
            z += f.U[s, m, k] * f.phi[m]
        S += f.v[s, k] * sigmoid(z)
    return math.exp(-f.env_q * q) * S


@numba.njit(cache=True)
def eta_derivatives(f, s, q):
    """(eta, d eta / dq, d^2 eta / dq^2) of channel s at q = r^2."""
    for m in range(f.inv_s.shape[0]):
        f.phi[m] = math.exp(-f.inv_s[m] * q)
    S = 0.0
    S1 = 0.0
    S2 = 0.0
    for k in range(f.v.shape[1]):
        z = f.c[s, k]
        z1 = 0.0
        z2 = 0.0
        for m in range(f.phi.shape[0]):
            a = f.inv_s[m]
            u = f.U[s, m, k] * f.phi[m]
            z += u
            z1 -= a * u
            z2 += a * a * u
        sg = sigmoid(z)
        s1 = sg * (1.0 - sg)
        s2 = s1 * (1.0 - 2.0 * sg)
        vk = f.v[s, k]
        S += vk * sg
        S1 += vk * s1 * z1
        S2 += vk * (s2 * z1 * z1 + s1 * z2)
    E = math.exp(-f.env_q * q)
    E1 = -f.env_q * E
    E2 = f.env_q * f.env_q * E
    return E * S, E1 * S + E * S1, E2 * S + 2.0 * E1 * S1 + E * S2


@numba.njit(cache=True)
def eta_table(f, x, eta):
    """eta[i, j] = eta_{s_ij}(r_ij^2) for every pair, 0 on the diagonal."""
    for i in range(f.P):
        eta[i, i] = 0.0
        for j in range(i + 1, f.P):
            e = eta_value(f, channel(f, i, j), distance2(x, i, j, f.D))
            eta[i, j] = e
            eta[j, i] = e


@numba.njit(cache=True)
def derivative_tables(f, x):
    """eta' and eta'' of every pair into f.deta, f.d2eta (eta itself is in the walker's cache)."""
    for i in range(f.P):
        f.deta[i, i] = 0.0
        f.d2eta[i, i] = 0.0
        for j in range(i + 1, f.P):
            _, e1, e2 = eta_derivatives(f, channel(f, i, j), distance2(x, i, j, f.D))
            f.deta[i, j] = e1
            f.deta[j, i] = e1
            f.d2eta[i, j] = e2
            f.d2eta[j, i] = e2


@numba.njit(cache=True)
def quasi_positions(x, eta, P, D, rq):
    """rq[i] = r_i + sum_{j != i} eta[i, j] (r_i - r_j)."""
    for i in range(P):
        for d in range(D):
            t = x[i * D + d]
            for j in range(P):
                if j != i:
                    t += eta[i, j] * (x[i * D + d] - x[j * D + d])
            rq[i, d] = t


@numba.njit(cache=True)
def determinants(f, rq, dinv, logdet, sign):
    """Both blocks' inverses at the quasi-positions rq (P, D); ln|det| and sign per block. O(n^3)."""
    for b in range(2):
        for r in range(f.n):
            orbitals(rq[b * f.n + r], f.omega, f.qn, f.dmat[r], f.g_orb, f.l_orb)
        logdet[b], sign[b] = invert_slogdet(f.dmat, dinv[b])


# ----------------------------------------------------------------------------------------------
# Orbitals with their Hessian; gradients through the backflow
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def orbital_hessians(xp, omega, qn, herm, val, grad, hess):
    """phi_n, grad phi_n and the full Hessian hess[n, d, e] = d_d d_e phi_n at one position xp (D,):

        d_d d_e phi_n = H'_{n_d} H'_{n_e} prod_{f != d, e} H_{n_f}      (d != e)
        d_d^2 phi_n   = H''_{n_d} prod_{f != d} H_{n_f}

    with H, H', H'' the Hermite factor and its x-derivatives (`vmc.model.factors.slater.orbitals`). herm (D, 3)
    is scratch."""
    n, D = qn.shape
    sw = math.sqrt(omega)
    for m in range(n):
        for e in range(D):
            k = qn[m, e]
            h, hm1, hm2 = hermite3(k, sw * xp[e])
            herm[e, 0] = h
            herm[e, 1] = sw * 2.0 * k * hm1
            herm[e, 2] = omega * 4.0 * k * (k - 1) * hm2
        p = 1.0
        for e in range(D):
            p *= herm[e, 0]
        val[m] = p
        for d in range(D):
            g = herm[d, 1]
            for e in range(D):
                if e != d:
                    g *= herm[e, 0]
            grad[m, d] = g
            for e in range(D):
                t = herm[d, 2] if e == d else herm[d, 1] * herm[e, 1]
                for o in range(D):
                    if o != d and o != e:
                        t *= herm[o, 0]
                hess[m, d, e] = t


@numba.njit(cache=True)
def quasi_gradients(f, rq, dinv, G):
    """G[j] = grad_{r_j'} ln|det of j's block| = sum_n grad phi_n(r_j') F[n, j]."""
    for j in range(f.P):
        orbitals(rq[j], f.omega, f.qn, f.val, f.g_orb, f.l_orb)
        F = dinv[j // f.n]
        col = j % f.n
        for e in range(f.D):
            t = 0.0
            for m in range(f.n):
                t += f.g_orb[m, e] * F[m, col]
            G[j, e] = t


@numba.njit(cache=True)
def particle_gradient(f, x, i, rq, dinv, out):
    """out += grad_{r_i} ln|psi_BF| = G_i + sum_{l != i} B_il (G_i - G_l) at the coordinates x with the
    quasi-positions rq and inverses dinv that belong to x. O(N n D) plus the orbitals at N positions."""
    D = f.D
    quasi_gradients(f, rq, dinv, f.G)
    for d in range(D):
        out[d] += f.G[i, d]
    for o in range(f.P):
        if o == i:
            continue
        e0, e1, _ = eta_derivatives(f, channel(f, i, o), distance2(x, i, o, D))
        proj = 0.0
        for e in range(D):
            proj += (x[i * D + e] - x[o * D + e]) * (f.G[i, e] - f.G[o, e])
        for d in range(D):
            out[d] += e0 * (f.G[i, d] - f.G[o, d]) + 2.0 * e1 * (x[i * D + d] - x[o * D + d]) * proj


@numba.njit(cache=True)
def prepare_local(f, w, x):
    """The tables of the Laplacian: eta', eta'' of every pair, and at every quasi-position r_j' the
    quasi-gradient G_j, Q_j[e, o] (o in j's block) and H_j."""
    derivative_tables(f, x)
    for j in range(f.P):
        orbital_hessians(f.rq[w, j], f.omega, f.qn, f.herm, f.val, f.g_orb, f.h_orb)
        F = f.dinv[w, j // f.n]
        col = j % f.n
        for e in range(f.D):
            for o in range(f.n):
                t = 0.0
                for m in range(f.n):
                    t += f.g_orb[m, e] * F[m, o]
                f.Q[j, e, o] = t
            f.G[j, e] = f.Q[j, e, col]
            for g in range(f.D):
                t = 0.0
                for m in range(f.n):
                    t += f.h_orb[m, e, g] * F[m, col]
                f.H[j, e, g] = t


@numba.njit(cache=True)
def jacobian_row(f, w, x, i, d):
    """f.J[j] = d r_j' / d x_{i,d} and f.K[j] = d^2 r_j' / d x_{i,d}^2 for every j (module docstring)."""
    D = f.D
    for j in range(f.P):
        for e in range(D):
            f.J[j, e] = 0.0
            f.K[j, e] = 0.0
    f.J[i, d] = 1.0
    for o in range(f.P):
        if o == i:
            continue
        e0 = f.eta[w, i, o]
        e1 = f.deta[i, o]
        e2 = f.d2eta[i, o]
        dd = x[i * D + d] - x[o * D + d]
        for e in range(D):
            de = x[i * D + e] - x[o * D + e]
            b = 2.0 * e1 * dd * de
            c = 2.0 * e1 * de + 4.0 * e2 * dd * dd * de
            if e == d:
                b += e0
                c += 4.0 * e1 * dd
            f.J[i, e] += b
            f.J[o, e] -= b
            f.K[i, e] += c
            f.K[o, e] -= c


@numba.njit(cache=True)
def coordinate_grad_lap(f, w):
    """(d_k ln|psi_BF|, d_k^2 ln|psi_BF|) for the coordinate whose Jacobian row is in f.J, f.K."""
    D = f.D
    g = 0.0
    second = 0.0
    for j in range(f.P):
        for e in range(D):
            g += f.J[j, e] * f.G[j, e]
            second += f.K[j, e] * f.G[j, e]
            for h in range(D):
                second += f.H[j, e, h] * f.J[j, e] * f.J[j, h]
    trace = 0.0
    for b in range(2):
        for a in range(f.n):
            j = b * f.n + a
            for o in range(f.n):
                t = 0.0
                for e in range(D):
                    t += f.J[j, e] * f.Q[j, e, o]
                f.M[a, o] = t
        for a in range(f.n):
            for o in range(f.n):
                trace += f.M[a, o] * f.M[o, a]
    return g, second - trace


# ----------------------------------------------------------------------------------------------
# The contract
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def backflow_init(f, w, x):
    eta_table(f, x, f.eta[w])
    quasi_positions(x, f.eta[w], f.P, f.D, f.rq[w])
    determinants(f, f.rq[w], f.dinv[w], f.logdet[w], f.sign[w])


@numba.njit(cache=True)
def backflow_log_value(f, w, x):
    eta = np.empty((f.P, f.P))
    rq = np.empty((f.P, f.D))
    dinv = np.empty((2, f.n, f.n))
    logdet = np.empty(2)
    sign = np.empty(2)
    eta_table(f, x, eta)
    quasi_positions(x, eta, f.P, f.D, rq)
    determinants(f, rq, dinv, logdet, sign)
    return logdet[0] + logdet[1], sign[0] * sign[1]


@numba.njit(cache=True)
def backflow_propose(f, w, x, i, xp, dx):
    """Rebuild r' and both determinants at x' (particle i at xp) into the scratch. O(N^3)."""
    D, P = f.D, f.P
    for k in range(P * D):
        f.x_new[k] = x[k]
    for d in range(D):
        f.x_new[i * D + d] = xp[d]
    for j in range(P):
        for o in range(P):
            f.eta_new[j, o] = f.eta[w, j, o]
    for o in range(P):
        e = 0.0 if o == i else eta_value(f, channel(f, i, o), distance2(f.x_new, i, o, D))
        f.eta_new[i, o] = e
        f.eta_new[o, i] = e
    quasi_positions(f.x_new, f.eta_new, P, D, f.rq_new)
    determinants(f, f.rq_new, f.dinv_new, f.logdet_new, f.sign_new)
    s = f.sign_new[0] * f.sign_new[1]
    if s == 0.0:
        return -np.inf, 0.0
    return f.logdet_new[0] + f.logdet_new[1] - f.logdet[w, 0] - f.logdet[w, 1], s * f.sign[w, 0] * f.sign[w, 1]


@numba.njit(cache=True)
def backflow_add_grad_current(f, w, x, i, out):
    particle_gradient(f, x, i, f.rq[w], f.dinv[w], out)


@numba.njit(cache=True)
def backflow_add_grad_proposed(f, w, x, i, xp, out):
    """The gradient at x' from the proposal's scratch (quasi-positions and inverses at x')."""
    particle_gradient(f, f.x_new, i, f.rq_new, f.dinv_new, out)


@numba.njit(cache=True)
def backflow_accept(f, w, x, i, xp):
    for o in range(f.P):
        f.eta[w, i, o] = f.eta_new[i, o]
        f.eta[w, o, i] = f.eta_new[i, o]
    for j in range(f.P):
        for d in range(f.D):
            f.rq[w, j, d] = f.rq_new[j, d]
    for b in range(2):
        f.logdet[w, b] = f.logdet_new[b]
        f.sign[w, b] = f.sign_new[b]
        for r in range(f.n):
            for c in range(f.n):
                f.dinv[w, b, r, c] = f.dinv_new[b, r, c]


@numba.njit(cache=True)
def backflow_add_grad_lap(f, w, x, grad, lap):
    prepare_local(f, w, x)
    for i in range(f.P):
        for d in range(f.D):
            jacobian_row(f, w, x, i, d)
            g, l2 = coordinate_grad_lap(f, w)
            grad[i * f.D + d] += g
            lap[i * f.D + d] += l2


@numba.njit(cache=True)
def backflow_add_dlog(f, w, x, out):
    """sum_{i<j} (G_i - G_j) . Delta_ij d eta_{s_ij} / d theta (module docstring)."""
    D = f.D
    K = f.v.shape[1]
    F = f.inv_s.shape[0]
    quasi_gradients(f, f.rq[w], f.dinv[w], f.G)
    for i in range(f.P):
        for j in range(i + 1, f.P):
            s = channel(f, i, j)
            q = distance2(x, i, j, D)
            proj = 0.0
            for e in range(D):
                proj += (x[i * D + e] - x[j * D + e]) * (f.G[i, e] - f.G[j, e])
            proj *= math.exp(-f.env_q * q)
            for m in range(F):
                f.phi[m] = math.exp(-f.inv_s[m] * q)
            for k in range(K):
                z = f.c[s, k]
                for m in range(F):
                    z += f.U[s, m, k] * f.phi[m]
                sg = sigmoid(z)
                dz = proj * f.v[s, k] * sg * (1.0 - sg)
                if f.slots[0] >= 0:
                    out[f.slots[0] + s * K + k] += proj * sg
                if f.slots[1] >= 0:
                    out[f.slots[1] + s * K + k] += dz
                if f.slots[2] >= 0:
                    for m in range(F):
                        out[f.slots[2] + (s * F + m) * K + k] += dz * f.phi[m]


implements(BackflowData, init=backflow_init, refresh=backflow_init, log_value=backflow_log_value,
           propose=backflow_propose, add_grad_current=backflow_add_grad_current,
           add_grad_proposed=backflow_add_grad_proposed, accept=backflow_accept,
           add_grad_lap=backflow_add_grad_lap, add_dlog=backflow_add_dlog)


class Backflow:
    """The backflow determinants as a factor: v, c (2 K each) and U (2 F K) for the parallel (0) and
    antiparallel (1) channels; v starts at 0 (the plain determinants), c and U at random."""

    name = "backflow"

    def __init__(self, particles: int, dimensions: int, omega: float, hidden: int = 4):
        self.particles, self.dimensions, self.omega, self.hidden = particles, dimensions, float(omega), int(hidden)
        self.qn = quantum_numbers_for(particles, dimensions)
        self.inv_s = np.array([omega / s for s in FEATURE_SCALES])

    def parameters(self) -> list[tuple[str, int, bool]]:
        K, F = self.hidden, len(FEATURE_SCALES)
        return [("v", CHANNELS * K, True), ("c", CHANNELS * K, True), ("U", CHANNELS * F * K, True)]

    def initial(self) -> dict:
        return {}

    def randomize(self, views: dict, rng: np.random.Generator, scale: float) -> None:
        for name in ("c", "U"):
            views[name][:] = rng.normal(0.0, scale, views[name].size)

    def constrain(self, views: dict) -> None:
        pass

    def named(self, views: dict) -> dict:
        K, F = self.hidden, len(FEATURE_SCALES)
        return {"v": views["v"].reshape(CHANNELS, K), "c": views["c"].reshape(CHANNELS, K),
                "U": views["U"].reshape(CHANNELS, F, K)}

    def kernel_data(self, views: dict, slots: dict, n_walkers: int) -> BackflowData:
        P, D, F = self.particles, self.dimensions, len(FEATURE_SCALES)
        n = P // 2
        named = self.named(views)
        e = np.empty
        return BackflowData(self.qn, self.omega, P, D, n, named["v"], named["c"], named["U"], self.inv_s,
                            self.omega / ENVELOPE_SCALE, np.array([slots["v"], slots["c"], slots["U"]]),
                            np.zeros((n_walkers, P, P)), e((n_walkers, P, D)), e((n_walkers, 2, n, n)),
                            e((n_walkers, 2)), e((n_walkers, 2)),
                            e(P * D), e((P, P)), e((P, D)), e((2, n, n)), e(2), e(2),
                            e(F), e((n, n)), e(n), e((n, D)), e((n, D)), e((n, D, D)), e((D, 3)), e((P, P)), e((P, P)),
                            e((P, D)), e((P, D, n)), e((P, D, D)), e((P, D)), e((P, D)), e((n, n)))
