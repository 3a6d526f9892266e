"""The backflow factor (`vmc.model.factors.backflow`): derivatives against finite differences, the plain
determinants at v = 0, exchange, the per-walker cache under one-particle moves, fixed-node DMC, options."""
import math

import numba
import numpy as np
import pytest
from conftest import assert_derivatives_match_finite_differences, propose_with_drifts

from vmc.model.factors.backflow import Backflow
from vmc.model.factors.jastrow import PadeJastrow
from vmc.model.factors.rbm import RBM
from vmc.model.factors.slater import SlaterDeterminants
from vmc.model.wavefunction import Product, accept_all, initialize, propose_all


def backflow_state(P, D, seed, v_scale=0.3, others=(), hidden=3):
    """Backflow (times `others`: "rbm", "jastrow") with random c, U and, unless v_scale = 0, random v."""
    build = {"rbm": lambda: RBM(P, D, 3, 0.8, g=0.5, optimize_sigma=True),
             "jastrow": lambda: PadeJastrow(P, D, fermions=True, beta=0.7)}
    wf = Product([build[n]() for n in others] + [Backflow(P, D, 1.0, hidden)], P, D)
    rng = np.random.default_rng(seed)
    wf.randomize(rng, 0.5)
    wf.views[-1]["v"][:] = rng.normal(0.0, v_scale, wf.views[-1]["v"].size)
    return wf, rng.normal(0.0, 1.0, P * D)


def swap(x, P, D, i, j):
    y = x.copy().reshape(P, D)
    y[[i, j]] = y[[j, i]]
    return y.ravel()


def drifts(wf, x, i, dx):
    """(ln|psi(x')/psi(x)|, sign, grad_i ln|psi| at x, at x') through propose and the drift kernels."""
    D = wf.dimensions
    xp = x[i * D:(i + 1) * D] + dx
    before, after = np.zeros(D), np.zeros(D)
    log_ratio, sign = propose_with_drifts(wf.kernel_data(1), x.copy(), i, xp, dx, before, after)
    return log_ratio, sign, before, after


# ---------------------------------------------------------------------------------------------- derivatives


@pytest.mark.parametrize("P,D,others", [(6, 2, ()), (8, 3, ()), (6, 2, ("rbm", "jastrow"))],
                         ids=["6-2D", "8-3D", "6-2D-rbm-jastrow"])
def test_derivatives_with_backflow_on_match_finite_differences(P, D, others):
    wf, x = backflow_state(P, D, seed=P + D, others=others)
    analytic = assert_derivatives_match_finite_differences(wf, x)
    start = wf.index["backflow.v"]
    assert np.abs(analytic[start:]).min() > 0.0      # every v, c, U derivative is really there
    assert np.abs(analytic[start:]).max() > 1e-2


