"""Fixed-node diffusion Monte Carlo (`vmc.mc.dmc`): physics on one rank, then the application (MPI
reproducibility, resume after SIGKILL, bad input). Tolerances are multiples of the blocked error bars."""
import doctest
import json
import math
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import MPIEXEC, ROOT, run_cli, wait_unlocked

from vmc.analysis import blocking
from vmc.analysis import results as analysis
from vmc.mc import dmc, exactsum, streams
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState, _log_value
from vmc.output.io import attr_text
from vmc.parallel import Comm, walker_range


def population(wf, ham, n, tau, seed=1, feedback=10.0):
    pos = np.random.default_rng(seed).normal(0.0, 1.0, (n, wf.n_visible))
    return dmc.Population(wf, ham, Comm(None), n, tau, feedback, (seed, seed + 1), pos)


def vmc_energy(wf, ham, walkers=16, steps=4000):
    w = Walkers.start(9, walkers, wf.n_visible, 1.0)
    s = Sampler("importance", dt=0.1).sample(wf, ham, w, 500, steps)
    r = blocking.analyze(s.local_energy)
    return r.mean, r.error


def chains(wf, ham, tau, n_pops=4, walkers=250, n_eq=500, n_steps=4000):
    """Energies and total weights per step of `n_pops` independent populations (n_pops, n_steps) after
    n_eq steps: independent chains make the blocked error bar reliable (many blocks)."""
    energy, weight = [], []
    for seed in range(n_pops):
        pop = population(wf, ham, walkers, tau, seed=seed)
        eq = pop.advance(n_eq)
        rec = pop.advance(n_steps)
        energy.append(rec[:, 0])
        weight.append(np.concatenate([eq[:, 6], rec[:, 6]]) / walkers)
    return blocking.analyze(np.array(energy)), np.array(weight)


@pytest.mark.parametrize("P,D", [(1, 1), (2, 2)])
def test_poor_nodeless_trial_state_reaches_the_ground_state(P, D):
    """Gaussian width off by 1.5 (no Coulomb, bosons): VMC far above P D omega / 2, DMC recovers it within
    3 sigma at a small time step; the total weight stays within 10 % of the target population."""
    wf = TrialState(P, D, 1, sigma=1.5 * math.sqrt(0.5), fermions=False)
    ham = Hamiltonian(P, D, 1.0, interaction=False)
    exact = 0.5 * P * D
    e_vmc, err_vmc = vmc_energy(wf, ham)
    assert e_vmc - exact > 5 * err_vmc and e_vmc - exact > 0.1 * P * D
    r, weight = chains(wf, ham, 0.01)
    assert abs(r.mean - exact) < 3 * r.error, (r.mean, r.error)
    assert r.error < 0.01 * P * D
    assert np.all(np.abs(weight - 1) < 0.1)


@pytest.mark.parametrize("P,D,fermions", [(6, 2, True), (3, 2, False)])
def test_exact_trial_state_zero_variance(P, D, fermions):
    """The non-interacting ground state (closed shell with determinants, bosons): every DMC energy equals
    the exact value and the population stays at its target."""
    wf = TrialState(P, D, 2, sigma=math.sqrt(0.5), slater=fermions, fermions=fermions)
    ham = Hamiltonian(P, D, 1.0, interaction=False)
    exact = 10.0 if fermions else 0.5 * P * D
    pop = population(wf, ham, 200, 0.02)
    rec = pop.advance(200)
    np.testing.assert_allclose(rec[:, 0], exact, rtol=1e-12)
    np.testing.assert_allclose(rec[:, 6], 200.0, rtol=1e-12)       # total weight
    np.testing.assert_allclose(rec[:, 5], exact, rtol=1e-12)       # trial energy


