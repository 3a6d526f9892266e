"""The factor contract: every factor alone and in every combination answers the same questions
consistently. Derivatives against finite differences of ln|psi|, one-particle ratios and drifts
against evaluations from scratch, and the exchange symmetry of the symmetric RBM."""
import itertools

import numba
import numpy as np
import pytest
from conftest import assert_derivatives_match_finite_differences, propose_with_drifts

from vmc.model.factors.jastrow import PadeJastrow
from vmc.model.factors.rbm import RBM
from vmc.model.factors.slater import SlaterDeterminants
from vmc.model.factors.symmetric import SymmetricRBM
from vmc.model.wavefunction import (
    Product,
    TrialState,
    accept_all,
    add_grad_current_all,
    add_grad_lap_all,
    factor_kernel,
    init_all,
    propose_all,
)

P, D = 6, 2


def make(names, seed, P=P):
    """A product of the named factors for P (6) electrons in 2D, with random parameters of order 0.3-0.5."""
    build = {"rbm": lambda: RBM(P, D, 3, 0.8, g=0.5, optimize_sigma=True),
             "symmetric": lambda: SymmetricRBM(P, D, 3, 4, 0.8, g=1.0, optimize_sigma=True, omega=1.0),
             "jastrow": lambda: PadeJastrow(P, D, fermions=True, beta=0.7),
             "slater": lambda: SlaterDeterminants(P, D, 1.0)}
    wf = Product([build[n]() for n in names], P, D)
    rng = np.random.default_rng(seed)
    wf.randomize(rng, 0.4)
    wf.params[:] += 0.05 * rng.normal(size=wf.n_params) * (wf.params != 0)
    return wf, rng.normal(0.0, 1.0, P * D)


# Every factor alone, and the sums over two and three factors (`vmc.model.wavefunction` generates one per tuple
# length) with each RBM: every kernel and every generated sum is checked; further combinations would only
# re-check the same code (and each costs ~30 s of numba compilation on a cold cache).
ALONE = [("rbm",), ("symmetric",), ("jastrow",), ("slater",)]
COMBINATIONS = ALONE + [("rbm", "jastrow"), ("symmetric", "slater"), ("rbm", "jastrow", "slater"),
                        ("symmetric", "jastrow", "slater")]


