"""Strong scaling of `vmc run` and a model that projects it to many ranks.

For each case (the default input, and the same with 256 walkers) the same run (same total walkers and
steps) goes on 1 and 2 ranks; the table gives optimization and production samples per second and the
parallel efficiency E(K) = rate(K) / (K rate(1)). "2 copies" runs the 1-rank case twice at once: the
ratio of its per-copy rate to the rate alone is what two busy processes get from this machine's two
vCPUs, an upper bound for the 2-rank efficiency here.

The model (printed after the table) takes from the 1-rank run's timing record (/optimization/timing)
the sampling time per walker and sweep, and the serial time per iteration (update + output), and from an
MPI ping of allreduce on 2 ranks its latency and cost per byte; it projects the optimization's
efficiency to K ranks, with the walkers per rank fixed (weak) and with the total fixed (strong):

    T(K) = t_walker * W_K + t_serial + ceil(log2 K) * (alpha + beta * bytes)
    E(K) = [t_walker * W_K * K + t_serial] / (K T(K))      (strong: W_K = W / K; weak: W_K = W)

    .venv/bin/python benchmarks/bench_scaling.py [--cases default large] [--ranks 1 2] [--repeats 5] [--json]
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MPIEXEC = Path(sys.executable).parent / "mpiexec"
CASES = {
    "default": [],
    "large": ["sampler.walkers=256", "sampler.steps=500", "sampler.burn_in=200", "optimizer.iterations=20",
              "production.steps=2000"],
}


def vmc_command(ranks: int, out: Path, overrides: list[str]) -> list[str]:
    cmd = [sys.executable, "-m", "vmc", "run", str(ROOT / "inputs" / "default.toml"), "-o", str(out), "--quiet",
           "--force"] + [a for s in overrides for a in ("--set", s)]
    return [str(MPIEXEC), "-n", str(ranks), *cmd]


def rates(out: Path) -> dict:
    with h5py.File(out, "r") as f:
        cfg = json.loads(f.attrs["config"])
        timing = f["optimization/timing"][...]
        opt_time = float(f["optimization/wall_time"][-1]) - float(f["optimization/wall_time"][0])
        n_it = f["optimization/wall_time"].shape[0]
        prod = f["production"]
        samples = prod["local_energy"].shape[0] * prod["local_energy"].shape[1]
        prod_wall = float(prod.attrs["wall_seconds"])
    # iterations 1..n-1 (the first includes burn-in and compilation)
    opt_samples = (n_it - 1) * cfg["sampler"]["walkers"] * cfg["sampler"]["steps"]
    fields = ("sampling", "sampling_max", "sampling_min", "reduce", "update", "io")
    t = dict(zip(fields, np.median(timing[1:], axis=0)))
    return {"optimization_samples_per_s": opt_samples / opt_time, "production_samples_per_s": samples / prod_wall,
            "walkers": cfg["sampler"]["walkers"], "steps": cfg["sampler"]["steps"], "timing": t}


def one_run(name: str, ranks: int, tmp: Path) -> dict:
    out = tmp / f"{name}-{ranks}.h5"
    subprocess.run(vmc_command(ranks, out, CASES[name]), check=True, cwd=ROOT, capture_output=True, text=True)
    return rates(out)


def two_copies(name: str, tmp: Path) -> dict:
    """The 1-rank case twice at the same time; per-copy rates."""
    outs = [tmp / f"{name}-copy{i}.h5" for i in (0, 1)]
    procs = [subprocess.Popen(vmc_command(1, o, CASES[name]), cwd=ROOT, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for o in outs]
    if any(p.wait() for p in procs):
        raise RuntimeError("a copy failed")
    r = [rates(o) for o in outs]
    keys = ("optimization_samples_per_s", "production_samples_per_s")
    mean = {key: float(np.mean([x[key] for x in r])) for key in keys}
    return r[0] | mean


def measure(name: str, ranks: list[int], tmp: Path, repeats: int) -> list[dict]:
    """Rows for one case. The configurations run in turn (1 rank, 2 ranks, 2 copies, then again), and each
    efficiency is taken against the 1-rank run of the same round: a drift of the machine's speed between
    rounds (+-20 % here) then cancels. Rates and timings are medians over rounds, efficiencies the median
    and the spread of the per-round ratios."""
    configs = [*ranks, "2 copies"]
    rounds = [{k: two_copies(name, tmp) if k == "2 copies" else one_run(name, k, tmp) for k in configs}
              for _ in range(repeats)]
    rows = []
    for k in configs:
        n = 1 if k == "2 copies" else k
        row = {"case": name, "ranks": k, "walkers": rounds[0][k]["walkers"],
               "timing": {f: float(np.median([r[k]["timing"][f] for r in rounds])) for f in rounds[0][k]["timing"]}}
        for phase in ("optimization", "production"):
            key = f"{phase}_samples_per_s"
            eff = [r[k][key] / (n * r[min(ranks)][key]) for r in rounds]
            row[key] = float(np.median([r[k][key] for r in rounds]))
            row[f"efficiency_{phase}"] = (float(np.median(eff)), float(min(eff)), float(max(eff)))
        rows.append(row)
    return rows


PING = r"""
import sys, time, numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
for n in [int(a) for a in sys.argv[1:]]:
    buf, out = np.ones(n), np.empty(n)
    for _ in range(20):
        comm.Allreduce(buf, out)
    comm.Barrier()
    t = time.perf_counter()
    reps = 200
    for _ in range(reps):
        comm.Allreduce(buf, out)
    if comm.rank == 0:
        print(n * 8, (time.perf_counter() - t) / reps)
