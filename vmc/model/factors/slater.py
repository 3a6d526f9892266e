r"""Slater determinants of harmonic-oscillator orbitals for closed-shell quantum dots.

P electrons (P even) in D dimensions; the coordinates are one flat array x of length P*D, particle i
owning x[i*D:(i+1)*D]. Particles 0..P/2-1 are spin up, P/2..P-1 spin down, and

    psi_SD(x) = det(D_up) det(D_down),    D_up[i, n] = phi_n(x_i),  i, n = 0..P/2-1.

The orbitals are the Cartesian harmonic-oscillator states WITHOUT their common Gaussian,

    phi_n(x) = prod_d H_{n_d}(sqrt(omega) x_d),

with H_k the physicists' Hermite polynomials (H_0 = 1, H_1 = 2y, H_{k+1} = 2y H_k - 2k H_{k-1},
d/dy H_k = 2k H_{k-1}), so with y = sqrt(omega) x

    d/dx   H_k(y) = sqrt(omega) 2k H_{k-1}(y),
    d2/dx2 H_k(y) = omega 4k(k-1) H_{k-2}(y).

The Gaussian exp(-omega r^2 / 2) shared by all orbitals factors out of the determinant and is
supplied by another factor of the trial state (the W = 0 RBM), so det_up det_down times that Gaussian
is the exact non-interacting ground state of a closed-shell dot, with energy `closed_shell_energy`.
The orbitals use the trap's omega: for a closed shell the orbitals of degree <= S - 1 span the
monomials of degree <= S - 1 whatever their frequency, so another frequency would change the
determinant only by a constant factor (tests/test_slater.py), while the trap's keeps it well
conditioned.

Closed shells: orbitals are ordered by shell n = sum_d n_d (single-particle energy (n + D/2) omega)
and shells 0..S-1 are filled for each spin: binom(S - 1 + D, D) orbitals per spin, i.e.
P = 2, 6, 12, 20, 30, 42, 56, 72, ... in 2D and P = 2, 8, 20, 40, 70, ... in 3D (`closed_shell_numbers`).

Inverse convention: ``Dinv`` is the plain matrix inverse, Dinv[n, i] with
sum_n D[i, n] Dinv[n, j] = delta_ij (rows of D = particles, columns = orbitals). Then

    d_k ln|det D| = sum_n d_k phi_n(x_i) Dinv[n, i]                     (k a coordinate of particle i)
    d_k^2 ln|det D| = sum_n d_k^2 phi_n(x_i) Dinv[n, i] - (d_k ln|det D|)^2
    R = det D' / det D = sum_n phi_n(x_i') Dinv[n, i]                  (particle i moved to x_i')

and after accepting the move the Sherman-Morrison update (rank one, row i replaced)

    Dinv'[:, j] = Dinv[:, j] - Dinv[:, i] (sum_m phi_m(x_i') Dinv[m, j]) / R    (j != i)
    Dinv'[:, i] = Dinv[:, i] / R.

Kernels are `numba.njit` functions over plain arrays; the per-move ones (`orbitals`, `ratio`,
`sherman_morrison`, `slater_add_grad_lap`) allocate nothing: the caller passes scratch arrays val (n,),
g_orb (n, D), l_orb (n, D) and scratch (n,). `SlaterDeterminants` is the factor (`vmc.model.factors.contract`).
"""
from __future__ import annotations

import itertools
import math
from typing import NamedTuple

import numba
import numpy as np

from .contract import implements
from .shells import allowed_text, check_dimension, closed_shell_numbers

# ----------------------------------------------------------------------------------------------
# Closed shells
# ----------------------------------------------------------------------------------------------


