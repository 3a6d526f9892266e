"""Cost with size for the quantum-dot table: CPU time per walker-sweep of VMC (importance sampling, RBM x
Padé-Jastrow x Slater determinants, with and without the per-sample d ln psi / d theta of the optimization) and
per walker-step of fixed-node DMC, for 2D closed shells N = 2 ... 56, with the exponent k of t ~ N^k fitted for
N >= 12, and the memory the kernels hold per walker.

    .venv/bin/python benchmarks/bench_size.py [--seconds 1.0] [--particles 2 6 12 20 30 42 56]

Hidden units as in the table's inputs (docs/dots.py): 4, 12, 12, 20 for N = 2, 6, 12, 20 and 6 from N = 30 on.
One core, CPU time (time.process_time), so another process on the machine changes the numbers less than the wall
clock would; compare rows of one run.
"""
from __future__ import annotations

import argparse
import datetime
import platform
import time

import numba
import numpy as np

from vmc.mc.dmc import Population
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma
from vmc.parallel import Comm


def hidden(N: int) -> int:
    return {2: 4, 6: 12, 12: 12, 20: 20}.get(N, 6)


def trial_state(N: int) -> TrialState:
    wf = TrialState(N, 2, hidden(N), default_sigma(1.0, 0.5), jastrow=True, slater=N > 2)
    wf.randomize(np.random.default_rng(0), 0.01)
    return wf


def timed(work, seconds: float) -> tuple[float, int]:
    """(CPU seconds, repetitions n) of work(n) with n grown until it takes `seconds`."""
    n = 2
    while True:
        t0 = time.process_time()
        work(n)
        spent = time.process_time() - t0
        if spent > seconds:
            return spent, n
        n *= 4


def vmc_sweep(N: int, seconds: float, record_grad: bool) -> float:
    wf, ham = trial_state(N), Hamiltonian(N, 2, 1.0, True)
    walkers = Walkers.start(1, 4, wf.n_visible, 1.0)
    sampler = Sampler("importance", dt=0.1 if N > 6 else 0.2)
    sampler.sample(wf, ham, walkers, 200, 10, record_grad=record_grad)      # compile and equilibrate
    spent, n = timed(lambda n: sampler.sample(wf, ham, walkers, 0, n, record_grad=record_grad), seconds)
    return spent / (n * walkers.n_walkers)


def dmc_step(N: int, seconds: float, n_walkers: int = 64) -> float:
    wf, ham = trial_state(N), Hamiltonian(N, 2, 1.0, True)
    walkers = Walkers.start(2, n_walkers, wf.n_visible, 1.0)
    Sampler("importance", dt=0.1).sample(wf, ham, walkers, 200, 1)
    pop = Population(wf, ham, Comm(None), n_walkers, 0.01, 10.0, (1, 2), walkers.positions)
    pop.advance(2)
    spent, n = timed(pop.advance, seconds)
    return spent / (n * n_walkers)


def memory_per_walker(N: int, n_walkers: int = 8) -> int:
    """Bytes of the factors' per-walker caches (arrays whose first axis is the walker) and the positions."""
    data = trial_state(N).kernel_data(n_walkers)
    arrays = [a for f in data for a in f if isinstance(a, np.ndarray) and a.ndim >= 2 and a.shape[0] == n_walkers]
    return sum(a.nbytes for a in arrays) // n_walkers + 8 * 2 * N


def fit(rows: list[dict], key: str, n_min: int = 12) -> float:
    sel = [r for r in rows if r["N"] >= n_min]
    return float(np.polyfit(np.log([r["N"] for r in sel]), np.log([r[key] for r in sel]), 1)[0]) if len(sel) > 1 \
        else float("nan")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=1.0)
    p.add_argument("--particles", type=int, nargs="+", default=[2, 6, 12, 20, 30, 42, 56])
    args = p.parse_args()
    rows = []
    for N in args.particles:
        rows.append({"N": N, "hidden": hidden(N),
                     "production": 1e6 * vmc_sweep(N, args.seconds, False),
                     "optimization": 1e6 * vmc_sweep(N, args.seconds, True),
                     "dmc": 1e6 * dmc_step(N, args.seconds), "bytes": memory_per_walker(N)})
        print(f"  N = {N}: done", flush=True)
    print(f"# 2D closed shells, RBM x PJ x SD, importance sampling (VMC) and fixed-node DMC (tau = 0.01); "
          f"{platform.node()}, numba {numba.__version__}, {datetime.date.today()}; CPU microseconds per "
          "walker-sweep (N moves + E_L) or walker-step")
    print("| N | hidden | VMC production (us/sweep) | VMC optimization, + d ln psi/d theta (us/sweep) | "
          "DMC (us/walker-step) | DMC electron moves/s | memory per walker |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['N']} | {r['hidden']} | {r['production']:.1f} | {r['optimization']:.1f} | {r['dmc']:.1f} | "
              f"{r['N'] / r['dmc'] * 1e6:.3g} | {r['bytes'] / 1024:.1f} KiB |")
    print(f"| k (t ~ N^k, N >= 12) | | {fit(rows, 'production'):.2f} | {fit(rows, 'optimization'):.2f} | "
          f"{fit(rows, 'dmc'):.2f} | | {fit(rows, 'bytes'):.2f} |")


if __name__ == "__main__":
    main()