def test_two_electrons_dmc_below_vmc_and_exact():
    """Two interacting electrons in 2D from the non-interacting Gaussian (VMC 3.25): DMC (nodeless singlet)
    reaches the exact 3.0 within its error and lies far below VMC."""
    wf = TrialState(2, 2, 1, sigma=math.sqrt(0.5), fermions=True)
    ham = Hamiltonian(2, 2, 1.0, interaction=True)
    e_vmc, err_vmc = vmc_energy(wf, ham)
    r, _ = chains(wf, ham, 0.005, n_eq=400, n_steps=2000)
    assert r.mean < e_vmc - 10 * math.hypot(r.error, err_vmc)
    assert abs(r.mean - 3.0) < 3 * r.error + 0.002, (r.mean, r.error)   # + a time-step error of ~1e-3


def test_fixed_node_no_accepted_move_changes_the_sign():
    """Six fermions at a large time step: many proposals would cross a node (and are rejected); no walker's
    sign of psi ever differs from its parent's sign before the step."""
    wf = TrialState(6, 2, 2, sigma=math.sqrt(0.5), slater=True, fermions=True)
    wf.params[:wf.n_opt] += np.random.default_rng(3).normal(0, 0.05, wf.n_opt)   # not the exact state
    ham = Hamiltonian(6, 2, 1.0, interaction=False)
    pop = population(wf, ham, 50, 0.3)
    data = wf.kernel_data()

    def signs():
        return np.array([_log_value(data, x)[1] for x in pop.X])
    rows = np.zeros((50, dmc.N_COLUMNS))
    for _ in range(40):
        before = signs()
        pop.step(rows)
        assert np.array_equal(signs(), before[pop.last_parents])
    assert pop.c.crossings > 0


def test_comb_and_streams():
    w = np.random.default_rng(0).exponential(size=1000)
    parents = dmc.comb(w, 0.37)
    copies = np.bincount(parents, minlength=w.size)
    expected = w.size * w / w.sum()
    assert np.all(np.abs(copies - expected) < 1.0 + 1e-12) and copies.sum() == w.size
    u = streams.draws(np.uint64(5), np.uint64(6), 3, 7, 20000)
    assert np.array_equal(u, streams.draws(np.uint64(5), np.uint64(6), 3, 7, 20000))
    assert abs(u.mean() - 0.5) < 0.01 and abs(u.var() - 1 / 12) < 0.003
    assert not np.array_equal(u[:10], streams.draws(np.uint64(5), np.uint64(6), 3, 8, 10))


def test_exact_sums_do_not_depend_on_order_or_partition():
    """`vmc.mc.exactsum`: the sum of any split of the terms (per-rank accumulators added as integers) is the
    exactly rounded sum (checked against rational arithmetic), also for cancellations, subnormals, sums
    beyond the largest double and infinite terms; the running sums are exactly rounded too."""
    from fractions import Fraction
    rng = np.random.default_rng(4)
    for trial in range(300):
        x = rng.normal(size=rng.integers(1, 30)) * 2.0 ** rng.integers(-1074, 1000, 1).astype(float)
        x = np.concatenate([x, -x[:trial % 3], [1.0, 2.0 ** -60, 5e-324][:trial % 4]])
        x = rng.permutation(x[np.isfinite(x)])
        exact = sum(map(Fraction, x.tolist()), Fraction(0))
        want = exact.numerator / exact.denominator
        cuts = np.sort(rng.integers(0, x.size + 1, 3))
        parts = sum(exactsum.accumulate(p) for p in np.split(x, cuts))
        assert exactsum.value(parts) == want == exactsum.fsum(x[::-1]), (trial, x)
    big = np.full(3, 1.5e308)
    assert exactsum.fsum(big) == np.inf and exactsum.fsum(np.append(big, -big)) == 0.0
    assert exactsum.fsum([np.inf, 1.0]) == np.inf and np.isnan(exactsum.fsum([np.inf, -np.inf]))
    w = rng.exponential(size=50)
    running = exactsum.prefix(exactsum.zeros(), w)
    assert all(running[i] == float(sum(map(Fraction, w[:i + 1].tolist()))) for i in range(w.size))
    result = doctest.testmod(exactsum)
    assert result.attempted >= 4 and result.failed == 0


