"""Strong scaling of `vmc run`: the same input (same total walkers and steps) on 1, 2, ... ranks.

Prints a table of wall time, optimization iterations per second, production samples per second and
the parallel efficiency  E(K) = rate(K) / (K rate(1)).  Usage:

    .venv/bin/python benchmarks/bench_scaling.py [--input inputs/default.toml] [--ranks 1 2] [--json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py

ROOT = Path(__file__).resolve().parents[1]


def run(input_path: Path, ranks: int, out: Path) -> dict:
    mpiexec = Path(sys.executable).parent / "mpiexec"
    cmd = [str(mpiexec), "-n", str(ranks), sys.executable, "-m", "vmc", "run", str(input_path),
           "-o", str(out), "--quiet", "--force"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    with h5py.File(out, "r") as f:
        cfg = json.loads(f.attrs["config"])
        opt_time = float(f["optimization/wall_time"][-1]) if f["optimization/wall_time"].shape[0] else 0.0
        prod = f["production"]
        samples = prod["local_energy"].shape[0] * prod["local_energy"].shape[1]
        prod_wall = float(prod.attrs["wall_seconds"])
    n_it = cfg["optimizer"]["iterations"]
    opt_samples = n_it * cfg["sampler"]["walkers"] * cfg["sampler"]["steps"]
    return {"ranks": ranks, "wall_s": wall, "optimization_s": opt_time,
            "optimization_samples_per_s": opt_samples / opt_time if opt_time else float("nan"),
            "production_s": prod_wall, "production_samples_per_s": samples / prod_wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", default=str(ROOT / "inputs" / "default.toml"))
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for k in args.ranks:
            rows.append(run(Path(args.input), k, Path(tmp) / f"n{k}.h5"))
    base = rows[0]
    for r in rows:
        k = r["ranks"] / base["ranks"]
        r["efficiency_optimization"] = r["optimization_samples_per_s"] / (k * base["optimization_samples_per_s"])
        r["efficiency_production"] = r["production_samples_per_s"] / (k * base["production_samples_per_s"])
    if args.json:
        for r in rows:
            print(json.dumps(r))
        return
    print(f"# strong scaling of {os.path.relpath(args.input, ROOT)}; {platform.node()}, {os.cpu_count()} cores, "
          f"{datetime.date.today()}")
    print(f"{'ranks':>5} {'wall s':>8} {'opt samples/s':>14} {'eff':>5} {'prod samples/s':>15} {'eff':>5}")
    for r in rows:
        print(f"{r['ranks']:>5} {r['wall_s']:>8.1f} {r['optimization_samples_per_s']:>14.3g} "
              f"{r['efficiency_optimization']:>5.2f} {r['production_samples_per_s']:>15.3g} "
              f"{r['efficiency_production']:>5.2f}")


if __name__ == "__main__":
    main()