"""


def allreduce_cost(tmp: Path) -> tuple[float, float, list]:
    """Latency alpha (s) and cost per byte beta (s/B) of a 2-rank allreduce, fitted over message sizes."""
    script = tmp / "ping.py"
    script.write_text(PING)
    sizes = [1, 100, 1000, 10000, 100000]
    out = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(script), *map(str, sizes)], check=True,
                         capture_output=True, text=True).stdout
    points = [tuple(map(float, line.split())) for line in out.split("\n") if line.strip()]
    nbytes, secs = np.array(points).T
    beta, alpha = np.polyfit(nbytes, secs, 1)
    return float(max(alpha, secs.min())), float(max(beta, 0.0)), points


def model(t_walker: float, t_serial: float, alpha: float, beta: float, nbytes: float, walkers: int, K: int,
          weak: bool) -> float:
    w = walkers if weak else walkers / K
    comm = math.ceil(math.log2(K)) * (alpha + beta * nbytes) if K > 1 else 0.0
    return (t_walker * w * K + t_serial) / (K * (t_walker * w + t_serial + comm))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    p.add_argument("--repeats", type=int, default=5, help="rounds of all configurations (default 5)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name in args.cases:
            rows += measure(name, sorted(args.ranks), tmp, args.repeats)
        alpha, beta, pings = allreduce_cost(tmp)
    base = {r["case"]: r for r in rows if r["ranks"] == min(args.ranks)}
    from vmc import config, driver
    n_opt = driver.trial_state(config.load(ROOT / "inputs" / "default.toml").to_dict()).n_opt
    if args.json:
        for r in rows:
            print(json.dumps(r, default=float))
        return
    print(f"# strong scaling of inputs/default.toml; {platform.node()}, {os.cpu_count()} cores, "
          f"{datetime.datetime.now():%Y-%m-%d %H:%M}")
    print(f"# medians of {args.repeats} rounds (efficiency: median [min-max] of the per-round ratios); per "
          "iteration: sampling of rank 0, slowest/fastest rank, reduce, update + io")
    print(f"{'case':<8} {'ranks':>8} {'opt samples/s':>14} {'efficiency':>16} {'prod samples/s':>15} "
          f"{'efficiency':>16} {'sampling':>9} {'max/min':>7} {'reduce':>7} {'upd+io':>7}")

    def eff(e):
        return f"{e[0]:.2f} [{e[1]:.2f}-{e[2]:.2f}]"
    for r in rows:
        t = r["timing"]
        print(f"{r['case']:<8} {r['ranks']!s:>8} {r['optimization_samples_per_s']:>14.3g} "
              f"{eff(r['efficiency_optimization']):>16} {r['production_samples_per_s']:>15.3g} "
              f"{eff(r['efficiency_production']):>16} {t['sampling'] * 1e3:>6.1f} ms "
              f"{t['sampling_max'] / t['sampling_min']:>7.2f} "
              f"{t['reduce'] * 1e3:>4.1f} ms {(t['update'] + t['io']) * 1e3:>4.1f} ms")
    print(f"\n# allreduce on 2 ranks: alpha = {alpha * 1e6:.1f} us, beta = {beta * 1e9:.3f} ns/B "
          f"(measured: {', '.join(f'{int(b)} B {s * 1e6:.1f} us' for b, s in pings)})")
    ks = (2, 16, 64, 256, 1024)
    print("# model of the optimization's efficiency (walkers per rank fixed = weak; total fixed = strong)")
    header = " ".join(f"{'K=' + str(k):>11}" for k in ks)
    print(f"{'case':<8} {'t/walker-iter':>13} {'serial':>9} {'bytes':>7} {header}")
    for name in args.cases:
        b = base[name]
        t = b["timing"]
        t_walker = t["sampling"] / b["walkers"]
        t_serial = t["update"] + t["io"]
        nbytes = 8 * (2 * n_opt + 10)   # the allreduce payload: sums of O and E_L O, moments, flags
        cells = []
        for k in ks:
            weak = model(t_walker, t_serial, alpha, beta, nbytes, b["walkers"], k, weak=True)
            strong = model(t_walker, t_serial, alpha, beta, nbytes, b["walkers"], k, weak=False)
            cells.append(f"{weak:.2f}/{strong:.2f}")
        print(f"{name:<8} {t_walker * 1e3:>10.3f} ms {t_serial * 1e3:>6.2f} ms {nbytes:>7} "
              + " ".join(f"{c:>11}" for c in cells))
        below = next((k for k in 2 ** np.arange(1, 21) if model(t_walker, t_serial, alpha, beta, nbytes,
                                                                   b["walkers"], int(k), weak=False) < 0.8), None)
        print(f"#   {name}: strong-scaling efficiency falls below 0.8 at K = {below} ranks "
              f"({b['walkers']} walkers: {b['walkers'] / below if below else 0:.1f} walkers per rank)")


if __name__ == "__main__":
    main()
