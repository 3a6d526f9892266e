"""DMC throughput, one core: electron moves per CPU second of fixed-node DMC (`vmc.mc.dmc.Population.advance`:
every electron moved once per step by the drift-diffusion move, E_L every step, branching and the comb), for 2D
closed shells, and where a walker-step's time goes.

    .venv/bin/python benchmarks/bench_dmc.py [--particles 2 6 12 20 56] [--walkers 1000] [--seconds 1.0]
    .venv/bin/python benchmarks/bench_dmc.py --breakdown      # plus the per-factor, per-operation table

Trial state as in the dot table's inputs (docs/dots.py): RBM (hidden units 4, 12, 12, 20 for N = 2, 6, 12, 20,
6 from N = 30 on) x Padé-Jastrow x Slater determinants, parameters N(0, 0.01^2), omega = 1, tau = 0.01, walkers
first equilibrated by importance sampling. The metric is the one issue 23 measured: electron moves (N per
walker-step) per CPU second of one process (time.process_time; another process on the machine changes it less
than the wall clock would; compare rows of one run, and runs of two builds as ratios in paired rounds).

The breakdown times each contract operation of each factor alone over all walkers and electrons (ns per call:
`grad_current` is the drift at x, `propose` the ratio of a move, `grad_proposed` the drift at x' after it,
`grad_lap` the local energy's derivatives per walker) and splits a walker-step into the kernel's moves, its E_L
(`measure_all`) and the population's Python-level work (sums, weights, comb, copies).
"""
from __future__ import annotations

import argparse
import datetime
import platform

import numba
import numpy as np
from bench_size import hidden, timed

from vmc.mc.dmc import N_COLUMNS, Population, measure_all, step_all
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import (
    TrialState,
    accept_all,
    add_grad_current_all,
    add_grad_lap_all,
    add_grad_proposed_all,
    default_sigma,
    factor_kernel,
    init_all,
    propose_all,
)
from vmc.parallel import Comm

TAU = 0.01


def setup(N: int, n_walkers: int):
    wf = TrialState(N, 2, hidden(N), default_sigma(1.0, 0.5), jastrow=True, slater=N > 2)
    wf.randomize(np.random.default_rng(0), 0.01)
    ham = Hamiltonian(N, 2, 1.0, True)
    walkers = Walkers.start(2, n_walkers, wf.n_visible, 1.0)
    Sampler("importance", dt=0.1).sample(wf, ham, walkers, 100, 1)
    return wf, ham, walkers.positions


@factor_kernel
def _grad_current_loop(factors, X, P, D, reps):
    g = np.zeros(D)
    for _ in range(reps):
        for w in range(X.shape[0]):
            x = X[w]
            for i in range(P):
                add_grad_current_all(factors, w, x, i, g)
    return g[0]


@factor_kernel
def _propose_loop(factors, X, P, D, reps, with_grad):
    xp, dx, g = np.empty(D), np.full(D, 0.05), np.zeros(D)
    s = 0.0
    for _ in range(reps):
        for w in range(X.shape[0]):
            x = X[w]
            for i in range(P):
                for d in range(D):
                    xp[d] = x[i * D + d] + dx[d]
                v, sign = propose_all(factors, w, x, i, xp, dx)
                s += v
                if with_grad:
                    add_grad_proposed_all(factors, w, x, i, xp, g)
    return s + g[0]


@factor_kernel
def _grad_lap_loop(factors, X, reps):
    grad, lap = np.zeros(X.shape[1]), np.zeros(X.shape[1])
    for _ in range(reps):
        for w in range(X.shape[0]):
            add_grad_lap_all(factors, w, X[w], grad, lap)   # one view per walker, as in the samplers
    return grad[0] + lap[0]


@factor_kernel
def _accept_loop(factors, X, P, D, reps):
    """Propose and accept a small move of every electron (then of its reverse): propose + accept."""
    xp, dx = np.empty(D), np.empty(D)
    for r in range(reps):
        sgn = 0.01 if r % 2 == 0 else -0.01
        for w in range(X.shape[0]):
            x = X[w]
            for i in range(P):
                for d in range(D):
                    dx[d] = sgn
                    xp[d] = x[i * D + d] + sgn
                v, sign = propose_all(factors, w, x, i, xp, dx)
                accept_all(factors, w, x, i, xp)


@factor_kernel
def _init_loop(factors, X):
    for w in range(X.shape[0]):
        init_all(factors, w, X[w])


# numba entry points (the loops are written out per number of factors, as the samplers' kernels are)
@numba.njit(cache=True)
def _loop_grad_current(factors, X, P, D, reps):
    return _grad_current_loop(factors, X, P, D, reps)


@numba.njit(cache=True)
def _loop_propose(factors, X, P, D, reps, with_grad):
    return _propose_loop(factors, X, P, D, reps, with_grad)


