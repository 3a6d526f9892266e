"""Samplers: incremental updates, exact cases, and that each samples the right distribution."""
import numpy as np
import pytest

from vmc.input import config
from vmc.mc.estimators import Moments, sums
from vmc.mc.samplers import LANGEVIN, METROPOLIS, Record, Rule, Sampler, Walkers, run_chain
from vmc.model.hamiltonian import N_OBSERVABLES, Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma, initialize

SAMPLERS = [("metropolis", {"step": 1.0}), ("importance", {"dt": 0.1}), ("gibbs", {})]


def walkers(n, M, seed):
    return Walkers.start(seed, n, M, spread=1.0)


def run(wf, ham, sampler, n_walkers=16, n_burn=100, n_steps=500, seed=1):
    w = walkers(n_walkers, wf.n_visible, seed)
    s = sampler.sample(wf, ham, w, n_burn, n_steps)
    return s, Moments.from_sums(sums(s))


@pytest.mark.parametrize("sweep", ["metropolis", "importance"])
@pytest.mark.parametrize("factors", ["rbm", "rbm+jastrow+slater", "symmetric+jastrow+slater"])
def test_incremental_updates_match_recomputation(sweep, factors):
    """Every factor's per-walker cache (RBM hidden pre-activations and their softplus, inverse Slater
    matrices, pair terms), updated move by move over accepted and rejected moves, equals a recomputation
    from scratch."""
    rng = np.random.default_rng(3)
    P, D, N = 6, 2, 5
    full = factors != "rbm"
    wf = TrialState(P, D, N, sigma=0.8, jastrow=full, slater=full,
                    rbm="symmetric" if factors.startswith("symmetric") else "coordinates").randomize(rng, 0.3)
    x = rng.normal(size=P * D)
    kernel = wf.kernel_data(1)
    out = Record(np.empty((1000, N_OBSERVABLES)), np.empty((0, 0)), np.empty(0), 1.0)
    kind, move = (LANGEVIN, 0.3) if sweep == "importance" else (METROPOLIS, 1.0)
    rule, stream = Rule(kind, move, np.empty(0), np.empty(0)), walkers(1, P * D, 3).stream(0)
    accepted = run_chain(kernel, Hamiltonian(P, D, 1.0).kernel_terms(), 0, rule, x, D, stream, 0, 1000, out)
    assert 0.05 * 1000 * P < accepted < 0.98 * 1000 * P   # both accepted and rejected moves
    fresh = wf.kernel_data(1)
    initialize(fresh, 0, x)
    caches = {"u", "sp", "dinv", "pair"}
    compared = 0
    for f, g in zip(kernel, fresh):
        for name in caches & set(f._fields):
            np.testing.assert_allclose(getattr(f, name), getattr(g, name), rtol=1e-8, atol=1e-10, err_msg=name)
            compared += 1
    assert compared == {"rbm": 2, "rbm+jastrow+slater": 3, "symmetric+jastrow+slater": 4}[factors]


def valid(samplers):
    """(kind, opts, g) combinations; Gibbs samples |psi|^2 only for g = 1/2 (g = 1 is tested as an error)."""
    return [(kind, opts, g) for kind, opts in samplers for g in (0.5, 1.0) if not (kind == "gibbs" and g == 1.0)]


@pytest.mark.parametrize("kind,opts,g", valid(SAMPLERS))
def test_noninteracting_exact_energy_zero_variance(kind, opts, g):
    for P in (1, 2, 3):
        for D in (1, 2, 3):
            for omega in (0.5, 1.0):
                wf = TrialState(P, D, 2, sigma=default_sigma(omega, g), g=g)
                ham = Hamiltonian(P, D, omega, interaction=False)
                s, m = run(wf, ham, Sampler(kind, **opts), n_walkers=4, n_burn=10, n_steps=50)
                assert m.energy == pytest.approx(P * D * omega / 2, abs=1e-12)
                assert m.variance < 1e-10
                assert np.ptp(s.local_energy) < 1e-10


def test_gibbs_with_g_one_is_an_error():
    with pytest.raises(config.ConfigError, match="g = 0.5"):
        config.from_text('[wavefunction]\ng = 1.0\n[sampler]\nkind = "gibbs"')


