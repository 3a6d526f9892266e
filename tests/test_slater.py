"""Slater determinants of Hermite orbitals: shells, derivatives, exchange, Sherman-Morrison, E_L."""
import math

import numba
import numpy as np
import pytest

from vmc.model.factors.shells import closed_shell_numbers
from vmc.model.factors.slater import (
    SlaterDeterminants,
    closed_shell_energy,
    free_walk,
    fresh_inverses,
    orbitals,
    quantum_numbers,
    quantum_numbers_for,
    slater_inverse,
)
from vmc.model.wavefunction import Product, accept_all, add_grad_proposed_all, initialize, propose_all


@numba.njit
def propose(factors, x, i, xp, dx, drift):
    """A move proposed through the sums over factors, with the drift at xp added to `drift`."""
    log_ratio, sign = propose_all(factors, 0, x, i, xp, dx)
    add_grad_proposed_all(factors, 0, x, i, xp, drift)
    return log_ratio, sign


@numba.njit
def accept(factors, x, i, xp):
    accept_all(factors, 0, x, i, xp)


def determinants(P, D, omega):
    """The determinants alone as a trial state (the same kernels as in sampling)."""
    return Product([SlaterDeterminants(P, D, omega)], P, D)


def log_det_total(x, P, D, omega):
    wf = determinants(P, D, omega)
    return wf.log_psi(x), wf.sign(x)


def grad_lap_log_det_total(x, P, D, omega):
    return determinants(P, D, omega).grad_lap_log_psi(x)

CLOSED = [(2, 2), (6, 2), (12, 2), (20, 2), (2, 3), (8, 3), (20, 3)]
ENERGY = {(2, 2): 2, (6, 2): 10, (12, 2): 28, (20, 2): 60, (2, 3): 3, (8, 3): 18, (20, 3): 60}
# 2D: S filled shells give S (S + 1) (2 S + 1) / 3; 3D: sum_s (s + 1)(s + 2)(s + 3/2)
ENERGY_LARGE = {(30, 2): 110, (42, 2): 182, (56, 2): 280, (72, 2): 408, (40, 3): 150, (70, 3): 315}


def random_config(P, D, omega, rng):
    return rng.normal(0.0, 1.0 / math.sqrt(omega), P * D)


# ---------------------------------------------------------------------------------------------- shells


