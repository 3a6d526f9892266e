"""Analytic derivatives of the RBM trial state against central finite differences."""

import numpy as np
import pytest

from vmc.model.wavefunction import TrialState, default_sigma, sigmoid, softplus

CASES = [(g, P, D, N) for g in (0.5, 1.0) for (P, D, N) in
         [(1, 1, 1), (2, 1, 3), (1, 2, 2), (2, 2, 4), (3, 2, 2), (2, 3, 5), (3, 3, 1)]]


def random_state(P, D, N, g, seed, optimize_sigma=True):
    rng = np.random.default_rng(seed)
    wf = TrialState(P, D, N, sigma=0.7 + 0.5 * rng.random(), g=g, optimize_sigma=optimize_sigma)
    wf.randomize(rng, 0.5)
    x = rng.normal(0.0, 1.0, P * D)
    return wf, x


@pytest.mark.parametrize("g,P,D,N", CASES)
def test_parameter_gradient_matches_finite_differences(g, P, D, N):
    wf, x = random_state(P, D, N, g, seed=P * 100 + D * 10 + N)
    analytic = wf.log_psi_grad_params(x)
    h = 1e-5
    numeric = np.empty_like(analytic)
    for i in range(wf.n_opt):
        plus, minus = wf.copy(), wf.copy()
        plus.params[i] += h
        minus.params[i] -= h
        numeric[i] = (plus.log_psi(x) - minus.log_psi(x)) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)
    assert analytic.shape == (P * D + N + P * D * N + 1,)


@pytest.mark.parametrize("g,P,D,N", CASES)
def test_gradient_and_laplacian_in_x_match_finite_differences(g, P, D, N):
    wf, x = random_state(P, D, N, g, seed=7 + P * 100 + D * 10 + N)
    grad, lap = wf.grad_lap_log_psi(x)
    h = 1e-5
    num_grad = np.empty_like(grad)
    num_lap = np.empty_like(lap)
    num_lap2 = np.empty_like(lap)
    for k in range(x.size):
        xp, xm = x.copy(), x.copy()
        xp[k] += h
        xm[k] -= h
        num_grad[k] = (wf.log_psi(xp) - wf.log_psi(xm)) / (2 * h)
        num_lap[k] = (wf.grad_lap_log_psi(xp)[0][k] - wf.grad_lap_log_psi(xm)[0][k]) / (2 * h)
        H = 1e-4
        xp[k], xm[k] = x[k] + H, x[k] - H
        num_lap2[k] = (wf.log_psi(xp) - 2 * wf.log_psi(x) + wf.log_psi(xm)) / H**2
    np.testing.assert_allclose(grad, num_grad, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(lap, num_lap, rtol=1e-6, atol=1e-9)
    # second differences of ln psi itself (noisier: roundoff ~ 1e-16 / H^2)
    np.testing.assert_allclose(lap, num_lap2, rtol=1e-5, atol=1e-6)


def test_flat_parameter_views_share_memory():
    wf = TrialState(2, 2, 3, sigma=1.0)
    wf.params[:] = np.arange(wf.n_params, dtype=float)
    assert wf.a.tolist() == [0, 1, 2, 3]
    assert wf.b.tolist() == [4, 5, 6]
    assert wf.W[1, 2] == 7 + 1 * 3 + 2
    assert wf.sigma == wf.n_params - 1
    wf.theta[0] = -1.0
    assert wf.a[0] == -1.0
    assert wf.theta.size == wf.n_params - 1


def test_stable_softplus_and_sigmoid_for_large_arguments():
    for u in (-1e3, -50.0, -1.0, 0.0, 1.0, 50.0, 1e3):
        s, sp = sigmoid(u), softplus(u)
        assert np.isfinite(s) and np.isfinite(sp)
        assert 0.0 <= s <= 1.0
        assert sp >= 0.0
    assert softplus(1e3) == pytest.approx(1e3)
    assert softplus(-1e3) == 0.0 or softplus(-1e3) < 1e-300
    assert sigmoid(1e3) == 1.0 and sigmoid(-1e3) < 1e-300
    assert softplus(0.0) == pytest.approx(np.log(2.0))
    # huge pre-activations keep ln psi finite
    wf = TrialState(1, 2, 2, sigma=1.0)
    wf.W[:] = 1e3
    grad, lap = wf.grad_lap_log_psi(np.array([1.0, 1.0]))
    assert np.all(np.isfinite(grad)) and np.all(np.isfinite(lap))
    assert np.isfinite(wf.log_psi(np.array([1.0, 1.0])))


@pytest.mark.parametrize("g", [0.5, 1.0])
@pytest.mark.parametrize("omega", [0.5, 1.0])
def test_default_sigma_gives_exact_gaussian(g, omega):
    wf = TrialState(1, 1, 1, sigma=default_sigma(omega, g), g=g)
    for x in (0.3, -1.2, 2.0):
        # ln psi(x) - ln psi(0) = -omega x^2 / 2 for the exact ground state
        diff = wf.log_psi(np.array([x])) - wf.log_psi(np.array([0.0]))
        assert diff == pytest.approx(-0.5 * omega * x * x, rel=1e-12)
