"""Do DMC error bars cover? Many independent short DMC runs of one fixed trial state, analysed exactly as
`vmc analyze` analyses a run file (`vmc.analysis.results.analyze_dmc`), against the spread of their energies.

Two interacting electrons in 2D (omega = 1) with a fixed trial state: the Gaussian times the Pade-Jastrow
factor with its cusp (RBM weights zero; no optimization, so every run samples the same fixed-node
problem). Every seed gets its own starting walkers (normal positions) and its own DMC streams, runs
`--equilibration` recorded steps that the analysis discards (plus what MSER detects) and `--steps`
measured steps. Printed: the spread (std, ddof 1) of the energies, the mean reported error, their ratio,
chi^2/dof of the energies about their mean with the reported errors, and the fraction within one reported
sigma of the mean (ideal 0.68; a fraction outside [0.6, 0.77] over 50 seeds is a miss at ~1.5-2 sigma of
the binomial spread). Not part of the test suite; about two minutes on one core:

    .venv/bin/python benchmarks/bench_dmc_coverage.py [--seeds 50 --first-seed 0 --walkers 200 --steps 3000 --tau 0.01]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import h5py
import numpy as np

from vmc.analysis.results import analyze_dmc
from vmc.mc import dmc
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState
from vmc.parallel import Comm

SYSTEM = {"particles": 2, "dimensions": 2, "omega": 1.0, "interaction": True, "statistics": "fermion"}


def one_run(wf, ham, seed: int, walkers: int, equilibration: int, steps: int, tau: float) -> dict:
    """One DMC run of `seed`, analysed by `analyze_dmc` from an in-memory file laid out like a run's /dmc."""
    pos = np.random.default_rng(seed).normal(0.0, 1.0, (walkers, wf.n_visible))
    pop = dmc.Population(wf, ham, Comm(None), walkers, tau, 10.0, (seed, seed + 10_000), pos)
    records = np.concatenate([pop.advance(equilibration, measured=False), pop.advance(steps)])
    with h5py.File(f"coverage-{seed}.h5", "w", driver="core", backing_store=False) as f:
        f.attrs["config"] = json.dumps({"system": SYSTEM})
        g = f.create_group("dmc")
        for k, name in enumerate(dmc.STEP_FIELDS):
            g[name] = records[:, k]
        g.attrs.update(steps_done=records.shape[0], equilibration=equilibration, time_step=tau, walkers=walkers)
        return analyze_dmc(f)


def coverage(energies: np.ndarray, errors: np.ndarray) -> dict:
    """Spread, mean reported error, ratio, chi^2/dof about the mean, fraction within one reported sigma."""
    mean = float(energies.mean())
    spread = float(energies.std(ddof=1))
    chi2 = float(np.sum(((energies - mean) / errors) ** 2))
    return {"mean": mean, "spread": spread, "reported": float(errors.mean()), "ratio": float(errors.mean()) / spread,
            "chi2_dof": chi2 / (energies.size - 1), "within_1sigma": float(np.mean(np.abs(energies - mean) < errors))}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=50)
    p.add_argument("--first-seed", type=int, default=0, help="seeds first-seed .. first-seed + seeds - 1")
    p.add_argument("--walkers", type=int, default=200)
    p.add_argument("--equilibration", type=int, default=500)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--tau", type=float, default=0.01)
    p.add_argument("--verbose", action="store_true", help="one line per seed")
    a = p.parse_args()
    wf = TrialState(2, 2, 2, sigma=math.sqrt(0.5), jastrow=True)
    ham = Hamiltonian(2, 2, 1.0, interaction=True)
    t0 = time.process_time()
    rows = []
    for seed in range(a.first_seed, a.first_seed + a.seeds):
        r = one_run(wf, ham, seed, a.walkers, a.equilibration, a.steps, a.tau)
        rows.append(r)
        if a.verbose:
            print(f"seed {seed:3d}  E = {r['mean']:.6f} +- {r['error']:.6f}  discarded {r['discarded']:5d}  "
                  f"level {r['level']:2d}  tau_corr {r['tau']:7.1f}  warnings {len(r['warnings'])}  "
                  f"guard {'FAILED' if r['failures'] else 'ok'}")
    e = np.array([r["mean"] for r in rows])
    err = np.array([r["error"] for r in rows])
    c = coverage(e, err)
    print(f"2D N = 2, fixed trial state (Gaussian x Pade-Jastrow), {a.seeds} seeds, {a.walkers} walkers x "
          f"{a.steps} steps after {a.equilibration}, tau = {a.tau}, {time.process_time() - t0:.0f} CPU s")
    print(f"{'mean E':>12}{'spread':>12}{'reported':>12}{'ratio':>8}{'chi2/dof':>10}{'within 1 sigma':>16}")
    print(f"{c['mean']:>12.6f}{c['spread']:>12.6f}{c['reported']:>12.6f}{c['ratio']:>8.3f}{c['chi2_dof']:>10.2f}"
          f"{c['within_1sigma']:>16.2f}")
    print(f"mean discarded {np.mean([r['discarded'] for r in rows]):.0f} steps, mean tau_corr "
          f"{np.mean([r['tau'] for r in rows]):.1f} steps, mean level {np.mean([r['level'] for r in rows]):.1f}, "
          f"{sum(bool(r['failures']) for r in rows)} failing the DMC guard")


if __name__ == "__main__":
    main()