@pytest.mark.parametrize("P,D", CLOSED)
def test_quantum_numbers_and_energy(P, D):
    qn = quantum_numbers(P // 2, D)
    assert qn.shape == (P // 2, D) and qn.dtype == np.int64
    assert len({tuple(q) for q in qn}) == P // 2                       # distinct orbitals
    shells = qn.sum(axis=1)
    assert np.all(np.diff(shells) >= 0)                                # ordered by shell
    S = shells[-1] + 1
    for s in range(S):                                                 # every shell complete
        assert np.count_nonzero(shells == s) == math.comb(s + D - 1, D - 1)
    for omega in (0.5, 1.0):
        assert closed_shell_energy(P, D, omega) == pytest.approx(ENERGY[(P, D)] * omega, rel=1e-15)


@pytest.mark.parametrize("P,D", [(30, 2), (42, 2), (56, 2), (72, 2), (40, 3), (70, 3)])
def test_large_closed_shells(P, D):
    """Shells counted for any number of filled shells: E = 2 sum_s binom(s + D - 1, D - 1) (s + D/2) omega."""
    assert P in closed_shell_numbers(D, P)
    qn = quantum_numbers_for(P, D)
    assert len({tuple(q) for q in qn}) == P // 2
    shells = qn.sum(axis=1)
    for s in range(shells[-1] + 1):
        assert np.count_nonzero(shells == s) == math.comb(s + D - 1, D - 1)
    assert closed_shell_energy(P, D, 1.0) == ENERGY_LARGE[(P, D)]


def test_closed_shell_numbers():
    assert closed_shell_numbers(2, 90) == [2, 6, 12, 20, 30, 42, 56, 72, 90]
    assert closed_shell_numbers(3, 112) == [2, 8, 20, 40, 70, 112]
    assert closed_shell_numbers(3, 111) == [2, 8, 20, 40, 70]
    assert closed_shell_numbers(1, 8) == [2, 4, 6, 8]


def test_quantum_numbers_2d_order():
    assert quantum_numbers(6, 2).tolist() == [[0, 0], [1, 0], [0, 1], [2, 0], [1, 1], [0, 2]]


@pytest.mark.parametrize("P,D", [(4, 2), (8, 2), (14, 2), (6, 3), (12, 3), (3, 2), (0, 2), (58, 2), (60, 3)])
def test_open_shell_raises(P, D):
    with pytest.raises(ValueError, match="allowed P"):
        quantum_numbers_for(P, D)
    with pytest.raises(ValueError, match="allowed P"):
        closed_shell_energy(P, D, 1.0)
    if P % 2 == 0 and P > 0:
        with pytest.raises(ValueError, match="allowed P"):
            quantum_numbers(P // 2, D)


# ---------------------------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("D,n_per_spin", [(2, 10), (3, 10)])
@pytest.mark.parametrize("omega", [0.5, 1.0, 2.3])
def test_orbital_derivatives_finite_differences(D, n_per_spin, omega):
    qn = quantum_numbers(n_per_spin, D)
    n = n_per_spin
    rng = np.random.default_rng(7 + D)

    def values(xp):
        v, g, lap = np.empty(n), np.empty((n, D)), np.empty((n, D))
        orbitals(xp, omega, qn, v, g, lap)
        return v, g, lap

    h = 1e-4
    for _ in range(5):
        xp = rng.normal(0.0, 1.0, D)
        v, g, lap = values(xp)
        # value against the explicit Hermite product
        herm = [np.polynomial.hermite.Hermite.basis(k) for k in range(4)]
        ref = np.array([np.prod([herm[q[d]](math.sqrt(omega) * xp[d]) for d in range(D)]) for q in qn])
        np.testing.assert_allclose(v, ref, rtol=1e-12, atol=1e-12)
        scale = np.abs(v).max()
        for d in range(D):
            e = np.zeros(D)
            e[d] = h
            vp, _, _ = values(xp + e)
            vm, _, _ = values(xp - e)
            # polynomials of degree <= 3 per coordinate: central differences are exact up to
            # h^2 f'''/6 (gradient) and exact (second derivative) apart from rounding
            np.testing.assert_allclose(g[:, d], (vp - vm) / (2 * h), rtol=1e-6, atol=1e-7 * scale)
            np.testing.assert_allclose(lap[:, d], (vp - 2 * v + vm) / h**2, rtol=1e-6, atol=1e-5 * scale)


@pytest.mark.parametrize("P,D", [(6, 2), (12, 2), (20, 2), (8, 3), (20, 3)])
def test_grad_lap_log_det_finite_differences(P, D):
    omega = 0.7
    rng = np.random.default_rng(P + 10 * D)
    x = random_config(P, D, omega, rng)
    grad, lap = grad_lap_log_det_total(x, P, D, omega)
    f0, s0 = log_det_total(x, P, D, omega)
    h1, h2 = 1e-5, 1e-3
    for k in range(P * D):
        e = np.zeros(P * D)
        e[k] = h1
        g_fd = (log_det_total(x + e, P, D, omega)[0] - log_det_total(x - e, P, D, omega)[0]) / (2 * h1)
        e[k] = h2 / max(1.0, math.sqrt(abs(lap[k])))                    # node distance ~ |lap|^-1/2
        f = {}
        for j in (-2, -1, 1, 2):
            f[j], s = log_det_total(x + j * e, P, D, omega)
            assert s == s0                                             # no node crossed
        l_fd = (-f[2] + 16 * f[1] - 30 * f0 + 16 * f[-1] - f[-2]) / (12 * e[k]**2)   # O(h^4)
        assert grad[k] == pytest.approx(g_fd, rel=1e-6, abs=1e-6)
        assert lap[k] == pytest.approx(l_fd, rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("P,D", [(6, 2), (12, 2), (20, 2), (8, 3)])
def test_determinant_does_not_depend_on_orbital_frequency(P, D):
    """For a closed shell the Hermite orbitals up to degree S - 1 in sqrt(w) x span the monomials up to
    degree S - 1 for every w, so det D(w) = c(w) det D(omega): ln|det| differs by one constant, the sign
    by one factor, and the gradient and Laplacian of ln|det| are identical. (Why the option
    wavefunction.orbital_omega was removed.)"""
    omega = 1.0
    rng = np.random.default_rng(5 * P + D)
    configs = [random_config(P, D, omega, rng) for _ in range(5)]
    for w in (0.8, 1.25):
        shifts, signs = [], []
        for x in configs:
            f0, s0 = log_det_total(x, P, D, omega)
            f, s = log_det_total(x, P, D, w)
            shifts.append(f - f0)
            signs.append(s * s0)
            g0, l0 = grad_lap_log_det_total(x, P, D, omega)
            g, lap = grad_lap_log_det_total(x, P, D, w)
            np.testing.assert_allclose(g, g0, rtol=1e-10, atol=1e-10 * np.abs(g0).max())
            np.testing.assert_allclose(lap, l0, rtol=1e-10, atol=1e-10 * np.abs(l0).max())
        assert np.ptp(shifts) < 1e-10 * max(1.0, abs(shifts[0])), shifts
        assert abs(shifts[0]) > 1e-3                                     # teeth: the constant is not 0
        assert len(set(signs)) == 1


# ---------------------------------------------------------------------------------------------- exchange


@pytest.mark.parametrize("P,D", [(6, 2), (12, 2), (8, 3), (20, 3)])
def test_exchange_antisymmetry(P, D):
    omega = 1.0
    rng = np.random.default_rng(3 * P + D)
    n = P // 2
    X = random_config(P, D, omega, rng).reshape(P, D)
    f0, s0 = log_det_total(X.ravel(), P, D, omega)
    assert s0 != 0.0

    def swapped(pairs):
        Y = X.copy()
        for i, j in pairs:
            Y[[i, j]] = Y[[j, i]]
        return log_det_total(Y.ravel(), P, D, omega)

    up = (0, n - 1)
    down = (n, n + 1)
    for pairs, expected_sign in [([up], -s0), ([down], -s0), ([up, down], s0)]:
        f, s = swapped(pairs)
        assert s == expected_sign
        assert f == pytest.approx(f0, rel=1e-12, abs=1e-12)


# ---------------------------------------------------------------------------------------------- updates


@pytest.mark.parametrize("P,D", [(6, 2), (12, 2), (8, 3)])
def test_sherman_morrison_matches_recomputation(P, D):
    omega = 1.0
    rng = np.random.default_rng(1000 + P + D)
    n = P // 2
    qn = quantum_numbers(n, D)
    x = random_config(P, D, omega, rng)
    Dmat = np.empty((n, n))
    g_orb, l_orb = np.empty((n, D)), np.empty((n, D))
    kernel = determinants(P, D, omega).kernel_data(1)
    initialize(kernel, 0, x)
    logdet, sign = log_det_total(x, P, D, omega)
    drift = np.empty(D)
    n_accepted = 0
    for step in range(2000):
        i = rng.integers(P)
        dx = rng.normal(0.0, 0.5, D)
        xp = x[i * D:(i + 1) * D] + dx
        drift[:] = 0.0
        log_R, sign_R = propose(kernel, x, i, xp, dx, drift)
        if rng.random() < 0.5:
            accept(kernel, x, i, xp)               # Sherman-Morrison, then the positions
            logdet += log_R
            sign *= sign_R
            n_accepted += 1
            if step % 50 == 0:                                         # drift = grad ln det at x'
                grad, _ = grad_lap_log_det_total(x, P, D, omega)
                np.testing.assert_allclose(drift, grad[i * D:(i + 1) * D], rtol=1e-8, atol=1e-10)
    assert 800 < n_accepted < 1200
    ref_log, ref_sign = log_det_total(x, P, D, omega)
    assert logdet == pytest.approx(ref_log, rel=1e-8, abs=1e-10)
    assert sign == ref_sign
    Dinv = kernel[0].dinv[0]
    for b in range(2):
        ref = np.empty((n, n))
        slater_inverse(x, b * n, n, D, omega, qn, ref, Dmat, g_orb, l_orb)
        np.testing.assert_allclose(Dinv[b], ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())
        slater_matrix_check = np.linalg.inv(ref)
        np.testing.assert_allclose(slater_matrix_check @ Dinv[b], np.eye(n), atol=1e-8)


@pytest.mark.parametrize("P,D,step", [(72, 2, 1.0), (70, 3, 0.8)])
def test_updated_inverse_after_ten_thousand_sweeps(P, D, step):
    """The largest closed shells, 10^4 sweeps of one-particle moves without refresh (`free_walk`:
    Metropolis of the non-interacting state, every accepted move a Sherman-Morrison update): the updated
    inverses agree with fresh ones, max |Dinv_updated - Dinv_fresh| / max |Dinv_fresh| < 1e-8 (measured
    ~1e-13, benchmarks/bench_determinants.py; 0.5 s per case)."""
    omega = 1.0
    qn = quantum_numbers_for(P, D)
    x = random_config(P, D, omega, np.random.default_rng(P + D))
    free_walk(x, omega, qn, fresh_inverses(x, qn, omega), 200, step, 1)        # into |psi_0|^2
    dinv = fresh_inverses(x, qn, omega)
    sweeps = 10_000
    accepted = free_walk(x, omega, qn, dinv, sweeps, step, 2)
    assert 0.5 < accepted / (sweeps * P) < 0.8                                 # teeth: ~4e5 updates
    ref = fresh_inverses(x, qn, omega)
    for b in range(2):
        assert np.abs(dinv[b] - ref[b]).max() / np.abs(ref[b]).max() < 1e-8


# ---------------------------------------------------------------------------------------------- energy


@pytest.mark.parametrize("P,D", CLOSED)
@pytest.mark.parametrize("omega", [0.5, 1.0])
def test_exact_noninteracting_local_energy(P, D, omega):
    rng = np.random.default_rng(P * 31 + D)
    E = closed_shell_energy(P, D, omega)
    for _ in range(10):
        x = random_config(P, D, omega, rng)
        grad, lap = grad_lap_log_det_total(x, P, D, omega)
        grad -= omega * x                                              # Gaussian factor
        lap -= omega
        E_L = -0.5 * np.sum(grad**2 + lap) + 0.5 * omega**2 * np.sum(x**2)
        assert E_L == pytest.approx(E, rel=1e-9)
