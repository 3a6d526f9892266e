"""The trial state as a product of factors: RBM x Padé-Jastrow x Slater determinants."""
import numpy as np
import pytest
from conftest import assert_derivatives_match_finite_differences, run_in_memory

from vmc.input import config
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.factors.slater import closed_shell_energy
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma

CLOSED_SHELLS = [(2, 2), (6, 2), (12, 2), (20, 2), (2, 3), (8, 3), (20, 3)]


@pytest.mark.parametrize("P,D", CLOSED_SHELLS)
@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_noninteracting_closed_shells_exact(P, D, kind):
    """W = 0, exact Gaussian width, determinants, no Jastrow: E = closed-shell energy, zero variance."""
    omega = 0.5 if P == 20 else 1.0
    wf = TrialState(P, D, 3, default_sigma(omega, 0.5), slater=True, omega=omega)
    ham = Hamiltonian(P, D, omega, interaction=False)
    walkers = Walkers.start(P * 10 + D, 3, P * D, 1.0 / np.sqrt(omega))
    opts = {"step": 1.0} if kind == "metropolis" else {"dt": 0.1}
    s = Sampler(kind, **opts).sample(wf, ham, walkers, 50, 150)
    e = s.local_energy
    assert np.mean(e) == pytest.approx(closed_shell_energy(P, D, omega), rel=1e-10)
    assert np.var(e) < 1e-10
    assert 0.2 < s.acceptance < 1.0


def random_state(P, D, jastrow, slater, seed, optimize_sigma=True):
    rng = np.random.default_rng(seed)
    wf = TrialState(P, D, 3, 0.8, optimize_sigma=optimize_sigma, jastrow=jastrow, slater=slater, beta=0.7)
    wf.randomize(rng, 0.2)
    return wf, rng.normal(0.0, 1.0, P * D)


@pytest.mark.parametrize("P,D,jastrow,slater", [(2, 2, True, False), (3, 3, True, False), (6, 2, True, True),
                                                (6, 2, False, True), (8, 3, True, True), (12, 2, True, True)])
def test_product_derivatives_match_finite_differences(P, D, jastrow, slater):
    wf, x = random_state(P, D, jastrow, slater, seed=P + D)
    analytic = assert_derivatives_match_finite_differences(wf, x)
    if jastrow:
        assert abs(analytic[wf.beta_index]) > 1e-3   # the beta derivative is really there


def test_kernel_local_energy_equals_python_path():
    """The sampler kernel's E_L (incremental determinants, Jastrow, RBM) equals a from-scratch evaluation."""
    P, D = 6, 2
    wf, _ = random_state(P, D, True, True, seed=4, optimize_sigma=False)
    ham = Hamiltonian(P, D, 1.0, interaction=True)
    walkers = Walkers.start(9, 1, P * D, 1.0)
    s = Sampler("importance", dt=0.1).sample(wf, ham, walkers, 150, 1)   # crosses a determinant refresh
    x = walkers.positions[0]
    grad, lap = wf.grad_lap_log_psi(x)
    np.testing.assert_allclose(s.observables[0, -1], ham.local_values(x, grad, lap), rtol=1e-9)


def test_exchange_symmetry():
    """Same-spin exchange flips the sign of psi (with a symmetric RBM part, W = 0); the Jastrow factor
    is symmetric under same-spin exchange; two electrons (singlet) are symmetric under exchange."""
    P, D = 6, 2
    rng = np.random.default_rng(1)
    wf = TrialState(P, D, 2, 0.7, jastrow=True, slater=True, beta=0.5)
    wf.b[:] = rng.normal(size=2)         # b does not break the symmetry; W = 0, a = 0
    x = rng.normal(size=P * D)

    def swap(x, i, j):
        y = x.copy().reshape(P, D)
        y[[i, j]] = y[[j, i]]
        return y.ravel()

    for i, j in [(0, 1), (1, 2), (3, 5), (4, 5)]:        # same spin
        y = swap(x, i, j)
        assert wf.log_psi(y) == pytest.approx(wf.log_psi(x), rel=1e-12)
        assert wf.sign(y) == -wf.sign(x)
    both = swap(swap(x, 0, 1), 3, 4)
    assert wf.sign(both) == wf.sign(x)
    two = TrialState(2, 2, 2, 0.7, jastrow=True, beta=0.5)
    z = rng.normal(size=4)
    assert two.log_psi(swap_2 := z.reshape(2, 2)[::-1].ravel()) == pytest.approx(two.log_psi(z), rel=1e-12)
    assert two.sign(swap_2) == two.sign(z) == 1.0


@pytest.mark.parametrize("D", [2, 3])
def test_cusp_keeps_local_energy_bounded(D):
    """Two electrons approaching each other: with the Padé-Jastrow cusp a = 1/(D-1) the kinetic term
    cancels 1/r_12 and E_L stays finite; without it E_L grows like 1/r_12."""
    centre = np.array([0.3, -0.2, 0.1][:D])
    direction = np.array([1.0, 0.5, -0.3][:D])
    direction /= np.linalg.norm(direction)

    def e_local(wf, r):
        x = np.concatenate([centre + 0.5 * r * direction, centre - 0.5 * r * direction])
        return Hamiltonian(2, D, 1.0).local_values(x, *wf.grad_lap_log_psi(x))[:3].sum()

    rng = np.random.default_rng(D)
    with_j = TrialState(2, D, 3, 0.7, jastrow=True, beta=0.4).randomize(rng, 0.2)
    without = TrialState(2, D, 3, 0.7)
    without.theta[:] = with_j.params[:without.n_opt]      # the same RBM, no Jastrow factor
    radii = [1e-2, 1e-4, 1e-6, 1e-8]
    e_with = [e_local(with_j, r) for r in radii]
    e_without = [e_local(without, r) for r in radii]
    assert max(e_with) - min(e_with) < 0.05 and all(abs(e) < 100 for e in e_with)
    assert e_without[-1] > 1e7    # diverges as 1/r without the cusp factor


def test_rbm_with_pade_jastrow_reaches_three():
    """Two electrons in 2D at omega = 1 (exact 3): RBM x Padé-Jastrow within 5e-4 in a short run."""
    text = """
seed = 1
[system]
particles = 2
dimensions = 2
[wavefunction]
hidden = 4
jastrow = "pade"
[sampler]
kind = "importance"
dt = 0.5
walkers = 16
steps = 1000
[optimizer]
kind = "adam"
learning_rate = 0.02
iterations = 150
[production]
steps = 10000
"""
    summary, f = run_in_memory(config.from_text(text).spec())
    assert abs(summary["mean"] - 3.0) < 5e-4
    assert summary["mean"] > 3.0 - 3 * summary["error"]
    assert summary["error"] < 2e-4
    assert summary["variance"] < 0.01          # the cusp removes the 1/r tail of E_L
    assert f["wavefunction"].attrs["beta"] > 0