@pytest.mark.parametrize("kind,opts,g", valid([("metropolis", {"step": 2.0}), ("importance", {"dt": 0.3}),
                                                ("gibbs", {}), ("importance", {"dt": 2.0})]))
def test_sampled_second_moment_matches_gaussian_theory(kind, opts, g):
    """W = 0: |psi|^2 ~ exp(-g x^2 / sigma^2), so <x_k^2> = sigma^2 / (2 g) for any sigma."""
    P, D, omega, sigma = 2, 2, 1.0, 0.9   # deliberately not the exact width: E_L fluctuates
    wf = TrialState(P, D, 2, sigma=sigma, g=g)
    ham = Hamiltonian(P, D, omega, interaction=False)
    s, m = run(wf, ham, Sampler(kind, **opts), n_walkers=64, n_burn=500, n_steps=4000, seed=11)
    # <V_trap> = omega^2/2 * sum_k <x_k^2>; error from the spread of independent walkers
    v = s.observables[..., 1].mean(axis=1)
    err = v.std(ddof=1) / np.sqrt(v.size)
    expected = 0.5 * omega**2 * P * D * sigma**2 / (2 * g)
    assert abs(v.mean() - expected) < 4 * err
    assert err < 0.01 * expected   # the check has teeth
    if opts.get("dt") == 2.0:
        assert s.acceptance < 0.7   # too large a time step: acceptance drops, the answer stays right


def test_all_samplers_agree_for_interacting_random_rbm():
    rng = np.random.default_rng(5)
    P, D, omega = 2, 2, 1.0
    wf = TrialState(P, D, 2, sigma=default_sigma(omega, 0.5)).randomize(rng, 0.1)
    ham = Hamiltonian(P, D, omega, interaction=True)
    results = {}
    for kind, opts in SAMPLERS:
        _, m = run(wf, ham, Sampler(kind, **opts), n_walkers=64, n_burn=300, n_steps=5000, seed=21)
        results[kind] = m
        assert m.error < 0.01
    kinds = list(results)
    for i in range(len(kinds)):
        for j in range(i + 1, len(kinds)):
            a, b = results[kinds[i]], results[kinds[j]]
            assert abs(a.energy - b.energy) < 4 * np.hypot(a.error, b.error), (kinds[i], kinds[j], a, b)
    # a random RBM is not the ground state: above the exact 3.0
    assert results["metropolis"].energy > 3.0


def test_same_seed_same_chain():
    wf = TrialState(2, 2, 2, sigma=0.7).randomize(np.random.default_rng(0), 0.1)
    ham = Hamiltonian(2, 2, 1.0)
    a, _ = run(wf, ham, Sampler("importance", dt=0.1), n_walkers=3, n_steps=50, seed=9)
    b, _ = run(wf, ham, Sampler("importance", dt=0.1), n_walkers=3, n_steps=50, seed=9)
    c, _ = run(wf, ham, Sampler("importance", dt=0.1), n_walkers=3, n_steps=50, seed=10)
    assert np.array_equal(a.observables, b.observables)
    assert not np.array_equal(a.observables, c.observables)


def refcount_calls_in_loops(dispatcher, signature, cold=("init", "refresh", "log_value")) -> list[str]:
    """The NRT_incref / NRT_decref calls that lie on a cycle of the control-flow graph of the compiled
    function or of a function it calls without inlining (optimized LLVM IR, after numba's reference-count
    pruning). Not counted: functions whose name contains one of `cold` (the contract's functions that run
    once per pass or every REFRESH_EVERY sweeps), and the blocks that call them and the blocks right after."""
    import llvmlite.binding as llvm
    module = llvm.parse_assembly(dispatcher.inspect_llvm(signature))
    calls = []
    for fn in module.functions:
        wrapper = fn.name.startswith(("_ZN7cpython", "cfunc.", "NRT_"))
        if fn.is_declaration or wrapper or any(c in fn.name for c in cold):
            continue
        succ, calling = {}, set()
        for block in fn.blocks:
            instructions = list(block.instructions)
            succ[block.name] = [op.name for op in instructions[-1].operands
                                if op.value_kind == llvm.ValueKind.basic_block]
            if any(i.opcode == "call" and any(c in str(i).split("(")[0] for c in cold) for i in instructions):
                calling.add(block.name)
        skip = calling | {s for b in calling for s in succ[b]}

        def on_cycle(start):
            seen, todo = set(), list(succ[start])
            while todo:
                b = todo.pop()
                if b == start:
                    return True
                if b not in seen:
                    seen.add(b)
                    todo.extend(succ[b])
            return False
        for block in fn.blocks:
            refops = [str(i).strip() for i in block.instructions
                      if i.opcode == "call" and ("@NRT_incref" in str(i) or "@NRT_decref" in str(i))]
            if refops and block.name not in skip and on_cycle(block.name):
                calls += refops
    return calls


