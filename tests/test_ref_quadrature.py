"""Sampled expectation values against references integrated on a grid in this file.

Nothing here calls the wave-function kernels to build a reference: psi is evaluated by the numpy code
below, straight from the formula in the README,

    psi(X) = F(X)^g,  F(X) = exp(-sum_k (X_k - a_k)^2 / (2 sigma^2)) prod_j (1 + exp(b_j + sum_k X_k W_kj / sigma^2)),

and integrated on a uniform grid (spectrally accurate for these smooth, Gaussian-decaying integrands;
each test checks its grid against one twice as coarse). The kinetic energy comes from integration by
parts, <T> = (1/2) int |grad psi|^2 / int psi^2, so the reference never needs a Laplacian. The weights
a, b, W are of order 0.5-1: the hidden units change |psi|^2 a lot (a sampler that ignores them is off by
tens of standard errors).

Every statistical tolerance is 4 standard errors, the error computed here from the spread of the means
of independent walkers, and every check also asserts that its error bar is small (the check has teeth).
"""
import functools
import math

import numpy as np
import pytest

from vmc.mc.estimators import Moments, sums
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import OBSERVABLE_NAMES, Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma

OMEGA = 1.0
N_SIGMA = 4.0

# name -> (P, D, a, b, W): one particle in 1D and 2D, two (non-interacting) particles in 1D
SYSTEMS = {
    "P1_D1": (1, 1, [0.3], [0.5, -0.8], [[0.9, -0.6]]),
    "P1_D2": (1, 2, [0.3, -0.2], [0.5, -0.8, 0.2], [[0.9, -0.6, 0.5], [-0.4, 0.7, 0.8]]),
    "P2_D1": (2, 1, [0.3, -0.4], [0.5, -0.8], [[0.9, -0.6], [0.5, 0.8]]),
}
SAMPLERS = {"metropolis": {"step": 2.0}, "importance": {"dt": 0.5}, "gibbs": {}}


# ---------------------------------------------------------------------------------------------
# Own evaluation of the RBM state and grid quadrature
# ---------------------------------------------------------------------------------------------

def grid(M, n, half_width=9.0):
    """All points of a uniform grid with n points per axis on [-L, L]^M, shape (n^M, M)."""
    x = np.linspace(-half_width, half_width, n)
    return np.stack(np.meshgrid(*([x] * M), indexing="ij"), axis=-1).reshape(-1, M)


def rbm_log_f_and_grad(X, a, b, W, sigma):
    """ln F and its gradient in X (own numpy code, from the README's formula)."""
    s2 = sigma * sigma
    u = b + X @ W / s2
    log_f = -np.sum((X - a) ** 2, axis=-1) / (2 * s2) + np.logaddexp(0.0, u).sum(axis=-1)
    sig = 0.5 * (1.0 + np.tanh(0.5 * u))              # logistic function
    grad = (-(X - a) + sig @ W.T) / s2
    return log_f, grad, sig


def rbm_expectations(a, b, W, g, omega, n, with_o=True):
    """<T>, <V_trap>, <E> and (with_o) <O>, Cov(O) (O = d ln psi / d(a, b, W)) under psi^2 = F^(2g) on an
    n-point grid."""
    a, b, W = (np.asarray(v, dtype=float) for v in (a, b, W))
    M = W.shape[0]
    sigma = default_sigma(omega, g)
    X = grid(M, n)
    log_f, grad, sig = rbm_log_f_and_grad(X, a, b, W, sigma)
    w = np.exp(2 * g * (log_f - log_f.max()))
    w /= w.sum()
    kinetic = 0.5 * g * g * np.sum(grad ** 2, axis=-1)        # |grad psi|^2 / (2 psi^2)
    trap = 0.5 * omega ** 2 * np.sum(X ** 2, axis=-1)
    out = {"kinetic": w @ kinetic, "trap": w @ trap, "energy": w @ (kinetic + trap)}
    if not with_o:
        return out
    s2 = sigma * sigma
    dlog = np.concatenate([g * (X - a) / s2, g * sig, (g * X[:, :, None] * sig[:, None, :] / s2).reshape(len(X), -1)],
                          axis=1)
    o_mean = w @ dlog
    return dict(out, O=o_mean, S=(dlog * w[:, None]).T @ dlog - np.outer(o_mean, o_mean))


