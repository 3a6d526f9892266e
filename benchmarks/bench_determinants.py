"""Numerics of the Slater determinants at large N: condition numbers, Hermite values, and the drift of the
Sherman-Morrison-updated inverses between refreshes.

For each closed shell (2D N = 12 ... 72, 3D N = 20 ... 70), omega = 1:

* cond: the 2-norm condition number of the Slater matrices D[i, n] = phi_n(x_i) (both spin blocks),
  median and maximum over configurations sampled from the non-interacting density |psi_0|^2 (Metropolis,
  `free_walk`) and over Gaussian positions x ~ N(0, 1/omega) (the trap length);
* hermite: max relative error of the orbital values of the upward recurrence (`orbitals`) against
  numpy's Hermite series at the sampled positions;
* drift after k sweeps of Metropolis moves (acceptance 0.6-0.7, every accepted move a Sherman-Morrison
  update, no refresh): err = max |Dinv_updated - Dinv_fresh| / max |Dinv_fresh| and the residual
  res = max |D Dinv_updated - 1|, worst of the two blocks;
* the CPU seconds of 10^4 sweeps.

    .venv/bin/python benchmarks/bench_determinants.py [--sweeps 100 1000 10000] [--json]
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from vmc.model.factors.slater import free_walk, fresh_inverses, orbitals, quantum_numbers_for, slater_matrix

CASES = ((12, 2), (20, 2), (30, 2), (42, 2), (56, 2), (72, 2), (20, 3), (40, 3), (70, 3))
OMEGA = 1.0
STEP = {2: 1.0, 3: 0.8}   # 60-70 % of the moves accepted


def slater_matrices(x, qn, omega):
    n, D = qn.shape
    out = np.empty((2, n, n))
    for b in range(2):
        slater_matrix(x, b * n, n, D, omega, qn, out[b], np.empty((n, D)), np.empty((n, D)))
    return out


def drift(x, dinv, qn, omega):
    """(err, res) of the updated inverses dinv at x: relative max deviation from fresh ones, residual."""
    ref = fresh_inverses(x, qn, omega)
    mats = slater_matrices(x, qn, omega)
    n = qn.shape[0]
    err = max(np.abs(dinv[b] - ref[b]).max() / np.abs(ref[b]).max() for b in range(2))
    res = max(np.abs(mats[b] @ dinv[b] - np.eye(n)).max() for b in range(2))
    return float(err), float(res)


def hermite_error(x, qn, omega):
    """max_n [max_i |phi_n(x_i) - ref| / max_i |ref|]: `orbitals` against numpy's Hermite series at the
    positions x_i in x, per orbital relative to its largest value (near a root a pointwise relative error
    measures only the root's cancellation)."""
    n, D = qn.shape
    herm = [np.polynomial.hermite.Hermite.basis(k) for k in range(int(qn.max()) + 1)]
    val, g, lap = np.empty(n), np.empty((n, D)), np.empty((n, D))
    got, ref = [], []
    for r in x.reshape(-1, D):
        orbitals(r, omega, qn, val, g, lap)
        got.append(val.copy())
        ref.append([np.prod([herm[q[d]](math.sqrt(omega) * r[d]) for d in range(D)]) for q in qn])
    got, ref = np.array(got), np.array(ref)
    return float(np.max(np.abs(got - ref).max(axis=0) / np.abs(ref).max(axis=0)))


def equilibrated(P, D, omega, rng, sweeps=300):
    """A configuration from |psi_0|^2 (Metropolis from Gaussian positions, refreshed at the end)."""
    qn = quantum_numbers_for(P, D)
    x = rng.normal(0.0, 1.0 / math.sqrt(omega), P * D)
    free_walk(x, omega, qn, fresh_inverses(x, qn, omega), sweeps, STEP[D], int(rng.integers(2**31)))
    return x, qn


def condition_numbers(P, D, omega, rng, samples=20):
    """(median, max) cond over sampled and over Gaussian configurations, and the Hermite error."""
    x, qn = equilibrated(P, D, omega, rng)
    sampled, herm = [], 0.0
    for _ in range(samples):
        free_walk(x, omega, qn, fresh_inverses(x, qn, omega), 20, STEP[D], int(rng.integers(2**31)))
        sampled.extend(np.linalg.cond(m) for m in slater_matrices(x, qn, omega))
        herm = max(herm, hermite_error(x, qn, omega))
    gauss = [np.linalg.cond(m) for _ in range(samples)
             for m in slater_matrices(rng.normal(0.0, 1.0 / math.sqrt(omega), P * D), qn, omega)]
    return (float(np.median(sampled)), float(np.max(sampled)), float(np.median(gauss)), float(np.max(gauss)),
            herm)


def drift_series(P, D, omega, rng, checkpoints):
    """[(sweeps, err, res)] along one walk from a fresh inverse, acceptance, CPU s per 10^4 sweeps."""
    x, qn = equilibrated(P, D, omega, rng)
    dinv = fresh_inverses(x, qn, omega)
    out, done, accepted, cpu = [], 0, 0, 0.0
    for k in checkpoints:
        t0 = time.process_time()
        accepted += free_walk(x, omega, qn, dinv, k - done, STEP[D], int(rng.integers(2**31)))
        cpu += time.process_time() - t0
        done = k
        out.append((k, *drift(x, dinv, qn, omega)))
    return out, accepted / (done * P), cpu * 1e4 / done


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sweeps", type=int, nargs="+", default=[100, 1000, 10000])
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    head = ["N", "D", "cond med", "cond max", "cond(G) med", "cond(G) max", "hermite"]
    head += [f"err {k}" for k in args.sweeps] + [f"res {k}" for k in args.sweeps] + ["acc", "s/1e4 sw"]
    if not args.json:
        print(" | ".join(head))
        print("|".join("---" for _ in head))
    for P, D in CASES:
        cond = condition_numbers(P, D, OMEGA, rng)
        series, acc, cpu = drift_series(P, D, OMEGA, rng, args.sweeps)
        row = {"N": P, "D": D, "cond_sampled_median": cond[0], "cond_sampled_max": cond[1],
               "cond_gauss_median": cond[2], "cond_gauss_max": cond[3], "hermite_rel_error": cond[4],
               "drift": [{"sweeps": k, "err": e, "res": r} for k, e, r in series],
               "acceptance": acc, "cpu_s_per_1e4_sweeps": cpu}
        if args.json:
            print(json.dumps(row))
            continue
        cells = [str(P), str(D)] + [f"{c:.2e}" for c in cond]
        cells += [f"{e:.1e}" for _, e, _ in series] + [f"{r:.1e}" for _, _, r in series]
        cells += [f"{acc:.2f}", f"{cpu:.2f}"]
        print(" | ".join(cells), flush=True)


if __name__ == "__main__":
    main()
