"""Cost of one sweep with and without backflow: RBM x Padé-Jastrow x determinants, the determinants plain
(`vmc.model.factors.slater`, O(N) ratios, O(N^2) updates) or at backflow quasi-positions (`vmc.model.factors.backflow`,
both determinants rebuilt per move: O(N^3) per move, O(N^4) per sweep), for P = 2, 6, 12, 20 in 2D, with
the fitted exponents t ~ P^k. A sweep is P importance-sampling moves plus E_L and d ln psi / d theta.

The machine may be shared: the two states are timed in paired rounds (plain, backflow, plain, ...) and
the median of the rounds is reported, so that a change of load hits both alike.

    .venv/bin/python benchmarks/bench_backflow.py [--seconds 0.3] [--rounds 3] [--json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import platform
import time

import numba
import numpy as np

from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma

PARTICLES = (2, 6, 12, 20)


def setup(P: int, backflow: bool):
    """The trial state (backflow with v != 0), Hamiltonian, walkers and sampler, compiled and equilibrated."""
    D = 2
    wf = TrialState(P, D, 2 * P, default_sigma(1.0, 0.5), jastrow=True, slater=True,
                    backflow="rbm" if backflow else "none", backflow_hidden=4)
    rng = np.random.default_rng(0)
    wf.randomize(rng, 0.05)
    if backflow:
        wf.params[wf.index["backflow.v"]:wf.index["backflow.c"]] = rng.normal(0.0, 0.1, 8)
    ham = Hamiltonian(P, D, 1.0, True)
    walkers = Walkers.start(1, 4, P * D, 1.0)
    sampler = Sampler("importance", dt=0.1)
    sampler.sample(wf, ham, walkers, 20, 10, record_grad=True)
    return wf, ham, walkers, sampler


def time_round(state, seconds: float) -> float:
    """CPU seconds per walker-sweep, over at least `seconds`."""
    wf, ham, walkers, sampler = state
    n = 10
    while True:
        t0 = time.process_time()
        sampler.sample(wf, ham, walkers, 0, n, record_grad=True)
        dt = time.process_time() - t0
        if dt > seconds:
            return dt / (n * walkers.n_walkers)
        n *= 4


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0.3)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for P in PARTICLES:
        states = {name: setup(P, name == "backflow") for name in ("plain", "backflow")}
        times = {name: [] for name in states}
        for _ in range(args.rounds):
            for name, state in states.items():
                times[name].append(time_round(state, args.seconds))
        med = {name: float(np.median(t)) for name, t in times.items()}
        rows.append({"P": P, "plain_us": 1e6 * med["plain"], "backflow_us": 1e6 * med["backflow"],
                     "ratio": med["backflow"] / med["plain"],
                     "spread": max((max(t) - min(t)) / np.median(t) for t in times.values())})
    fits = {key: float(np.polyfit(np.log([r["P"] for r in rows]), np.log([r[key] for r in rows]), 1)[0])
            for key in ("plain_us", "backflow_us")}
    if args.json:
        for r in rows:
            print(json.dumps({**r, "exponents": fits}))
        return
    print(f"# CPU time per walker-sweep (P importance moves + E_L + d ln psi/d theta), RBM x Padé-Jastrow x "
          f"determinants, 2D, omega = 1; median of {args.rounds} paired rounds; {platform.node()}, "
          f"numba {numba.__version__}, {datetime.date.today()}")
    print(f"{'P':>4}{'plain':>14}{'backflow':>14}{'ratio':>10}{'spread':>10}")
    for r in rows:
        print(f"{r['P']:>4}{r['plain_us']:>12.1f}us{r['backflow_us']:>12.1f}us{r['ratio']:>10.1f}"
              f"{100 * r['spread']:>9.0f}%")
    print(f"exponent k (t ~ P^k, P = {PARTICLES[0]}-{PARTICLES[-1]}): plain {fits['plain_us']:.2f}, "
          f"backflow {fits['backflow_us']:.2f}")


if __name__ == "__main__":
    main()
