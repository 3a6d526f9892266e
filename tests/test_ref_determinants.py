"""Slater-determinant states against physics that the energy alone cannot see.

* Virial theorem: for an eigenstate of the harmonic trap <T> = <V_trap> = E/2. The closed-shell
  determinant states are exact, so E_L is constant whatever distribution the sampler draws from; but
  V_trap fluctuates, and its mean is E/2 only under the right distribution |det|^2 x Gaussian^2.
* Kato's cusp for parallel spins: as two same-spin electrons meet, the determinant vanishes linearly,
  its log-derivative term -(nabla ln det) . (nabla ln J) adds to the Jastrow's Laplacian, and the kinetic
  energy behaves like -a (D + 1) / r_12; with Coulomb's +1/r_12, E_L stays finite only for a = 1/(D+1).
  (Derivation: near coalescence det ~ d . (r_1 - r_0); for each of the two electrons
  nabla ln det . nabla ln J -> a / r, and nabla^2 ln J -> a (D - 1) / r, so
  T_L ~ -(1/2) [2 a (D - 1) + 4 a] / r = -a (D + 1) / r.)
"""
import math

import numpy as np
import pytest

from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import N_TERMS, OBSERVABLE_NAMES, Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma


def own_closed_shell_energy(P, D, omega):
    """Fill the shells n = 0, 1, ... (degeneracy binom(n + D - 1, D - 1) per spin) with P/2 electrons per spin."""
    left, energy, n = P // 2, 0.0, 0
    while left > 0:
        take = min(left, math.comb(n + D - 1, D - 1))
        energy += 2 * take * (n + D / 2) * omega
        left -= take
        n += 1
    return energy


@pytest.mark.parametrize("P,D,omega", [(6, 2, 1.0), (8, 3, 0.5)])
@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_virial_theorem_for_determinant_states(P, D, omega, kind):
    """Exact non-interacting closed shell: E_L = E exactly, and <V_trap> = <T> = E/2 within 4 standard
    errors (from the spread of 48 walker means). A sampler of |det| instead of |det|^2 puts the
    electrons closer to the centre: <V_trap> comes out ~20 % low."""
    wf = TrialState(P, D, 2, default_sigma(omega, 0.5), slater=True, omega=omega)
    ham = Hamiltonian(P, D, omega, interaction=False)
    exact = own_closed_shell_energy(P, D, omega)
    assert exact == {(6, 2): 10.0, (8, 3): 18.0}[(P, D)] * omega
    walkers = Walkers.start([P, D, 3], 48, P * D, 1.0 / math.sqrt(omega))
    opts = {"step": 1.2 / math.sqrt(omega)} if kind == "metropolis" else {"dt": 0.2 / omega}
    s = Sampler(kind, **opts).sample(wf, ham, walkers, 300, 2000)
    np.testing.assert_allclose(s.local_energy, exact, rtol=1e-9)
    for name in ("trap", "kinetic"):
        means = s.observables[..., OBSERVABLE_NAMES.index(name)].mean(axis=1)
        err = means.std(ddof=1) / math.sqrt(means.size)
        assert err < 0.006 * exact / 2, err            # teeth: 0.6 % of E/2, the bias of |det| is ~20 %
        assert abs(means.mean() - exact / 2) < 4 * err, (name, means.mean(), exact / 2, err)


@pytest.mark.parametrize("P,D", [(30, 2), (42, 2), (56, 2), (20, 3), (40, 3)])
@pytest.mark.parametrize("omega", [0.5, 1.0])
def test_large_closed_shells_are_exact_without_interaction(P, D, omega):
    """The W = 0 RBM x determinant state of the non-interacting closed shells with 5-7 filled shells (2D)
    and 3-4 (3D) is the exact ground state: E_L, from the trial state's grad and lap of ln psi and the
    Hamiltonian's terms, equals the filled-shell sum at every configuration (zero variance)."""
    wf = TrialState(P, D, 2, default_sigma(omega, 0.5), slater=True, omega=omega)
    assert not np.any(wf.W) and not np.any(wf.a) and not np.any(wf.b)
    ham = Hamiltonian(P, D, omega, interaction=False)
    exact = own_closed_shell_energy(P, D, omega)
    rng = np.random.default_rng(P + 7 * D)
    for _ in range(5):
        x = rng.normal(0.0, 1.0 / math.sqrt(omega), P * D)
        e_l = ham.local_values(x, *wf.grad_lap_log_psi(x))[:N_TERMS].sum()
        assert e_l == pytest.approx(exact, rel=1e-9)


