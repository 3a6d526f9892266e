"""Cost of one sweep (P one-particle moves + one local energy) versus the number of electrons, for each
combination of trial-state factors, with the fitted exponent t ~ P^k, and the memory per walker.

    .venv/bin/python benchmarks/bench_factors.py [--seconds 0.5] [--json]
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

COMBINATIONS = {"rbm": (False, False), "rbm+jastrow": (True, False), "rbm+slater": (False, True),
                "rbm+jastrow+slater": (True, True)}
PARTICLES = (2, 6, 12, 20)


def time_sweeps(P: int, jastrow: bool, slater: bool, kind: str, seconds: float, hidden_per_particle: int = 2):
    D = 2
    wf = TrialState(P, D, hidden_per_particle * P, default_sigma(1.0, 0.5), jastrow=jastrow, slater=slater)
    wf.randomize(np.random.default_rng(0), 0.05)
    ham = Hamiltonian(P, D, 1.0, True)
    walkers = Walkers.start(1, 4, P * D, 1.0)
    sampler = Sampler(kind, step=1.0, dt=0.1)
    sampler.sample(wf, ham, walkers, 10, 10, record_grad=True)    # compile, equilibrate a little
    n = 50
    while True:
        t0 = time.process_time()
        sampler.sample(wf, ham, walkers, 0, n, record_grad=True)
        dt = time.process_time() - t0
        if dt > seconds:
            break
        n *= 4
    per_sweep = dt / (n * walkers.n_walkers)
    # per-walker state in the kernel: positions, hidden units (u, softplus, sigmoid scratch), two inverse
    # Slater matrices plus scratch, and one sample's gradient row
    n_orb = P // 2 if slater else 0
    bytes_per_walker = 8 * (P * D + 6 * wf.hidden + (3 * n_orb * n_orb + 4 * n_orb * D) + 4 + wf.n_opt)
    return per_sweep, bytes_per_walker


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, default=0.5)
    p.add_argument("--kind", default="metropolis", choices=["metropolis", "importance"])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    for name, (jastrow, slater) in COMBINATIONS.items():
        for P in PARTICLES:
            t, mem = time_sweeps(P, jastrow, slater, args.kind, args.seconds)
            rows.append({"factors": name, "P": P, "D": 2, "hidden": 2 * P, "us_per_sweep": 1e6 * t,
                         "bytes_per_walker": mem})
    fits = {}
    for name in COMBINATIONS:
        sel = [r for r in rows if r["factors"] == name]
        k, _ = np.polyfit(np.log([r["P"] for r in sel]), np.log([r["us_per_sweep"] for r in sel]), 1)
        fits[name] = k
    if args.json:
        for r in rows:
            print(json.dumps({**r, "exponent": fits[r["factors"]]}))
        return
    print(f"# cost per sweep (P moves + E_L + d ln psi/d theta), {args.kind}, 2D, N = 2P hidden units; "
          f"{platform.node()}, numba {numba.__version__}, {datetime.date.today()}; CPU time per walker-sweep")
    print(f"{'factors':<20}" + "".join(f"{'P=' + str(P):>12}" for P in PARTICLES) + f"{'exponent':>10}")
    for name in COMBINATIONS:
        sel = {r["P"]: r for r in rows if r["factors"] == name}
        print(f"{name:<20}" + "".join(f"{sel[P]['us_per_sweep']:>10.2f}us" for P in PARTICLES) + f"{fits[name]:>10.2f}")
    print(f"{'memory/walker':<20}" + "".join(f"{max(r['bytes_per_walker'] for r in rows if r['P'] == P):>11}B"
                                             for P in PARTICLES))


if __name__ == "__main__":
    main()