def quantum_numbers(n_per_spin: int, D: int) -> np.ndarray:
    """Cartesian quantum numbers (n_per_spin, D) int64 of the filled orbitals of one spin.

    Ordered by shell n = sum_d n_d, and within a shell lexicographically descending
    (2D: (0,0), (1,0), (0,1), (2,0), (1,1), (0,2), ...). Raises ValueError unless
    ``n_per_spin`` fills whole shells (2 n_per_spin in `closed_shell_numbers`).
    """
    check_dimension(D)
    if n_per_spin < 1 or 2 * n_per_spin not in closed_shell_numbers(D, 2 * n_per_spin):
        raise ValueError(f"{2 * n_per_spin} electrons ({n_per_spin} per spin) do not fill closed shells in "
                         f"{D}D; {allowed_text(D, 2 * n_per_spin)}")
    qn = []
    s = 0
    while len(qn) < n_per_spin:
        shell = [t for t in itertools.product(range(s, -1, -1), repeat=D) if sum(t) == s]
        qn.extend(sorted(shell, reverse=True))
        s += 1
    return np.array(qn, dtype=np.int64).reshape(n_per_spin, D)


def quantum_numbers_for(P: int, D: int) -> np.ndarray:
    """`quantum_numbers` for P electrons (P/2 per spin); ValueError for odd or open-shell P."""
    check_dimension(D)
    if int(P) != P or P < 2 or P % 2:
        raise ValueError(f"P = {P!r} is not a closed shell in {D}D (P must be even); "
                         f"{allowed_text(D, P if isinstance(P, int) else 2)}")
    return quantum_numbers(P // 2, D)


def closed_shell_energy(P: int, D: int, omega: float) -> float:
    """Exact non-interacting ground-state energy 2 sum_{filled n} (n + D/2) omega."""
    qn = quantum_numbers_for(P, D)
    return float(2.0 * omega * (qn.sum() + qn.shape[0] * D / 2.0))


# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True, inline="always")
def hermite3(k, y):
    """(H_k(y), H_{k-1}(y), H_{k-2}(y)) by the upward recurrence, with H_{-1} = H_{-2} = 0."""
    h2 = 0.0  # H_{j-2}
    h1 = 0.0  # H_{j-1}
    h0 = 1.0  # H_j
    for j in range(k):
        hn = 2.0 * y * h0 - 2.0 * j * h1
        h2 = h1
        h1 = h0
        h0 = hn
    return h0, h1, h2


@numba.njit(cache=True)
def orbitals(xp, omega, qn, val, grad, lap):
    """Orbital values and derivatives at one particle position xp (D,).

    val[n]     = phi_n(xp) = prod_d H_{n_d}(sqrt(omega) xp_d)
    grad[n, d] = d phi_n / d x_d      = sqrt(omega) 2 n_d H_{n_d - 1}(y_d)      prod_{e != d} H_{n_e}(y_e)
    lap[n, d]  = d^2 phi_n / d x_d^2  = omega 4 n_d (n_d - 1) H_{n_d - 2}(y_d) prod_{e != d} H_{n_e}(y_e)

    The Hermite values come from the three-term recurrence per (orbital, dimension), in scalars (the
    degrees are <= S - 1, tiny), so nothing is allocated. qn is (n, D) int64.
    """
    n, D = qn.shape
    sw = math.sqrt(omega)
    for m in range(n):
        val[m] = 1.0
        for d in range(D):
            grad[m, d] = 1.0
            lap[m, d] = 1.0
        for e in range(D):
            k = qn[m, e]
            h, hm1, hm2 = hermite3(k, sw * xp[e])
            dh = sw * 2.0 * k * hm1
            d2h = omega * 4.0 * k * (k - 1) * hm2
            val[m] *= h
            for d in range(D):
                if d == e:
                    grad[m, d] *= dh
                    lap[m, d] *= d2h
                else:
                    grad[m, d] *= h
                    lap[m, d] *= h


@numba.njit(cache=True)
def slater_matrix(x, first, n, D, omega, qn, Dmat, g_orb, l_orb):
    """Dmat[i, m] = phi_m(x_{first + i}) for the n particles first..first+n-1 (global indices)."""
    for i in range(n):
        p = (first + i) * D
        orbitals(x[p:p + D], omega, qn, Dmat[i], g_orb, l_orb)


@numba.njit(cache=True)
def invert_slogdet(A, Ainv):
    """Ainv = A^-1 by Gauss-Jordan elimination with partial pivoting; returns (ln|det A|, sign).

    A (n, n) is destroyed (reduced to the identity). For a singular A returns (-inf, 0.0) and Ainv is
    garbage. Plain numba loops: numba's np.linalg needs scipy's LAPACK, which the package does not
    depend on, and n <= 36 here (N = 72). No allocation.
    """
    n = A.shape[0]
    for a in range(n):
        for b in range(n):
            Ainv[a, b] = 0.0
        Ainv[a, a] = 1.0
    logabs = 0.0
    sign = 1.0
    for c in range(n):
        piv = c
        big = abs(A[c, c])
        for r in range(c + 1, n):
            v = abs(A[r, c])
            if v > big:
                big = v
                piv = r
        if big == 0.0:
            return -np.inf, 0.0
        if piv != c:
            sign = -sign
            for b in range(n):
                t = A[c, b]
                A[c, b] = A[piv, b]
                A[piv, b] = t
                t = Ainv[c, b]
                Ainv[c, b] = Ainv[piv, b]
                Ainv[piv, b] = t
        p = A[c, c]
        if p < 0.0:
            sign = -sign
        logabs += math.log(abs(p))
        inv_p = 1.0 / p
        for b in range(n):
            A[c, b] *= inv_p
            Ainv[c, b] *= inv_p
        for r in range(n):
            if r != c:
                f = A[r, c]
                if f != 0.0:
                    for b in range(n):
                        A[r, b] -= f * A[c, b]
                        Ainv[r, b] -= f * Ainv[c, b]
    return logabs, sign


@numba.njit(cache=True)
def slater_inverse(x, first, n, D, omega, qn, Dinv, Dmat, g_orb, l_orb):
    """Build D for particles first..first+n-1 and store its inverse in Dinv (n, n).

    Dinv[m, i] satisfies sum_m D[i, m] Dinv[m, j] = delta_ij (plain inverse, not transposed).
    Returns (ln|det D|, sign det D); for a singular matrix (-inf, 0.0) with Dinv meaningless.
    Scratch: Dmat (n, n) (holds D, then is destroyed by the elimination), g_orb, l_orb (n, D).
    O(n^3), no allocation.
    """
    slater_matrix(x, first, n, D, omega, qn, Dmat, g_orb, l_orb)
    return invert_slogdet(Dmat, Dinv)


@numba.njit(cache=True)
def ratio(Dinv, row, val_new):
    """R = det D' / det D = sum_m val_new[m] Dinv[m, row] when particle ``row`` (index within its
    spin block) moves and its orbital values become val_new. O(n)."""
    R = 0.0
    for m in range(val_new.shape[0]):
        R += val_new[m] * Dinv[m, row]
    return R


@numba.njit(cache=True)
def sherman_morrison(Dinv, row, val_new, R, scratch):
    """Update Dinv in place after accepting the move of particle ``row`` (R from `ratio`). O(n^2).

    Dinv'[:, j] = Dinv[:, j] - Dinv[:, row] S_j / R with S_j = sum_m val_new[m] Dinv[m, j] (j != row),
    Dinv'[:, row] = Dinv[:, row] / R. ``scratch`` (n,) holds S.
    """
    n = val_new.shape[0]
    for j in range(n):
        s = 0.0
        for m in range(n):
            s += val_new[m] * Dinv[m, j]
        scratch[j] = s / R
    inv_R = 1.0 / R
    for a in range(n):
        c = Dinv[a, row]
        for j in range(n):
            if j != row:
                Dinv[a, j] -= c * scratch[j]
        Dinv[a, row] = c * inv_R


@numba.njit(cache=True)
def free_walk(x, omega, qn, dinv, n_sweeps, step, seed):
    """Metropolis sweeps of the non-interacting closed shell with Sherman-Morrison updates and no refresh.

    Samples |psi|^2 = (det D_up det D_down)^2 exp(-omega |x|^2) by one-particle moves
    x_i' = x_i + step (U - 1/2), accepted with min(1, R^2 exp(-omega (|x_i'|^2 - |x_i|^2))), R from
    `ratio`; each accepted move updates dinv (2, n, n; the inverses of the up and down blocks at x) by
    `sherman_morrison`. For measuring how far the updated inverses drift from fresh ones
    (benchmarks/bench_determinants.py, tests/test_slater.py). x (P*D,) is moved in place; ``seed`` seeds
    numba's generator. Returns the number of accepted moves.
    """
    np.random.seed(seed)
    n, D = qn.shape
    val, g_orb, l_orb, scratch = np.empty(n), np.empty((n, D)), np.empty((n, D)), np.empty(n)
    xp = np.empty(D)
    accepted = 0
    for _ in range(n_sweeps):
        for i in range(2 * n):
            p = i * D
            d_r2 = 0.0
            for d in range(D):
                xp[d] = x[p + d] + step * (np.random.random() - 0.5)
                d_r2 += xp[d] * xp[d] - x[p + d] * x[p + d]
            orbitals(xp, omega, qn, val, g_orb, l_orb)
            block = dinv[i // n]
            R = ratio(block, i % n, val)
            if R != 0.0 and np.random.random() < R * R * math.exp(-omega * d_r2):
                sherman_morrison(block, i % n, val, R, scratch)
                for d in range(D):
                    x[p + d] = xp[d]
                accepted += 1
    return accepted


# ----------------------------------------------------------------------------------------------
# The factor
# ----------------------------------------------------------------------------------------------


def fresh_inverses(x: np.ndarray, qn: np.ndarray, omega: float) -> np.ndarray:
    """(2, n, n) inverses of the spin-up and spin-down Slater matrices at x, from scratch (what the updated
    inverses are checked against)."""
    n, D = qn.shape
    out = np.empty((2, n, n))
    for b in range(2):
        slater_inverse(x, b * n, n, D, omega, qn, out[b], np.empty((n, n)), np.empty((n, D)), np.empty((n, D)))
    return out


class SlaterData(NamedTuple):
    qn: np.ndarray         # (n, D) int64 quantum numbers of one spin's orbitals
    omega: float           # the orbitals' frequency
    D: int
    n: int                 # electrons per spin
    dinv: np.ndarray       # (walkers, 2, n, n) inverse Slater matrices (spin up, down)
    g_at: np.ndarray       # (walkers, P, n, D) d phi_m / d x_d at each electron's position
    l_at: np.ndarray       # (walkers, P, n, D) d^2 phi_m / d x_d^2 there
    val: np.ndarray        # (n,) scratch: orbitals (values, gradients, Laplacians) at one position
    g_orb: np.ndarray      # (n, D)
    l_orb: np.ndarray      # (n, D)
    sm: np.ndarray         # (n,) Sherman-Morrison scratch
    dmat: np.ndarray       # (n, n) scratch
    R: np.ndarray          # (1,) the last proposal's determinant ratio

    WALKER_CACHE = ("dinv", "g_at", "l_at")


@numba.njit(cache=True)
def slater_init(f, w, x):
    """Inverse Slater matrices from scratch (O(n^3)) and the orbitals' derivatives at every electron; also the
    periodic refresh that bounds the drift of the Sherman-Morrison updates. The derivatives are kept because
    the drift at x and the local energy need them and the electrons that did not move keep theirs."""
    n, D = f.n, f.D
    for b in range(2):
        for r in range(n):
            p = (b * n + r) * D
            orbitals(x[p:p + D], f.omega, f.qn, f.dmat[r], f.g_at[w, b * n + r], f.l_at[w, b * n + r])
        invert_slogdet(f.dmat, f.dinv[w, b])


@numba.njit(cache=True)
def slater_log_value(f, w, x):
    inv = np.empty((f.n, f.n))
    lu, su = slater_inverse(x, 0, f.n, f.D, f.omega, f.qn, inv, f.dmat, f.g_orb, f.l_orb)
    ld, sd = slater_inverse(x, f.n, f.n, f.D, f.omega, f.qn, inv, f.dmat, f.g_orb, f.l_orb)
    return lu + ld, su * sd


@numba.njit(cache=True)
def slater_propose(f, w, x, i, xp, dx):
    orbitals(xp, f.omega, f.qn, f.val, f.g_orb, f.l_orb)
    R = ratio(f.dinv[w, i // f.n], i % f.n, f.val)
    f.R[0] = R
    if R == 0.0:
        return -np.inf, 0.0
    return math.log(abs(R)), 1.0 if R > 0.0 else -1.0


@numba.njit(cache=True)
def slater_add_grad_current(f, w, x, i, out):
    """grad_i ln|det D| = sum_m d phi_m(x_i) Dinv[m, i] from the kept orbital derivatives. O(n D)."""
    dinv, g_at = f.dinv, f.g_at
    b = i // f.n
    row = i % f.n
    for d in range(f.D):
        g = 0.0
        for m in range(f.n):
            g += g_at[w, i, m, d] * dinv[w, b, m, row]
        out[d] += g


@numba.njit(cache=True)
def slater_add_grad_proposed(f, w, x, i, xp, out):
    """grad_i ln|det D'| at the proposed position with the old inverse: (sum_m d phi_m(x') Dinv[m, i]) / R
    (the orbitals at x' are still in the scratch from `slater_propose`)."""
    dinv, g_orb = f.dinv, f.g_orb
    b = i // f.n
    row = i % f.n
    inv_R = 1.0 / f.R[0]
    for d in range(f.D):
        g = 0.0
        for m in range(f.n):
            g += g_orb[m, d] * dinv[w, b, m, row]
        out[d] += g * inv_R


@numba.njit(cache=True)
def slater_accept(f, w, x, i, xp):
    sherman_morrison(f.dinv[w, i // f.n], i % f.n, f.val, f.R[0], f.sm)
    g_at, l_at, g_orb, l_orb = f.g_at, f.l_at, f.g_orb, f.l_orb
    for m in range(f.n):
        for d in range(f.D):
            g_at[w, i, m, d] = g_orb[m, d]
            l_at[w, i, m, d] = l_orb[m, d]


@numba.njit(cache=True)
def slater_add_grad_lap(f, w, x, grad, lap):
    """ADD the gradient and diagonal second derivatives of ln|det D_up det D_down| to grad, lap, from the kept
    orbital derivatives (no orbital evaluation), O(N n D): for coordinate k = i D + d of particle i, row r of its block,
        grad[k] += g = sum_m d_d phi_m(x_i) Dinv[m, r],   lap[k] += sum_m d_d^2 phi_m(x_i) Dinv[m, r] - g^2."""
    dinv, g_at, l_at = f.dinv, f.g_at, f.l_at
    n, D = f.n, f.D
    for i in range(2 * n):
        b = i // n
        row = i % n
        p = i * D
        for d in range(D):
            g = 0.0
            l2 = 0.0
            for m in range(n):
                c = dinv[w, b, m, row]
                g += g_at[w, i, m, d] * c
                l2 += l_at[w, i, m, d] * c
            grad[p + d] += g
            lap[p + d] += l2 - g * g


@numba.njit(cache=True)
def slater_add_dlog(f, w, x, out):
    pass


implements(SlaterData, init=slater_init, refresh=slater_init, log_value=slater_log_value,
           propose=slater_propose, add_grad_current=slater_add_grad_current,
           add_grad_proposed=slater_add_grad_proposed, accept=slater_accept, add_grad_lap=slater_add_grad_lap,
           add_dlog=slater_add_dlog)


class SlaterDeterminants:
    """det D_up det D_down of harmonic-oscillator orbitals for a closed shell; no variational parameters."""

    name = "slater"

    def __init__(self, particles: int, dimensions: int, omega: float):
        self.particles, self.dimensions, self.omega = particles, dimensions, float(omega)
        self.qn = quantum_numbers_for(particles, dimensions)

    def parameters(self) -> list[tuple[str, int, bool]]:
        return []

    def initial(self) -> dict:
        return {}

    def randomize(self, views: dict, rng, scale: float) -> None:
        pass

    def constrain(self, views: dict) -> None:
        pass

    def named(self, views: dict) -> dict:
        return {}

    def kernel_data(self, views: dict, slots: dict, n_walkers: int) -> SlaterData:
        n, D = self.qn.shape
        return SlaterData(self.qn, self.omega, D, n, np.empty((n_walkers, 2, n, n)), np.empty((n_walkers, 2 * n, n, D)),
                          np.empty((n_walkers, 2 * n, n, D)), np.empty(n), np.empty((n, D)), np.empty((n, D)),
                          np.empty(n), np.empty((n, n)), np.empty(1))