@pytest.mark.parametrize("ranks", [2, 3, 8])
def test_comb_split_between_ranks_is_the_one_rank_comb(ranks):
    """Each rank finds its own teeth from the exclusive scan of the weights (`dmc.comb_teeth`): put
    together, every split of the slots between ranks gives exactly the parents of the one-rank comb,
    including ranks on which no tooth falls and teeth rounding puts at or past W."""
    rng = np.random.default_rng(ranks)
    for trial in range(200):
        n = int(rng.integers(ranks, 60))
        w = rng.exponential(size=n) ** rng.choice([1, 4])
        w[rng.random(n) < 0.2] *= 1e-9
        u = float(rng.random()) if trial % 5 else 0.0
        expected = dmc.comb(w, u)
        cum = exactsum.prefix(exactsum.zeros(), w)
        assert np.array_equal(expected, np.minimum(np.searchsorted(cum, (u + np.arange(n)) * (cum[-1] / n),
                                                                   side="right"), n - 1))
        bounds = [walker_range(n, r, ranks) for r in range(ranks)]
        parents = []
        for r, mine in enumerate(bounds):
            before = exactsum.accumulate(w[:mine.start])
            local = exactsum.prefix(before, w[mine])
            first, p = dmc.comb_teeth(local, exactsum.value(before), cum[-1] / n, u, n, r == ranks - 1)
            assert first == len(parents)
            parents += (p + mine.start).tolist()
        assert parents == expected.tolist()


POPULATION = """
import sys, math, numpy as np
from vmc import parallel
from vmc.mc import dmc
from vmc.parallel import world
parallel.SCAN_IN_ALLREDUCE = int(sys.argv[2])
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState
comm = world()
wf = TrialState(6, 2, 2, sigma=math.sqrt(0.5), slater=True, fermions=True)
wf.params[:wf.n_opt] += np.random.default_rng(3).normal(0, 0.05, wf.n_opt)
pop = dmc.Population(wf, Hamiltonian(6, 2, 1.0), comm, 24, 0.05, 10.0, (7, 8),
                     np.random.default_rng(1).normal(0.0, 1.0, (24, wf.n_visible)))
received, step = [], pop.step
pop.step = lambda rows, measured: (step(rows, measured), received.append(pop.received))[0]
records = [pop.advance(10) for chunk in range(3)]
received = sum(received)
parts = comm.gather((pop.X, pop.el, pop.vr, received))
if comm.rank == 0:
    X, el, vr = (np.concatenate([p[k] for p in parts]) for k in range(3))
    np.savez(sys.argv[1], records=np.concatenate(records), X=X, el=el, vr=vr, received=sum(p[3] for p in parts))
"""


def test_population_on_four_and_eight_ranks_is_bit_identical_to_one(tmp_path):
    """Six fermions, 24 walkers, 30 steps on 1 rank and on 4 and 8 ranks (3 walkers per rank: copies cross
    ranks at most steps): every record, position, E_L and ratio is bit-identical."""
    script = tmp_path / "population.py"
    script.write_text(POPULATION)
    subprocess.run([sys.executable, str(script), str(tmp_path / "n1.npz"), "8"], check=True, cwd=ROOT)
    one = np.load(tmp_path / "n1.npz")
    for ranks in (4, 8):      # the exclusive scan inside the allreduce (4 ranks), beside it (8 ranks)
        out = tmp_path / f"n{ranks}.npz"
        p = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, str(script), str(out), "4"], cwd=ROOT,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode == 0, p.stderr
        many = np.load(out)
        for key in ("records", "X", "el", "vr"):
            assert np.array_equal(one[key], many[key]), (ranks, key)
        assert many["received"] > 0 and one["received"] == 0