@numba.njit(cache=True)
def _loop_grad_lap(factors, X, reps):
    return _grad_lap_loop(factors, X, reps)


@numba.njit(cache=True)
def _loop_accept(factors, X, P, D, reps):
    _accept_loop(factors, X, P, D, reps)


@numba.njit(cache=True)
def _init(factors, X):
    _init_loop(factors, X)


def breakdown(N: int, n_walkers: int, seconds: float) -> list[dict]:
    """ns per call of each operation, for each factor alone and for the product."""
    wf, ham, positions = setup(N, n_walkers)
    P, D = N, 2
    X = np.ascontiguousarray(positions)
    data = wf.kernel_data(n_walkers)
    rows = []
    for label, factors in [(f.name, (d,)) for f, d in zip(wf.factors, data)] + [("all", data)]:
        Xf = X.copy()
        _init(factors, Xf)
        calls = n_walkers * P
        ops = {
            "grad_current": lambda n: _loop_grad_current(factors, Xf, P, D, n),
            "propose": lambda n: _loop_propose(factors, Xf, P, D, n, False),
            "propose+grad_proposed": lambda n: _loop_propose(factors, Xf, P, D, n, True),
            "propose+accept": lambda n: _loop_accept(factors, Xf, P, D, 2 * n),
        }
        row = {"N": N, "factor": label}
        for op, work in ops.items():
            work(1)
            spent, n = timed(work, seconds / 4)
            row[op] = 1e9 * spent / (n * calls * (2 if op == "propose+accept" else 1))
        _loop_grad_lap(factors, Xf, 1)
        spent, n = timed(lambda n: _loop_grad_lap(factors, Xf, n), seconds / 4)
        row["grad_lap"] = 1e9 * spent / (n * n_walkers)
        rows.append(row)
    return rows


def step_split(N: int, n_walkers: int, seconds: float) -> dict:
    """us per walker-step: the whole step, the kernel (moves + E_L), E_L alone, and the Python-level rest."""
    wf, ham, positions = setup(N, n_walkers)
    pop = Population(wf, ham, Comm(None), n_walkers, TAU, 10.0, (1, 2), positions)
    pop.advance(2)
    spent, n = timed(pop.advance, seconds)
    total = spent / (n * n_walkers)
    rows = np.zeros((n_walkers, N_COLUMNS))

    def kernel(k):
        for _ in range(k):
            step_all(pop.factors, pop.terms, pop.X, pop.D, pop.tau, pop.key0, pop.key1, 0, 7, rows)
    kernel(1)
    spent, n = timed(kernel, seconds)
    kern = spent / (n * n_walkers)

    def local(k):
        for _ in range(k):
            measure_all(pop.factors, pop.terms, pop.X, pop.P, pop.D, pop.tau, rows)
    local(1)
    spent, n = timed(local, seconds)
    el = spent / (n * n_walkers)
    return {"N": N, "walkers": n_walkers, "step": 1e6 * total, "moves": 1e6 * (kern - el), "E_L": 1e6 * el,
            "population": 1e6 * (total - kern), "moves_per_s": N / total}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--particles", type=int, nargs="+", default=[2, 6, 12, 20, 56])
    p.add_argument("--walkers", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--breakdown", action="store_true", help="also time every operation of every factor")
    args = p.parse_args()
    steps = [step_split(N, args.walkers, args.seconds) for N in args.particles]
    print(f"# fixed-node DMC, 2D closed shells, RBM x PJ x SD, omega = 1, tau = {TAU}, {args.walkers} walkers, one "
          f"process; {platform.node()}, numba {numba.__version__}, {datetime.datetime.now():%Y-%m-%d %H:%M}; "
          "CPU microseconds per walker-step")
    print("| N | hidden | electron moves/s | walker-step (us) | moves | E_L | population (Python) |")
    print("|---|---|---|---|---|---|---|")
    for r in steps:
        print(f"| {r['N']} | {hidden(r['N'])} | {r['moves_per_s']:.3g} | {r['step']:.2f} | {r['moves']:.2f} | "
              f"{r['E_L']:.2f} | {r['population']:.2f} |")
    if args.breakdown:
        print("\n# ns per call (grad_current, propose, propose+grad_proposed, propose+accept: per electron move; "
              "grad_lap: per walker)")
        print("| N | factor | grad_current | propose | propose+grad_proposed | propose+accept | grad_lap |")
        print("|---|---|---|---|---|---|---|")
        for N in args.particles:
            for r in breakdown(N, min(args.walkers, 200), args.seconds):
                print(f"| {N} | {r['factor']} | {r['grad_current']:.0f} | {r['propose']:.0f} | "
                      f"{r['propose+grad_proposed']:.0f} | {r['propose+accept']:.0f} | {r['grad_lap']:.0f} |")


if __name__ == "__main__":
    main()