@pytest.mark.parametrize("rbm", ["coordinates", "symmetric"])
def test_the_chain_kernel_counts_no_references_in_its_loops(rbm):
    """Every inlined contract call binds the factor's arrays to new variables, and numba increments and
    decrements their reference counts (an atomic add each: 13 per call, half the time of a move at
    (P, D, N) = (2, 2, 4), benchmarks/README.md) unless LLVM can prune the pairs. A raise path between
    them (every division under error_model="python", a call to a function that is not inlined) or a
    branch where arrays die at different points on its two sides defeats the pruning; `run_chain` is
    compiled with error_model="numpy" for that (`chain` inherits it). For an RBM trial state (moves, E_L,
    d ln psi / d theta and the histogram) no reference count is left in a loop but around the call of
    `refresh` (once per REFRESH_EVERY sweeps)."""
    import numba

    from vmc.mc.samplers import run_chain
    options = {k: v for k, v in run_chain.targetoptions.items() if k not in ("nopython", "cache", "boundscheck")}
    assert options.get("error_model") == "numpy"
    chain = numba.njit(**options)(run_chain.py_func)      # uncached: inspect_llvm needs the compiled IR
    P, D = 2, 2
    wf = TrialState(P, D, 4, sigma=0.7, optimize_sigma=True, rbm=rbm, pair_hidden=2)
    out = Record(np.zeros((5, N_OBSERVABLES)), np.zeros((5, wf.n_opt)), np.zeros(4), 3.0)
    chain(wf.kernel_data(1), Hamiltonian(P, D, 1.0).kernel_terms(), 0, Rule(METROPOLIS, 0.5, np.empty(0), np.empty(0)),
          np.linspace(0.0, 0.3, 4), D, walkers(1, P * D, 1).stream(0), 0, 5, out)
    assert refcount_calls_in_loops(chain, chain.signatures[0]) == []


def test_the_drift_limit_is_unrs_and_the_dmc_velocity_ratio_uses_the_same():
    """The Langevin rule of VMC and DMC (`vmc.mc.moves`): the limited drift v_bar = v (-1 + sqrt(1 + 2 v^2 dt)) /
    (v^2 dt) of UNR per particle, computed here from the formula; DMC's |v_bar| / |v| over all particles from the
    same limit; near nodes v_bar dt stays below sqrt(2 dt), far from them v_bar = v to first order."""
    from vmc.mc.moves import drift_force, limit_drift, velocity_ratio
    rng = np.random.default_rng(4)
    P, D, dt = 5, 2, 0.05
    grad = rng.normal(0.0, 10.0, P * D)
    grad[:D] *= 1e3                              # one particle next to a node
    limited = np.empty(P * D)
    for i in range(P):
        force = grad[i * D:(i + 1) * D].copy()
        drift_force(force, dt)
        limited[i * D:(i + 1) * D] = force / 2.0
        v2 = np.sum(grad[i * D:(i + 1) * D] ** 2)
        expected = grad[i * D:(i + 1) * D] * (-1.0 + np.sqrt(1.0 + 2.0 * v2 * dt)) / (v2 * dt)
        assert np.allclose(limited[i * D:(i + 1) * D], expected, rtol=1e-13)
        assert np.linalg.norm(limited[i * D:(i + 1) * D]) * dt < np.sqrt(2.0 * dt)
    assert np.isclose(velocity_ratio(grad, P, D, dt), np.linalg.norm(limited) / np.linalg.norm(grad), rtol=1e-13)
    small = np.array([1e-3, -2e-3])
    limit_drift(small, dt)
    assert np.allclose(small, [1e-3, -2e-3], rtol=1e-7)