def test_a_copied_walker_carries_its_caches():
    """The comb copies a walker's whole state: positions, E_L, ratio and the factors' caches (no rebuild). After
    30 steps with copies at many of them (RBM x PJ x SD, 6 fermions), every walker's caches are those a
    rebuild from its positions gives (to the drift of the incremental updates): a cache left behind by the slot's
    old walker, or one not carried, is off by O(1)."""
    wf = TrialState(6, 2, 3, sigma=math.sqrt(0.5), jastrow=True, slater=True)
    wf.randomize(np.random.default_rng(4), 0.05)
    ham = Hamiltonian(6, 2, 1.0)
    pop = dmc.Population(wf, ham, Comm(None), 40, 0.05, 10.0, (3, 4),
                         np.random.default_rng(2).normal(0.0, 1.0, (40, wf.n_visible)))
    copies, step = [], pop.step
    pop.step = lambda rows, measured: (step(rows, measured), copies.append(int(np.sum(
        pop.last_parents != np.arange(40)))))[0]
    pop.advance(30)
    assert sum(c > 0 for c in copies) >= 10       # copies at many steps: 1-13 slots each with this seed
    carried = [c.copy() for c in pop.caches]
    pop._init(np.arange(40))
    for before, rebuilt in zip(carried, pop.caches):
        np.testing.assert_allclose(before, rebuilt, rtol=1e-9, atol=1e-9)


def test_extrapolation_and_mser():
    tau = np.array([0.005, 0.01, 0.02, 0.04])
    e = 20.0 + 0.3 * tau
    fit = dmc.extrapolate(tau, e, np.full(4, 1e-4))
    assert fit["order"] == 1 and abs(fit["e0"] - 20.0) < 1e-9
    fit = dmc.extrapolate(tau, 20.0 + 0.3 * tau + 200 * tau**2, np.full(4, 1e-4))
    assert fit["order"] == 2 and abs(fit["e0"] - 20.0) < 1e-6
    with pytest.raises(ValueError, match="two different time steps"):   # a population series: one tau
        dmc.extrapolate(np.full(3, 0.01), np.array([20.0, 20.1, 20.2]), np.full(3, 1e-4))
    fit = dmc.extrapolate(np.array([0.01, 0.01, 0.02]), np.array([20.003, 20.003, 20.006]), np.full(3, 1e-4))
    assert fit["order"] == 1 and abs(fit["e0"] - 20.0) < 1e-9       # a repeated tau: no quadratic
    x = np.concatenate([20 + 2 * np.exp(-np.arange(300) / 50), np.random.default_rng(1).normal(20, 0.01, 3000)])
    assert 100 < dmc.mser(x) < 500


# ----------------------------------------------------------------------------------------------
# The application: from a file's /wavefunction, MPI, resume, bad input
# ----------------------------------------------------------------------------------------------

OPTIMIZE = """
seed = 4
[wavefunction]
jastrow = "pade"
[sampler]
kind = "importance"
dt = 0.3
walkers = 4
burn_in = 100
steps = 200
[optimizer]
iterations = 5
[production]
steps = 16
"""

DMC = """
seed = 5
[wavefunction]
jastrow = "pade"
from_file = "{source}"
[sampler]
kind = "importance"
dt = 0.3
walkers = 4
burn_in = 200
[optimizer]
iterations = 0
[production]
steps = 100
[dmc]
time_step = 0.02
walkers = {walkers}
equilibration = 200
steps = {steps}
"""


@pytest.fixture(scope="module")
def trial_file(tmp_path_factory):
    d = tmp_path_factory.mktemp("dmc")
    (d / "opt.toml").write_text(OPTIMIZE)
    p = run_cli("run", d / "opt.toml", "-o", d / "opt.h5", "--quiet")
    assert p.returncode == 0, p.stderr
    return d


def _dmc_input(d, name, walkers=64, steps=600):
    text = DMC.format(source=d / "opt.h5", walkers=walkers, steps=steps)
    path = d / name
    path.write_text("checkpoint_interval = 0\n" + text)
    return path


def _dmc_result(path):
    with h5py.File(path, "r") as f:
        return {k: f[f"dmc/{k}"][...] for k in ("energy", "population", "trial_energy")}, dict(f["dmc"].attrs)