@pytest.mark.parametrize("names", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_gradient_laplacian_and_parameter_derivatives_match_finite_differences(names):
    wf, x = make(names, seed=len(names) * 7 + len("".join(names)))
    analytic = assert_derivatives_match_finite_differences(wf, x)
    if wf.n_opt:
        assert np.abs(analytic).max() > 1e-2


@pytest.mark.parametrize("names", COMBINATIONS, ids=["+".join(c) for c in COMBINATIONS])
def test_one_particle_move_matches_evaluation_from_scratch(names):
    """propose: ln|psi(x')/psi(x)| and its sign; add_grad_current / add_grad_proposed: grad_i ln|psi|
    at x and at x'."""
    wf, x = make(names, seed=3)
    rng = np.random.default_rng(11)
    for i in range(P):
        dx = rng.normal(0.0, 0.6, D)
        y = x.copy()
        y[i * D:(i + 1) * D] += dx
        before, after = np.zeros(D), np.zeros(D)
        log_ratio, sign = propose_with_drifts(wf.kernel_data(1), x.copy(), i, y[i * D:(i + 1) * D].copy(), dx,
                                              before, after)
        assert log_ratio == pytest.approx(wf.log_psi(y) - wf.log_psi(x), rel=1e-10, abs=1e-10)
        assert sign == wf.sign(y) * wf.sign(x)
        np.testing.assert_allclose(before, wf.grad_lap_log_psi(x)[0][i * D:(i + 1) * D], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(after, wf.grad_lap_log_psi(y)[0][i * D:(i + 1) * D], rtol=1e-8, atol=1e-9)


def test_a_move_across_a_node_of_the_determinants_flips_the_sign():
    """propose returns the sign of psi(x')/psi(x) too. In 2D with P = 6, det D_up is 4 times the signed
    area of the triangle of the three spin-up electrons (orbitals 1, 2x, 2y): reflecting electron 0 through
    the line of the other two crosses the node, flips the sign and keeps |det| (the random moves above
    may cross no node at all)."""
    wf, x = make(("slater",), seed=3)
    pos = x.reshape(P, D)
    along = (pos[2] - pos[1]) / np.linalg.norm(pos[2] - pos[1])
    offset = pos[0] - pos[1]
    xp = pos[1] + 2.0 * (offset @ along) * along - offset
    y = x.copy()
    y[:D] = xp
    before, after = np.zeros(D), np.zeros(D)
    log_ratio, sign = propose_with_drifts(wf.kernel_data(1), x.copy(), 0, xp.copy(), xp - pos[0], before, after)
    assert wf.sign(y) == -wf.sign(x)
    assert sign == -1.0
    assert log_ratio == pytest.approx(0.0, abs=1e-10)

def swap(x, i, j):
    y = x.copy().reshape(P, D)
    y[[i, j]] = y[[j, i]]
    return y.ravel()


def test_symmetric_rbm_is_symmetric_under_every_exchange_and_the_coordinate_rbm_is_not():
    sym, x = make(("symmetric",), seed=5)
    coord, _ = make(("rbm",), seed=5)
    for i, j in itertools.combinations(range(P), 2):
        assert sym.log_psi(swap(x, i, j)) == pytest.approx(sym.log_psi(x), rel=1e-12, abs=1e-12)
    assert max(abs(coord.log_psi(swap(x, i, j)) - coord.log_psi(x)) for i, j in [(0, 1), (2, 5)]) > 1e-2


def test_symmetric_rbm_with_determinants_is_antisymmetric_in_same_spin_pairs():
    wf, x = make(("symmetric", "jastrow", "slater"), seed=8)
    for i, j in [(0, 1), (1, 2), (3, 5)]:          # spin up 0..2, down 3..5
        y = swap(x, i, j)
        assert wf.log_psi(y) == pytest.approx(wf.log_psi(x), rel=1e-12)
        assert wf.sign(y) == -wf.sign(x)


def test_symmetric_pair_factor_leaves_the_cusp_to_the_jastrow_factor():
    """G(r) is even in r: as two electrons meet, E_L of symmetric RBM x Padé-Jastrow stays bounded."""
    from vmc.model.hamiltonian import Hamiltonian
    wf = TrialState(2, 2, 3, 0.7, jastrow=True, rbm="symmetric", pair_hidden=4, beta=0.5)
    wf.randomize(np.random.default_rng(2), 0.5)
    ham = Hamiltonian(2, 2, 1.0)
    centre, direction = np.array([0.2, -0.1]), np.array([0.6, 0.8])

    def e_local(r):
        x = np.concatenate([centre + 0.5 * r * direction, centre - 0.5 * r * direction])
        return ham.local_values(x, *wf.grad_lap_log_psi(x))[:3].sum()
    values = [e_local(r) for r in (1e-2, 1e-4, 1e-6, 1e-8)]
    assert max(values) - min(values) < 0.05


@factor_kernel
def _walk_kernel(factors, x, moves, ratios, grad, lap, drifts):
    init_all(factors, 0, x)
    D = drifts.shape[1]
    xp, dx = np.empty(D), np.empty(D)
    for k in range(moves.shape[0]):
        i = int(moves[k, 0])
        for d in range(D):
            dx[d] = moves[k, 1 + d]
            xp[d] = x[i * D + d] + dx[d]
        log_ratio, sign = propose_all(factors, 0, x, i, xp, dx)
        ratios[k] = log_ratio
        accept_all(factors, 0, x, i, xp)
    add_grad_lap_all(factors, 0, x, grad, lap)
    for i in range(drifts.shape[0]):
        add_grad_current_all(factors, 0, x, i, drifts[i])


@numba.njit(cache=True)
def _walk(factors, x, moves, ratios, grad, lap, drifts):
    _walk_kernel(factors, x, moves, ratios, grad, lap, drifts)


@pytest.mark.parametrize("names", [("rbm", "jastrow", "slater"), ("symmetric", "jastrow", "slater")],
                         ids=["rbm+jastrow+slater", "symmetric+jastrow+slater"])
def test_caches_after_accepted_moves_match_evaluation_from_scratch(names):
    """After 60 accepted one-particle moves of 12 electrons (the caches updated by `accept`: RBM pre-activations,
    pair distances, inverse Slater matrices and orbital derivatives; with 12 the second shell's orbitals are
    quadratic, so their derivatives depend on the position), every ratio on the way, the drift of every particle
    and the local energy's gradient and Laplacian agree with evaluations from scratch; the kernel is a
    `factor_kernel`, so its sums are the written-out ones of the samplers."""
    n = 12
    wf, x = make(names, seed=5, P=n)
    rng = np.random.default_rng(2)
    moves = np.column_stack([rng.integers(0, n, 60), rng.normal(0.0, 0.3, (60, D))])
    walked, ratios = x.copy(), np.zeros(60)
    grad, lap, drifts = np.zeros(n * D), np.zeros(n * D), np.zeros((n, D))
    _walk(wf.kernel_data(1), walked, moves, ratios, grad, lap, drifts)
    y = x.copy()
    for k, (i, *dx) in enumerate(moves):
        z = y.copy()
        z[int(i) * D:(int(i) + 1) * D] += dx
        assert ratios[k] == pytest.approx(wf.log_psi(z) - wf.log_psi(y), rel=1e-9, abs=1e-9)
        y = z
    np.testing.assert_allclose(walked, y, rtol=0, atol=1e-12)
    fresh_grad, fresh_lap = wf.grad_lap_log_psi(y)
    np.testing.assert_allclose(grad, fresh_grad, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lap, fresh_lap, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(drifts.ravel(), fresh_grad, rtol=1e-9, atol=1e-9)


@factor_kernel
def _returns_twice(factors, x):
    if x[0] > 0.0:
        return 1.0
    return 0.0


def test_factor_kernel_refuses_what_it_cannot_write_out():
    def misuse(factors, x):
        y = propose_all(factors, 0, x, 0, x, x)[0]
        return y

    def first_not_factors(x, factors):
        init_all(factors, 0, x)

    def keywords(factors, x):
        init_all(factors, w=0, x=x)

    with pytest.raises(TypeError, match="first parameter"):
        factor_kernel(first_not_factors)
    with pytest.raises(TypeError, match="propose_all is used other than as a statement"):
        factor_kernel(misuse)
    def writes_in(factors, x):
        y = _returns_twice(factors, x)
        x[0] = y

    with pytest.raises(TypeError, match="no keywords"):
        factor_kernel(keywords)
    with pytest.raises(TypeError, match="_returns_twice: a kernel written into another returns once, at its end"):
        factor_kernel(writes_in)


def test_walker_cache_names_every_per_walker_array():
    """`WALKER_CACHE` is a walker's whole state beside its positions (DMC's branching copies exactly these
    arrays with the walker): every array of a factor's kernel data whose first axis is the walker is named,
    and nothing else. 11 walkers: no other axis of these factors has that length."""
    from vmc.model.factors.backflow import Backflow
    from vmc.model.wavefunction import walker_caches
    factors = [RBM(P, D, 3, 0.8), SymmetricRBM(P, D, 3, 4, 0.8, omega=1.0), PadeJastrow(P, D, fermions=True),
               SlaterDeterminants(P, D, 1.0), Backflow(P, D, 1.0, 3)]
    data = Product(factors, P, D).kernel_data(11)
    for f in data:
        per_walker = {name for name in f._fields
                      if isinstance(getattr(f, name), np.ndarray) and getattr(f, name).ndim
                      and getattr(f, name).shape[0] == 11}
        assert per_walker == set(type(f).WALKER_CACHE), type(f).__name__
    assert sum(len(type(f).WALKER_CACHE) for f in data) == len(walker_caches(data)) == 15