def test_one_particle_moves_match_evaluation_from_scratch():
    """propose: ln|psi(x')/psi(x)| and the sign; the drift at x and at x' against the full gradient."""
    wf, x = backflow_state(6, 2, seed=4, v_scale=0.5)
    rng = np.random.default_rng(5)
    for i in range(6):
        dx = rng.normal(0.0, 0.6, 2)
        y = x.copy()
        y[2 * i:2 * i + 2] += dx
        log_ratio, sign, before, after = drifts(wf, x, i, dx)
        assert log_ratio == pytest.approx(wf.log_psi(y) - wf.log_psi(x), rel=1e-10, abs=1e-10)
        assert sign == wf.sign(y) * wf.sign(x)
        np.testing.assert_allclose(before, wf.grad_lap_log_psi(x)[0][2 * i:2 * i + 2], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(after, wf.grad_lap_log_psi(y)[0][2 * i:2 * i + 2], rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------- v = 0


@pytest.mark.parametrize("P,D", [(2, 2), (6, 2), (12, 2), (8, 3)])
def test_zero_backflow_is_the_plain_slater_factor(P, D):
    """v = 0 (random c, U): eta = 0, r' = r; log value, sign, gradient, Laplacian and drifts as
    `SlaterDeterminants`, to rounding."""
    wf, x = backflow_state(P, D, seed=P * D, v_scale=0.0)
    plain = Product([SlaterDeterminants(P, D, 1.0)], P, D)
    assert wf.log_psi(x) == pytest.approx(plain.log_psi(x), rel=1e-12, abs=1e-12)
    assert wf.sign(x) == plain.sign(x)
    for mine, theirs in zip(wf.grad_lap_log_psi(x), plain.grad_lap_log_psi(x)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    dx = np.full(D, 0.3)
    for i in (0, P - 1):
        for mine, theirs in zip(drifts(wf, x, i, dx), drifts(plain, x, i, dx)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)
    dlog = wf.log_psi_grad_params(x)
    K = wf.factors[0].hidden
    assert np.all(dlog[2 * K:] == 0.0)                   # d/dc, d/dU vanish with v ...
    if P > 2:
        assert np.all(dlog[:2 * K] != 0.0)               # ... but d/dv does not: the factor can learn


# ---------------------------------------------------------------------------------------------- exchange


def test_exchange_with_backflow():
    """Same-spin exchange flips the sign and keeps |psi|; exchanging the whole up block with the down block
    keeps psi; a single opposite-spin exchange does not (psi is written for a fixed spin assignment, with
    or without backflow), except for two electrons, where it is the block exchange."""
    P, D = 6, 2
    wf, x = backflow_state(P, D, seed=8, v_scale=0.5)
    for i, j in [(0, 1), (1, 2), (3, 5)]:
        y = swap(x, P, D, i, j)
        assert wf.log_psi(y) == pytest.approx(wf.log_psi(x), rel=1e-12)
        assert wf.sign(y) == -wf.sign(x)
    blocks = x.reshape(2, P // 2 * D)[::-1].ravel()
    assert wf.log_psi(blocks) == pytest.approx(wf.log_psi(x), rel=1e-12)
    assert wf.sign(blocks) == wf.sign(x)
    assert abs(wf.log_psi(swap(x, P, D, 0, 3)) - wf.log_psi(x)) > 1e-3
    two, z = backflow_state(2, 2, seed=9, v_scale=0.5)
    assert two.log_psi(swap(z, 2, 2, 0, 1)) == pytest.approx(two.log_psi(z), rel=1e-12)
    assert two.sign(swap(z, 2, 2, 0, 1)) == two.sign(z)


def test_backflow_moves_the_nodes():
    """With v != 0 the sign of psi differs from the plain determinants' somewhere (nodes that moved)."""
    wf, _ = backflow_state(6, 2, seed=2, v_scale=1.0)
    plain = Product([SlaterDeterminants(6, 2, 1.0)], 6, 2)
    xs = np.random.default_rng(3).normal(0.0, 1.0, (300, 12))
    assert any(wf.sign(x) != plain.sign(x) for x in xs)


# ---------------------------------------------------------------------------------------------- caches


@numba.njit(cache=True)
def _walk(factors, x, n_moves, seed):
    np.random.seed(seed)
    D = 2
    P = x.shape[0] // D
    xp, dx = np.empty(D), np.empty(D)
    initialize(factors, 0, x)
    accepted = 0
    for _ in range(n_moves):
        i = np.random.randint(P)
        for d in range(D):
            dx[d] = 0.8 * (np.random.random() - 0.5)
            xp[d] = x[i * D + d] + dx[d]
        log_ratio, sign = propose_all(factors, 0, x, i, xp, dx)
        if np.random.random() < math.exp(min(0.0, 2.0 * log_ratio)):
            accept_all(factors, 0, x, i, xp)
            accepted += 1
    return accepted


def test_accepted_moves_keep_the_cache_equal_to_a_fresh_init():
    wf, x = backflow_state(6, 2, seed=6, v_scale=0.5)
    walked = wf.kernel_data(1)
    accepted = _walk(walked, x, 500, 7)                    # x is moved in place
    assert 100 < accepted < 500
    fresh = wf.kernel_data(1)
    initialize(fresh, 0, x)
    for name in ("eta", "rq", "dinv", "logdet", "sign"):
        np.testing.assert_allclose(getattr(walked[0], name), getattr(fresh[0], name), rtol=1e-13, atol=1e-13,
                                   err_msg=name)


# ---------------------------------------------------------------------------------------------- DMC


def test_fixed_node_dmc_with_backflow_never_accepts_a_sign_change():
    """Six interacting electrons with backflow on (v != 0) at a large time step: moves that would change
    the sign of psi are proposed and rejected; no walker's sign differs from its parent's before the step."""
    from vmc.mc import dmc
    from vmc.model.hamiltonian import Hamiltonian
    from vmc.model.wavefunction import TrialState
    from vmc.parallel import Comm
    wf = TrialState(6, 2, 2, sigma=math.sqrt(0.5), jastrow=True, slater=True, backflow="rbm", backflow_hidden=3)
    rng = np.random.default_rng(3)
    wf.randomize(rng, 0.3)
    wf.params[wf.index["backflow.v"]:wf.index["backflow.c"]] = rng.normal(0.0, 0.5, 6)
    pop = dmc.Population(wf, Hamiltonian(6, 2, 1.0), Comm(None), 40, 0.3, 10.0, (1, 2),
                         rng.normal(0.0, 1.0, (40, 12)))

    def signs():
        return np.array([wf.sign(x) for x in pop.X])
    rows = np.zeros((40, dmc.N_COLUMNS))
    for _ in range(25):
        before = signs()
        pop.step(rows)
        assert np.array_equal(signs(), before[pop.last_parents])
        assert np.all(np.isfinite(rows[:, 0]))
    assert pop.c.crossings > 0 and pop.c.accepted > 0


# ---------------------------------------------------------------------------------------------- options


def dot_input(wavefunction: str = "") -> str:
    """Six electrons in 2D, Slater x Padé-Jastrow x RBM, plus `wavefunction` lines."""
    return ('[system]\nparticles = 6\n[wavefunction]\nslater = true\njastrow = "pade"\n' + wavefunction
            + '\n[sampler]\nkind = "importance"\n')


@pytest.mark.parametrize("text,needle", [
    ('[system]\nparticles = 2\n[wavefunction]\nbackflow = "rbm"\n', "needs wavefunction.slater = true"),
    ('[wavefunction]\nbackflow = "rbm"\nslater = true\n[sampler]\nkind = "gibbs"\n', "not with backflow"),
    ('[wavefunction]\nbackflow = "pade"\n', 'wavefunction.backflow = "pade"'),
])
def test_backflow_option_rules_give_one_line_errors(text, needle):
    from vmc.input import config
    with pytest.raises(config.ConfigError) as info:
        config.from_text(text, "in.toml")
    assert "\n" not in str(info.value) and needle in str(info.value)


def test_warm_start_from_a_plain_slater_jastrow_rbm_file(tmp_path):
    """`from_file` of a run without backflow (a file older than the backflow options) starts a backflow
    state: the stored blocks by name, the backflow's from this run's fresh parameters with v = 0, so the
    warm-started psi equals the stored one."""
    import json

    import h5py

    from vmc.input import config
    from vmc.output import io
    from vmc.drivers import driver
    from vmc.model.wavefunction import TrialState
    plain_cfg = config.from_text(dot_input())
    plain = TrialState.from_spec(plain_cfg.spec())
    plain.randomize(np.random.default_rng(1), 0.3)
    plain.params[plain.index["jastrow.beta"]] = 0.6
    stored = plain_cfg.to_dict()
    del stored["wavefunction"]["backflow"], stored["wavefunction"]["backflow_hidden"]
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = io.FORMAT
        f.attrs["config"] = json.dumps(stored)
        f["wavefunction/params"] = plain.params
    cfg = config.from_text(dot_input(f'backflow = "rbm"\nfrom_file = "{path}"')).spec()
    fresh = TrialState.from_spec(cfg)
    fresh.randomize(np.random.default_rng(2), 0.3)
    wf = TrialState.from_spec(cfg)
    wf.params[:] = driver.start_parameters(cfg, fresh.params)
    assert wf.n_params == plain.n_params + wf.factor("backflow").hidden * 10
    for name in ("a", "b", "W", "sigma"):
        np.testing.assert_array_equal(wf.views[0][name], plain.views[0][name])
    assert wf.beta == 0.6
    assert np.all(wf.views[2]["v"] == 0.0)
    for name in ("c", "U"):
        np.testing.assert_array_equal(wf.views[2][name], fresh.views[2][name])
    for x in np.random.default_rng(3).normal(0.0, 1.0, (3, 12)):
        assert wf.log_psi(x) == pytest.approx(plain.log_psi(x), rel=1e-12, abs=1e-12)
        assert wf.sign(x) == plain.sign(x)
    other = config.from_text(dot_input(f'backflow = "rbm"\nfrom_file = "{path}"\nhidden = 3'))
    with pytest.raises(ValueError, match="wavefunction.hidden = 2, this input 3"):
        driver.start_parameters(other.spec())


def test_a_run_warm_started_with_backflow_optimizes_eta(tmp_path):
    """The whole run (`vmc.drivers.driver.run`): from a plain file, two SR iterations move v away from 0; the file
    holds the backflow parameters in their shapes."""

    import h5py
    from conftest import run_in_memory

    from vmc.input import config
    from vmc.output import io
    from vmc.model.wavefunction import TrialState
    plain_cfg = config.from_text(dot_input())
    plain = TrialState.from_spec(plain_cfg.spec())
    plain.randomize(np.random.default_rng(1), 0.1)
    path = tmp_path / "plain.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = io.FORMAT
        f.attrs["config"] = plain_cfg.to_json()
        f["wavefunction/params"] = plain.params
    text = dot_input(f'backflow = "rbm"\nbackflow_hidden = 2\nfrom_file = "{path}"').replace(
        'kind = "importance"', 'kind = "importance"\ndt = 0.2\nwalkers = 2\nburn_in = 20\nsteps = 100\n'
        '[optimizer]\nkind = "sr"\niterations = 2\nlearning_rate = 0.05\n[production]\nsteps = 16\nburn_in = 0')
    summary, f = run_in_memory(config.from_text(text).spec())
    assert math.isfinite(summary["mean"]) and summary["mean"] > 10.0
    v = f["wavefunction/backflow/v"][...]
    assert v.shape == (2, 2) and np.all(v != 0.0)
    assert f["wavefunction/backflow/U"].shape == (2, 3, 2)
