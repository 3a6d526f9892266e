"""The two-electron reference table (`vmc.analysis.results.TWO_ELECTRONS_2D`) against the relative-motion
equation solved here.

Two electrons in a 2D trap: with R = (r_1 + r_2)/2 and r = r_1 - r_2,

    H = [-nabla_R^2 / 4 + omega^2 R^2] + [-nabla_r^2 + omega^2 r^2 / 4 + 1/r],

a centre-of-mass oscillator (mass 2, ground energy omega) plus the relative motion (reduced mass 1/2).
In units of l = sqrt(2/omega), r = l rho, the relative Hamiltonian is (omega/2) [-nabla^2 + rho^2 + lam/rho]
with lam = sqrt(2/omega); the singlet ground state has m = 0. So E = omega + (omega/2) e(lam), e the
lowest eigenvalue of -(1/rho) (rho R')' + (rho^2 + lam/rho) R = e R.

Discretisation: finite volumes on cells rho_i = (i + 1/2) h, fluxes rho_{i+1/2} (R_{i+1} - R_i) / h (zero
at rho = 0), R = 0 beyond rho_max; symmetrised with sqrt(rho_i) this is a symmetric tridiagonal matrix
(diagonal 2/h^2 + V_i), whose lowest eigenvalue is found by Sturm-sequence bisection. The error is
O(h^2); two grids and Richardson extrapolation give ~1e-9 (Taut's E(omega = 1) = 3 to 1e-10).
"""
import math

import numba
import numpy as np
import pytest

from vmc.analysis.results import TWO_ELECTRONS_2D, reference_energy
from vmc.input.spec import Spec


@numba.njit(cache=False)
def _count_below(diag, off2, lam):
    """Number of eigenvalues below lam of the symmetric tridiagonal matrix (diag, off-diagonal^2):
    the number of negative pivots of the LDL^T factorisation of T - lam I (Sturm)."""
    count = 0
    q = diag[0] - lam
    if q < 0.0:
        count += 1
    for i in range(1, diag.shape[0]):
        if q == 0.0:
            q = 1e-300
        q = diag[i] - lam - off2[i - 1] / q
        if q < 0.0:
            count += 1
    return count


@numba.njit(cache=False)
def _lowest_eigenvalue(diag, off2, lo, hi):
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if _count_below(diag, off2, mid) >= 1:
            hi = mid
        else:
            lo = mid
        if hi - lo < 1e-15 * max(1.0, abs(mid)):
            break
    return 0.5 * (lo + hi)


def scaled_eigenvalue(lam, n, rho_max=10.0, m=0):
    """Lowest e of -(1/rho)(rho R')' + (m^2/rho^2 + rho^2 + lam/rho) R = e R on n cells of [0, rho_max]."""
    h = rho_max / n
    rho = (np.arange(n) + 0.5) * h
    diag = 2.0 / h ** 2 + m * m / rho ** 2 + rho ** 2 + lam / rho
    faces = np.arange(1, n) * h
    off = -faces / (h ** 2 * np.sqrt(rho[:-1] * rho[1:]))
    # Gershgorin: every eigenvalue lies in [min(diag) - 2 max|off|, max(diag) + 2 max|off|]
    bound = 2 * np.max(np.abs(off))
    return _lowest_eigenvalue(diag, off ** 2, diag.min() - bound, diag.max() + bound)


def two_electron_energy(omega, n=2000, rho_max=10.0):
    """E(omega) of two electrons in 2D: centre of mass + Richardson-extrapolated relative energy."""
    lam = math.sqrt(2.0 / omega)
    coarse, fine = scaled_eigenvalue(lam, n, rho_max), scaled_eigenvalue(lam, 2 * n, rho_max)
    return omega + 0.5 * omega * (4 * fine - coarse) / 3, omega + 0.5 * omega * fine


def test_solver_on_known_spectra():
    """Without Coulomb the relative motion is a 2D oscillator: e = 2 (m = 0) and 4 (m = 1); so E = 2 omega."""
    for m, exact in ((0, 2.0), (1, 4.0)):
        coarse, fine = scaled_eigenvalue(0.0, 2000, m=m), scaled_eigenvalue(0.0, 4000, m=m)
        assert (4 * fine - coarse) / 3 == pytest.approx(exact, rel=1e-9)
        assert abs(fine - exact) < 1e-4                      # second order before extrapolation
    # Taut's analytic solution at omega = 1: E = 3 exactly
    assert two_electron_energy(1.0)[0] == pytest.approx(3.0, rel=1e-8)


@pytest.mark.parametrize("omega", sorted(TWO_ELECTRONS_2D))
def test_two_electron_table_matches_relative_motion(omega):
    energy, unextrapolated = two_electron_energy(omega)
    # the extrapolation is a small correction: the discretisation is converged
    assert abs(energy - unextrapolated) < 1e-6 * energy
    # a larger box changes nothing: the state has decayed at rho_max
    assert two_electron_energy(omega, rho_max=12.0)[0] == pytest.approx(energy, rel=1e-8)
    # the table holds 7 decimals: equal to the solution within its rounding (5e-8) plus the solver's error
    assert abs(TWO_ELECTRONS_2D[omega] - energy) < 1e-7, (TWO_ELECTRONS_2D[omega], energy)
    cfg = Spec.from_dict({"system": {"particles": 2, "dimensions": 2, "omega": omega, "interaction": True}})
    assert reference_energy(cfg) == (TWO_ELECTRONS_2D[omega], "exact")


@pytest.mark.parametrize("P,D,exact_over_omega", [(2, 2, 2.0), (6, 2, 10.0), (12, 2, 28.0), (20, 2, 60.0),
                                                  (2, 3, 3.0), (8, 3, 18.0), (20, 3, 60.0)])
def test_noninteracting_reference_energies(P, D, exact_over_omega):
    """Closed shells: 2 sum over filled orbitals of (n + D/2) omega (shell n holds binom(n + D - 1, D - 1))."""
    left, total, n = P // 2, 0.0, 0
    while left:
        k = min(left, math.comb(n + D - 1, D - 1))
        total += 2 * k * (n + D / 2)
        left, n = left - k, n + 1
    assert total == exact_over_omega
    for omega in (0.5, 1.0):
        cfg = Spec.from_dict({"system": {"particles": P, "dimensions": D, "omega": omega, "interaction": False}})
        value, kind = reference_energy(cfg)
        assert kind == "exact" and value == pytest.approx(exact_over_omega * omega, rel=1e-12)