def points_per_axis(M):
    return {1: 4001, 2: 401}[M]


@functools.lru_cache(maxsize=None)
def reference(name, g):
    P, D, a, b, W = SYSTEMS[name]
    n = points_per_axis(P * D)
    fine = rbm_expectations(a, b, W, g, OMEGA, n, with_o=False)
    coarse = rbm_expectations(a, b, W, g, OMEGA, (n + 1) // 2, with_o=False)
    for key in ("kinetic", "trap"):
        assert abs(fine[key] - coarse[key]) < 1e-9, "grid not converged"
    return fine


def test_own_gradient_matches_numerical_derivative():
    """The reference's own analytic d ln F / dx agrees with numpy.gradient of its own ln F (1D)."""
    P, D, a, b, W = SYSTEMS["P1_D1"]
    for g in (0.5, 1.0):
        x = np.linspace(-6, 6, 20001)[:, None]
        log_f, grad, _ = rbm_log_f_and_grad(x, np.array(a), np.array(b), np.array(W), default_sigma(OMEGA, g))
        numeric = np.gradient(log_f, x[:, 0])
        np.testing.assert_allclose(grad[1:-1, 0], numeric[1:-1], atol=1e-5)


def test_reference_reduces_to_gaussian_theory():
    """W = 0, a = 0: <T> = <V_trap> = D omega / 4 per particle for the exact width (virial, E = D omega / 2)."""
    for g in (0.5, 1.0):
        r = rbm_expectations([0.0], [0.3], [[0.0]], g, OMEGA, 4001)
        assert r["kinetic"] == pytest.approx(0.25 * OMEGA, rel=1e-10)
        assert r["trap"] == pytest.approx(0.25 * OMEGA, rel=1e-10)


# ---------------------------------------------------------------------------------------------
# Samplers against the quadrature
# ---------------------------------------------------------------------------------------------

def columns(samples):
    """The sampled terms and observables by name, each (walkers, steps), and E_L as "energy"."""
    out = {name: samples.observables[..., k] for k, name in enumerate(OBSERVABLE_NAMES)}
    return dict(out, energy=samples.local_energy)


def walker_mean_and_error(series):
    """(mean, standard error) from the per-walker means of a (walkers, steps) series."""
    means = series.mean(axis=1)
    return means.mean(), means.std(ddof=1) / math.sqrt(means.size)


def rbm_state(name, g):
    P, D, a, b, W = SYSTEMS[name]
    wf = TrialState(P, D, len(b), default_sigma(OMEGA, g), g=g)
    wf.a[:], wf.b[:], wf.W[:] = a, b, W
    return wf


CASES = [(name, g, kind) for name in SYSTEMS for g in (0.5, 1.0) for kind in SAMPLERS
         if not (kind == "gibbs" and g != 0.5)]


@pytest.mark.parametrize("name,g,kind", CASES)
def test_sampler_reproduces_quadrature(name, g, kind):
    """<T>, <V_trap> and <E_L> of an RBM with large weights, for every sampler, against the grid.

    Kills a Gibbs sampler that ignores W in x | h and a Metropolis ratio without the hidden units:
    both sample a plain Gaussian, off by > 30 standard errors here.
    """
    wf = rbm_state(name, g)
    ref = reference(name, g)
    ham = Hamiltonian(wf.particles, wf.dimensions, OMEGA, interaction=False)
    walkers = Walkers.start([17, len(name), int(2 * g)], 64, wf.n_visible, 1.0)
    s = Sampler(kind, **SAMPLERS[kind]).sample(wf, ham, walkers, 300, 5000)
    series = columns(s)
    assert np.all(series["interaction"] == 0.0)
    for key in ("kinetic", "trap", "energy"):
        x = series[key]
        mean, err = walker_mean_and_error(x)
        assert err < 0.01 * ref[key], (key, err)                 # teeth: 1 % resolution or better
        assert abs(mean - ref[key]) < N_SIGMA * err, (key, mean, ref[key], err)



def test_langevin_with_the_exact_force_is_almost_always_accepted():
    """Importance sampling proposes x' = x + F dt / 2 + sqrt(dt) xi with the quantum force F = 2 grad ln psi:
    for the exact Gaussian |psi|^2 ~ exp(-omega x^2) that is the exact Langevin step up to O(dt^2), so at
    dt = 0.01 nearly every move is accepted. A force off by a factor (used in the proposal and the Green's
    function alike, so the sampled distribution stays right and no average notices) is rejected a few
    per cent of the time."""
    wf = TrialState(2, 2, 2, default_sigma(OMEGA, 0.5))
    wf.b[:] = [0.4, -0.7]                       # b alone does not change |psi|^2
    ham = Hamiltonian(2, 2, OMEGA, interaction=False)
    walkers = Walkers.start(23, 8, wf.n_visible, 1.0)
    s = Sampler("importance", dt=0.01).sample(wf, ham, walkers, 100, 1000)
    assert s.acceptance > 0.998, s.acceptance


@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_energy_gradient_and_s_matrix_match_quadrature(kind):
    """The optimizers' inputs: G = d<E>/d theta (central differences of the quadrature energy) and the
    S matrix Cov(O, O) (quadrature), against the estimators' values from a sampled pass."""
    name, g = "P1_D2", 0.5
    wf = rbm_state(name, g)
    P, D, a, b, W = SYSTEMS[name]
    n = 201
    theta = wf.theta.copy()
    M, N = wf.n_visible, wf.hidden

    def energy(th):
        return rbm_expectations(th[:M], th[M:M + N], th[M + N:].reshape(M, N), g, OMEGA, n, with_o=False)["energy"]

    h = 1e-5
    exact_grad = np.array([(energy(theta + h * e) - energy(theta - h * e)) / (2 * h) for e in np.eye(theta.size)])
    exact_s = rbm_expectations(a, b, W, g, OMEGA, n)["S"]
    np.testing.assert_allclose(exact_s, rbm_expectations(a, b, W, g, OMEGA, 121)["S"], atol=1e-9)
    assert energy(theta) == pytest.approx(reference(name, g)["energy"], rel=1e-10)

    ham = Hamiltonian(P, D, OMEGA, interaction=False)
    walkers = Walkers.start(4, 64, M, 1.0)
    s = Sampler(kind, **SAMPLERS[kind]).sample(wf, ham, walkers, 300, 5000, record_grad=True)
    m = Moments.from_sums(sums(s, wf.n_opt, with_s=True), wf.n_opt, with_s=True)
    # error bars: spread of the same estimators evaluated walker by walker
    e, dlog = s.local_energy, s.grad_log_psi
    n_w = e.shape[0]
    per_walker_g = 2 * ((e[..., None] * dlog).mean(axis=1) - e.mean(axis=1)[:, None] * dlog.mean(axis=1))
    centred = dlog - dlog.mean(axis=1, keepdims=True)
    per_walker_s = np.einsum("wti,wtj->wij", centred, centred) / dlog.shape[1]
    g_err = per_walker_g.std(axis=0, ddof=1) / math.sqrt(n_w)
    s_err = per_walker_s.std(axis=0, ddof=1) / math.sqrt(n_w)
    assert np.all(g_err < 0.01 + 0.01 * np.abs(exact_grad))       # teeth
    assert np.all(s_err < 0.01 + 0.01 * np.abs(exact_s))
    assert np.all(np.abs(m.gradient - exact_grad) < N_SIGMA * g_err), (m.gradient, exact_grad, g_err)
    assert np.all(np.abs(m.s_matrix - exact_s) < N_SIGMA * s_err + 1e-12)
    assert np.max(np.abs(exact_grad)) > 0.5                       # far from the minimum: G is not ~0


# ---------------------------------------------------------------------------------------------
# Two electrons with the Padé-Jastrow factor: the relative coordinate separates
# ---------------------------------------------------------------------------------------------

def two_electron_jastrow_reference(D, omega, a, beta):
    """Gaussian x Padé-Jastrow state of two particles, reduced to one radial integral.

    psi = exp(-omega (r_1^2 + r_2^2) / 2) exp(a f(r)), f = r / (1 + beta r), r = |r_1 - r_2|. With
    R = (r_1 + r_2) / 2: r_1^2 + r_2^2 = 2 R^2 + r^2 / 2 and -(nabla_1^2 + nabla_2^2) / 2 = -nabla_R^2 / 4 - nabla_r^2,
    so psi = exp(-omega R^2) h(r), h = exp(-omega r^2 / 4 + a f(r)). The centre of mass gives
    <T_R> = <omega^2 R^2> = D omega / 4 (|exp(-omega R^2)|^2 has variance 1 / (4 omega) per component);
    the relative part <|d ln h / dr|^2>, omega^2 <r^2> / 4, <1/r>, <r> with weight r^(D-1) h^2.
    """
    r = np.linspace(0.0, 30.0 / math.sqrt(omega), 200001)[1:]
    f, fp = r / (1 + beta * r), 1.0 / (1 + beta * r) ** 2
    log_w = (D - 1) * np.log(r) - omega * r ** 2 / 2 + 2 * a * f
    w = np.exp(log_w - log_w.max())
    w /= w.sum()
    ref = {"kinetic": D * omega / 4 + w @ (-omega * r / 2 + a * fp) ** 2,
           "trap": D * omega / 4 + omega ** 2 * (w @ r ** 2) / 4,
           "interaction": w @ (1.0 / r),
           "pair_distance": w @ r}
    ref["energy"] = ref["kinetic"] + ref["trap"] + ref["interaction"]
    return ref


def test_two_electron_reference_without_jastrow_is_gaussian():
    """a = 0: the reference gives E = D omega and <r_12> = sqrt(2/omega) Gamma((D+1)/2) / Gamma(D/2)."""
    for D in (2, 3):
        ref = two_electron_jastrow_reference(D, 0.7, 0.0, 1.0)
        assert ref["kinetic"] == pytest.approx(D * 0.7 / 2, rel=1e-8)
        assert ref["trap"] == pytest.approx(D * 0.7 / 2, rel=1e-8)
        assert ref["pair_distance"] == pytest.approx(
            math.sqrt(2 / 0.7) * math.gamma((D + 1) / 2) / math.gamma(D / 2), rel=1e-8)


@pytest.mark.parametrize("D", [2, 3])
@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_jastrow_two_electrons_match_radial_quadrature(D, kind):
    """RBM (W = 0, exact width) x Padé-Jastrow with the cusp a = 1/(D-1), Coulomb on: every energy part
    and <r_12> against the radial quadrature (the Jastrow ratio and drift of the samplers)."""
    beta = 0.5
    wf = TrialState(2, D, 2, default_sigma(OMEGA, 0.5), jastrow=True, beta=beta)
    wf.b[:] = [0.4, -0.7]                       # b alone does not change |psi|^2
    ref = two_electron_jastrow_reference(D, OMEGA, 1.0 / (D - 1), beta)
    ham = Hamiltonian(2, D, OMEGA, interaction=True)
    walkers = Walkers.start([D, 8], 64, 2 * D, 1.0)
    opts = {"step": 1.5} if kind == "metropolis" else {"dt": 0.3}
    s = Sampler(kind, **opts).sample(wf, ham, walkers, 300, 4000)
    series = columns(s)
    for key in ("kinetic", "trap", "interaction", "pair_distance", "energy"):
        x = series[key]
        mean, err = walker_mean_and_error(x)
        assert err < 0.01 * ref[key], (key, err)                 # teeth: 1 % resolution or better
        assert abs(mean - ref[key]) < N_SIGMA * err, (key, mean, ref[key], err)