def local_energy(wf, x):
    """E_L = sum of the Hamiltonian's terms (Coulomb on) at x."""
    values = Hamiltonian(wf.particles, wf.dimensions, wf.omega, interaction=True).local_values(
        x, *wf.grad_lap_log_psi(x))
    return values[:N_TERMS].sum()


def symmetric_state(P, D, seed):
    """RBM x Padé-Jastrow x determinants, with an RBM symmetric under particle exchange (the same a and
    W rows for every particle), so that the determinant's node is the only singular factor. A general W
    breaks the symmetry and with it the cancellation at coalescence (see the README)."""
    rng = np.random.default_rng(seed)
    wf = TrialState(P, D, 3, default_sigma(1.0, 0.5), jastrow=True, slater=True, beta=0.6)
    wf.a[:] = np.tile(rng.normal(0.0, 0.2, D), P)
    wf.b[:] = rng.normal(0.0, 0.5, 3)
    wf.W[:] = np.tile(rng.normal(0.0, 0.3, (D, 3)), (P, 1))
    return wf, rng.normal(0.0, 1.0, (P, D)), rng.normal(size=D)


def with_cusp(wf, a):
    """A copy of wf whose Padé-Jastrow factor uses the cusp value a for every pair."""
    wrong = wf.copy()
    cusp = np.full((wf.particles, wf.particles), a)
    np.fill_diagonal(cusp, 0.0)
    wrong.factor("jastrow").cusp = cusp
    return wrong


def approach(wf, base, direction, i, j, radii):
    """E_L with electron j at distance r from electron i along `direction`, the others fixed."""
    direction = direction / np.linalg.norm(direction)
    out = []
    for r in radii:
        y = base.copy()
        y[j] = y[i] + r * direction
        out.append(local_energy(wf, y.ravel()))
    return np.array(out)


RADII = [1e-2, 1e-3, 1e-4, 1e-5, 1e-6]


@pytest.mark.parametrize("P,D", [(6, 2), (8, 3)])
def test_same_spin_electrons_meet_with_bounded_local_energy(P, D):
    """Electrons 0 and 1 (both spin up) meet: E_L converges (changes < 0.2 between r = 1e-2 and 1e-6).
    The same state with the antiparallel value a = 1/(D-1) on that pair diverges as -2/((D-1) r)."""
    wf, base, direction = symmetric_state(P, D, seed=P + D)
    e = approach(wf, base, direction, 0, 1, RADII)
    assert np.all(np.isfinite(e))
    assert np.ptp(e) < 0.2, e
    wrong = with_cusp(wf, 1.0 / (D - 1))
    e_wrong = approach(wrong, base, direction, 0, 1, RADII)
    assert RADII[-1] * e_wrong[-1] == pytest.approx(1.0 - (D + 1) / (D - 1), rel=1e-3)


@pytest.mark.parametrize("P,D", [(6, 2), (8, 3)])
def test_opposite_spin_electrons_meet_with_bounded_local_energy(P, D):
    """Electron 0 (up) and P/2 (down) meet: no node, E_L converges with a = 1/(D-1); with the parallel
    value a = 1/(D+1) on that pair it diverges as (1 - (D-1)/(D+1)) / r."""
    wf, base, direction = symmetric_state(P, D, seed=2 * P + D)
    e = approach(wf, base, direction, 0, P // 2, RADII)
    assert np.all(np.isfinite(e))
    assert np.ptp(e) < 0.2, e
    wrong = with_cusp(wf, 1.0 / (D + 1))
    e_wrong = approach(wrong, base, direction, 0, P // 2, RADII)
    assert RADII[-1] * e_wrong[-1] == pytest.approx(1.0 - (D - 1) / (D + 1), rel=1e-3)