def test_dmc_mpi_reproducible_and_resumable(trial_file):
    """From a file's /wavefunction: -n 1 and -n 2 agree bit for bit (the walkers start from the same
    streams and every population sum is exact, `vmc.mc.exactsum`); two -n 2 runs are bit-identical; a run
    killed (SIGKILL) during DMC and resumed ends on the same numbers bit for bit; so does a complete run resumed
    with more DMC steps (`--set dmc.steps`)."""
    d = trial_file
    inp = _dmc_input(d, "dmc.toml")
    results = {}
    for name, ranks in (("n1", 1), ("n2", 2), ("n2b", 2)):
        p = run_cli("run", inp, "-o", d / f"{name}.h5", "--quiet", ranks=ranks)
        assert p.returncode == 0, p.stderr
        assert "E_DMC" in p.stdout
        results[name] = _dmc_result(d / f"{name}.h5")
    a, b, c = (results[k][0] for k in ("n1", "n2", "n2b"))
    for k in a:
        assert np.array_equal(b[k], c[k])
        assert np.array_equal(a[k], b[k])
    assert results["n2"][1]["steps_done"] == 800
    # kill during DMC, resume
    out = d / "killed.h5"
    proc = subprocess.Popen([str(MPIEXEC), "-n", "2", sys.executable, "-m", "vmc", "run", str(inp), "-o", str(out),
                             "--quiet"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE"), start_new_session=True)
    deadline = time.time() + 300
    killed = False
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(out, "r", locking=False) as f:
                if "dmc" in f and f["dmc"].attrs["steps_done"] >= 300:
                    os.killpg(proc.pid, signal.SIGKILL)
                    killed = True
                    break
        except (OSError, KeyError):
            pass
        time.sleep(0.05)
    proc.wait()
    assert killed, "the run ended before it could be killed"
    wait_unlocked(out)
    p = run_cli("run", "--resume", out, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    resumed = _dmc_result(out)[0]
    for k in b:
        assert np.array_equal(resumed[k], b[k])
    # a short run (it fails the guard: too few independent samples) asked for more DMC steps, then the complete
    # run asked for more again, continue as if they had been asked for from the start: bit for bit where the
    # short run ended on a chunk boundary of the long one (a chunk starts by rebuilding the factors' caches)
    short = d / "short.h5"
    p = run_cli("run", inp, "-o", short, "--quiet", "--set", "dmc.steps=300", ranks=2)
    assert p.returncode in (0, 1), p.stderr
    p = run_cli("run", "--resume", short, "--quiet", "--set", "dmc.steps=250", ranks=2)
    assert p.returncode == 2 and "below the 300 measured DMC steps" in p.stderr
    p = run_cli("run", "--resume", short, "--quiet", "--set", "dmc.steps=600", ranks=2)
    assert p.returncode == 0, p.stderr
    extended, attrs = _dmc_result(short)
    assert attrs["steps_done"] == 800
    for k in b:
        assert np.array_equal(extended[k], b[k])
    p = run_cli("run", "--resume", short, "--quiet", "--set", "dmc.steps=700", ranks=2)
    assert p.returncode == 0, p.stderr
    extended, attrs = _dmc_result(short)
    assert attrs["steps_done"] == 900 and np.all(np.isfinite(extended["energy"]))
    before = short.read_bytes()
    p = run_cli("run", "--resume", short, "--set", "dmc.steps=700")      # as many as it has: nothing to do
    assert p.returncode == 0 and "already complete, nothing to do" in p.stdout + p.stderr, p.stderr
    assert short.read_bytes() == before
    for k in b:
        assert np.array_equal(extended[k][:800], b[k])
    p = run_cli("run", "--resume", d / "opt.h5", "--set", "dmc.steps=100")
    assert p.returncode == 2 and "has no DMC" in p.stderr
    p = run_cli("analyze", d / "n2.h5")
    assert p.returncode == 0 and "E_DMC" in p.stdout
    p = run_cli("info", d / "n2.h5")
    assert p.returncode == 0 and "dmc: 800 of 800 steps" in p.stdout


def test_dmc_guard_fails_a_tiny_time_step_and_passes_an_ordinary_run(trial_file):
    """tau = 1e-6: the series barely decorrelates (its blocked error bar is far too small); `vmc run` prints
    the summary with the guard's FAILED line, stores it (status failed, summary.warnings, the data) and exits
    1; `vmc analyze` repeats it. The same input at tau = 0.02 passes with margin on every criterion (1000 steps: its
    autocorrelation time, 30-45 steps, leaves 20 or more of them)."""
    d = trial_file
    inp = _dmc_input(d, "guard.toml", steps=1000)
    p = run_cli("run", inp, "-o", d / "ok.h5", "--quiet")
    assert p.returncode == 0, p.stderr
    ok = analysis.analyze_path(str(d / "ok.h5"))["dmc"]
    assert ok["failures"] == [] and "FAILED" not in p.stdout
    assert ok["measured"] * ok["tau_eff"]["mean"] > 2 * analysis.DMC_MIN_SPAN
    assert ok["measured"] / ok["tau"] > 1.3 * analysis.DMC_MIN_INDEPENDENT
    p = run_cli("run", inp, "-o", d / "tiny.h5", "--quiet", "--set", "dmc.time_step=1e-6")
    assert p.returncode == 1, p.stderr
    assert "FAILED: the DMC energy cannot be trusted: too short in imaginary time" in p.stdout
    assert "run failed: the DMC energy cannot be trusted: too short in imaginary time" in p.stderr
    with h5py.File(d / "tiny.h5", "r") as f:
        assert attr_text(f, "status") == "failed" and f["dmc"].attrs["steps_done"] == 1200
        warnings = json.loads(attr_text(f, "summary"))["warnings"]
    assert any(w.startswith("DMC FAILED: too short in imaginary time") for w in warnings)
    p = run_cli("analyze", d / "tiny.h5")
    assert p.returncode == 0 and "FAILED: the DMC energy cannot be trusted" in p.stdout


def test_dmc_verdict_thresholds():
    """Each criterion of the guard alone, just inside and just outside its threshold."""
    ok = {"mean": 3.0, "error": 0.01, "measured": 1000, "tau": 20.0, "tau_eff": {"mean": 0.01}, "omega": 1.0,
          "lower_bound": 2.0}
    assert analysis.dmc_verdict(ok) == []
    assert analysis.dmc_verdict(dict(ok, tau_eff={"mean": 0.0051})) == []
    assert analysis.dmc_verdict(dict(ok, tau_eff={"mean": 0.0049}))[0].startswith("too short in imaginary time")
    assert analysis.dmc_verdict(dict(ok, omega=0.5, tau_eff={"mean": 0.0099}))[0].startswith("too short")
    assert analysis.dmc_verdict(dict(ok, tau=99.0)) == []
    assert analysis.dmc_verdict(dict(ok, tau=101.0))[0].startswith("too few independent samples")
    assert analysis.dmc_verdict(dict(ok, mean=1.96)) == []
    assert analysis.dmc_verdict(dict(ok, mean=1.94))[0].startswith("below the lowest energy H allows")
    assert analysis.dmc_verdict({"measured": 8})[0].startswith("no DMC energy")
    result = doctest.testmod(analysis)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("override,needle", [
    ("dmc.time_step=-0.01", "dmc.time_step = -0.01: must be"),
    ("dmc.steps=8", "dmc.steps"),
    ("wavefunction.from_file=\"nowhere.h5\"", "nowhere.h5"),
    ("wavefunction.hidden=3", "wavefunction.hidden"),
])
def test_bad_dmc_input_exit_2(trial_file, override, needle):
    inp = _dmc_input(trial_file, "bad.toml")
    p = run_cli("run", inp, "-o", trial_file / "bad.h5", "--set", override)
    assert p.returncode == 2, p.stderr
    assert needle in p.stderr and len(p.stderr.strip().splitlines()) == 1
    assert not (trial_file / "bad.h5").exists()


def test_dmc_population_smaller_than_ranks_exit_2(trial_file):
    inp = _dmc_input(trial_file, "small.toml", walkers=1)
    p = run_cli("run", inp, "-o", trial_file / "small.h5", ranks=2)
    assert p.returncode == 2
    assert "dmc.walkers = 1" in p.stderr


def test_docstring_examples():
    """comb, mser and the population-control weights (UNR) against their hand-worked examples."""
    import doctest
    result = doctest.testmod(dmc)
    assert result.attempted >= 3 and result.failed == 0
