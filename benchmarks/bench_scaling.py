"""Scaling of `vmc run` (VMC, strong) and of the DMC population (weak), measured on 1 and 2 ranks, and a
model that projects both to many ranks from the measured costs and MPI latencies.

VMC: for each case (the default input, and the same with 256 walkers) the same run (same total walkers and
steps) goes on 1 and 2 ranks; the table gives optimization and production samples per second and the
parallel efficiency E(K) = rate(K) / (K rate(1)). "2 copies" runs the 1-rank case twice at once: the ratio of
its per-copy rate to the rate alone is what two busy processes get from this machine's two vCPUs, an upper
bound for the 2-rank efficiency here.

DMC (`--dmc`): a population of n walkers per rank (6 electrons in 2D, the dot table's trial state) on 1 rank
and on 2 ranks (2n walkers: weak scaling), and 2 copies of the 1-rank case; per step: the walkers' kernel
(`step_all`), the time in MPI calls and the rest (the population's own work: weights, sums, comb, copies).

Every configuration runs in rounds (all configurations, then again), and each efficiency is taken against the
1-rank run of the same round: this machine's speed drifts by 20-40 % over minutes. With `--base TREE` (a
worktree of an older commit, with its own .venv) every configuration also runs in that tree, interleaved in
the same rounds: paired before/after numbers.

The model (printed after the tables) fits the allreduce latency alpha and cost per byte beta on 2 ranks
(medians of repeated batches; `--latency min` takes the quiet minimum instead) and projects:

  VMC, per iteration:  T(K) = t_walker W_K + t_serial + ceil(log2 K) (alpha + beta bytes(K)),
      t_walker = (sampling + sums) per walker on 1 rank, t_serial = update + rank 0's output (medians on 1
      rank; the output is one row write per iteration before, batched now: min(t_write, 2 % of T)), W_K =
      W / K (strong) or W (weak); bytes(K) = the allreduce payload (sums, control flags, K sampling times).
  DMC, per step, n walkers per rank, N = n K in all:
      now:    T(K) = (t_kernel + t_local) n + t_fixed + ceil(log2 K) t_reduction
                     + 2 t_p2p + beta (M + 3) 8 moved(N),   moved(N) = 2 sigma_w sqrt(N / (2 pi))
              (one reduction per step of fixed size: 4.6 kB of exact sums with the exclusive scan inside
              the allreduce up to 8 ranks, an allreduce and an exscan at once beyond; t_reduction: its cost
              on 2 ranks, one stage; copies
              cross a boundary between ranks when the running weight there is off its share: a Brownian
              bridge of spread sigma_w sqrt(N) / 2 at the middle rank, sigma_w the spread of the weights)
      before: T(K) = (t_kernel + t_local) n + t_global N + t_fixed + ceil(log2 K) alpha + beta 88 N
                     + ceil(log2 K) alpha
              (every rank allgathers 11 numbers of every walker and computes the comb on all N; then an
              alltoall of the copies, modelled at its latency alone)
      E_weak(K) = T(1) / T(K).

    .venv/bin/python benchmarks/bench_scaling.py [--cases default large] [--repeats 5] [--base ../wt-base]
    .venv/bin/python benchmarks/bench_scaling.py --dmc [--walkers 128] [--steps 300] [--base ../wt-base]
    (--save FILE stores the measurements, --load FILE prints their tables and model again)
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "default": [],
    "large": ["sampler.walkers=256", "sampler.steps=500", "sampler.burn_in=200", "optimizer.iterations=20",
              "production.steps=2000"],
}
KS = (2, 16, 32, 64, 128, 256, 1024)


@dataclass(frozen=True)
class Tree:
    """A source tree with its own .venv (this one, or a worktree of an older commit)."""
    root: Path
    name: str

    @property
    def python(self) -> str:
        return str(self.root / ".venv" / "bin" / "python")

    @property
    def mpiexec(self) -> str:
        return str(self.root / ".venv" / "bin" / "mpiexec")

    def commit(self) -> str:
        out = subprocess.run(["git", "-C", str(self.root), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True)
        return out.stdout.strip() or "?"


def env() -> dict:
    """One BLAS thread per process (as `vmc run` sets itself); for the DMC script, which does not."""
    return dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")


# ----------------------------------------------------------------------------------------------
# VMC: strong scaling of `vmc run`
# ----------------------------------------------------------------------------------------------


def vmc_command(tree: Tree, ranks: int, out: Path, overrides: list[str]) -> list[str]:
    cmd = [tree.python, "-m", "vmc", "run", str(tree.root / "inputs" / "default.toml"), "-o", str(out), "--quiet",
           "--force"] + [a for s in overrides for a in ("--set", s)]
    return [tree.mpiexec, "-n", str(ranks), *cmd]


def rates(out: Path) -> dict:
    with h5py.File(out, "r") as f:
        cfg = json.loads(f.attrs["config"])
        timing = f["optimization/timing"][...]
        opt_time = float(f["optimization/wall_time"][-1]) - float(f["optimization/wall_time"][0])
        n_it = f["optimization/wall_time"].shape[0]
        prod = f["production"]
        samples = prod["local_energy"].shape[0] * prod["local_energy"].shape[1]
        prod_wall = float(prod.attrs["wall_seconds"])
        energy = float(json.loads(f.attrs["summary"])["mean"])
    # iterations 1..n-1 (the first includes burn-in and compilation)
    opt_samples = (n_it - 1) * cfg["sampler"]["walkers"] * cfg["sampler"]["steps"]
    fields = ("sampling", "sampling_max", "sampling_min", "reduce", "update", "io")
    t = dict(zip(fields, np.median(timing[1:], axis=0)))
    t.update({f"mean_{k}": v for k, v in zip(fields, np.mean(timing[1:], axis=0))})
    return {"optimization_samples_per_s": opt_samples / opt_time, "production_samples_per_s": samples / prod_wall,
            "walkers": cfg["sampler"]["walkers"], "steps": cfg["sampler"]["steps"], "timing": t, "energy": energy}


def one_run(tree: Tree, name: str, ranks: int, tmp: Path) -> dict:
    out = tmp / f"{tree.name}-{name}-{ranks}.h5"
    subprocess.run(vmc_command(tree, ranks, out, CASES[name]), check=True, cwd=tree.root, capture_output=True,
                   text=True)
    # a tree whose driver batches the record writes (ROW_SHARE, since 1677ebf's successors) or writes a row each time
    return {**rates(out), "batched": "ROW_SHARE" in (tree.root / "vmc" / "driver.py").read_text()}


def two_copies(tree: Tree, name: str, tmp: Path) -> dict:
    """The 1-rank case twice at the same time; per-copy rates."""
    outs = [tmp / f"{tree.name}-{name}-copy{i}.h5" for i in (0, 1)]
    procs = [subprocess.Popen(vmc_command(tree, 1, o, CASES[name]), cwd=tree.root, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL) for o in outs]
    if any(p.wait() for p in procs):
        raise RuntimeError("a copy failed")
    r = [rates(o) for o in outs]
    keys = ("optimization_samples_per_s", "production_samples_per_s")
    mean = {key: float(np.mean([x[key] for x in r])) for key in keys}
    return r[0] | mean


def measure_vmc(trees: list[Tree], name: str, tmp: Path, repeats: int) -> list[dict]:
    """Rows for one case: 1 rank, 2 ranks, 2 copies in each tree, all in every round; efficiencies against the
    same tree's 1-rank run of the same round, then the median and the range over the rounds."""
    configs = [1, 2, "2 copies"]
    rounds = [{(t, k): two_copies(t, name, tmp) if k == "2 copies" else one_run(t, name, k, tmp)
               for k in configs for t in trees} for _ in range(repeats)]
    rows = []
    for t in trees:
        for k in configs:
            n = 1 if k == "2 copies" else k
            first = rounds[0][(t, k)]
            row = {"tree": t.name, "case": name, "ranks": k, "walkers": first["walkers"], "energy": first["energy"],
                   "timing": {f: float(np.median([r[(t, k)]["timing"][f] for r in rounds])) for f in first["timing"]}}
            for phase in ("optimization", "production"):
                key = f"{phase}_samples_per_s"
                eff = [r[(t, k)][key] / (n * r[(t, 1)][key]) for r in rounds]
                row[key] = float(np.median([r[(t, k)][key] for r in rounds]))
                row[f"efficiency_{phase}"] = (float(np.median(eff)), float(min(eff)), float(max(eff)))
            rows.append(row)
    return rows


# ----------------------------------------------------------------------------------------------
# DMC: weak scaling of the population
# ----------------------------------------------------------------------------------------------

DMC_RUN = r"""
import json, math, sys, time
import numpy as np
from vmc.mc import dmc
from vmc.model.hamiltonian import Hamiltonian
from vmc.parallel import world
from vmc.model.wavefunction import TrialState, default_sigma
P, per_rank, steps, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
comm = world()
wf = TrialState(P, 2, {2: 4, 6: 12, 12: 12}.get(P, 6), default_sigma(1.0, 0.5), jastrow=True, slater=P > 2)
wf.randomize(np.random.default_rng(0), 0.01)
n = per_rank * comm.size
pos = np.random.default_rng(1).normal(0.0, 1.0, (n, wf.n_visible))
pop = dmc.Population(wf, Hamiltonian(P, 2, 1.0, True), comm, n, 0.01, 10.0, (1, 2), pos)
clock = {"kernel": 0.0, "mpi": 0.0, "received": 0}
def timed(f, key):
    def g(*a, **k):
        t = time.perf_counter()
        try:
            return f(*a, **k)
        finally:
            clock[key] += time.perf_counter() - t
    return g
dmc.step_all = timed(dmc.step_all, "kernel")
for name in ("allreduce_sum", "allreduce_max", "sum_and_exscan", "allgather_rows", "alltoall", "receive_any"):
    if hasattr(comm, name):
        setattr(comm, name, timed(getattr(comm, name), "mpi"))
step = pop.step
def counted(rows, measured=True):
    record = step(rows, measured)
    clock["received"] += getattr(pop, "received", 0)
    return record
pop.step = counted
pop.advance(100)                      # compilation, equilibration
comm.allreduce_sum(np.zeros(1))
clock.update(kernel=0.0, mpi=0.0, received=0)
t0 = time.perf_counter()
records = np.concatenate([pop.advance(min(100, steps - k)) for k in range(0, steps, 100)])
wall = time.perf_counter() - t0
mine = np.array([wall, clock["kernel"], clock["mpi"], clock["received"]])
parts = comm.gather(mine)
if comm.rank == 0:
    parts = np.array(parts)
    neff = records[:, dmc.STEP_FIELDS.index("effective_walkers")]
    json.dump({"ranks": comm.size, "walkers": n, "steps": steps, "M": wf.n_visible,
               "step": float(parts[:, 0].max() / steps), "kernel": float(parts[0, 1] / steps),
               "kernel_max": float(parts[:, 1].max() / steps), "kernel_min": float(parts[:, 1].min() / steps),
               "mpi": float(parts[0, 2] / steps), "received": float(parts[:, 3].mean() / steps),
               "sigma_w": float(math.sqrt(max(np.mean(n / neff) - 1.0, 0.0))),
               "energy": float(records[:, 0].mean())}, open(out, "w"))
"""


def dmc_run(tree: Tree, ranks: int, per_rank: int, steps: int, particles: int, tmp: Path, tag: str = "") -> dict:
    script = tmp / "dmc_run.py"
    if not script.exists():
        script.write_text(DMC_RUN)
    out = tmp / f"dmc-{tree.name}-{ranks}-{per_rank}{tag}.json"
    cmd = [tree.python, str(script), str(particles), str(per_rank), str(steps), str(out)]
    if ranks > 0:
        cmd = [tree.mpiexec, "-n", str(ranks), *cmd]
    return subprocess.Popen(cmd, cwd=tree.root, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE), out


def dmc_result(proc_out) -> dict:
    proc, out = proc_out
    _, err = proc.communicate()
    if proc.returncode:
        raise RuntimeError(f"DMC run failed: {err.decode()[-2000:]}")
    return json.loads(Path(out).read_text())


def measure_dmc(trees: list[Tree], per_rank: int, steps: int, particles: int, tmp: Path, repeats: int) -> dict:
    """Per tree and round: 1 rank with n and with 4n walkers (the per-walker and fixed costs), 2 ranks with n
    each (weak), and two 1-rank runs at once (the machine's own 2-process efficiency)."""
    rounds = []
    for _ in range(repeats):
        r = {}
        for t in trees:
            r[f"{t.name}|1"] = dmc_result(dmc_run(t, 0, per_rank, steps, particles, tmp))
            r[f"{t.name}|1x4"] = dmc_result(dmc_run(t, 0, 4 * per_rank, max(steps // 4, 100), particles, tmp))
            r[f"{t.name}|2"] = dmc_result(dmc_run(t, 2, per_rank, steps, particles, tmp))
            pair = [dmc_run(t, 0, per_rank, steps, particles, tmp, f"-copy{i}") for i in (0, 1)]
            copies = [dmc_result(p) for p in pair]
            r[f"{t.name}|2 copies"] = copies[0] | {"step": float(np.mean([c["step"] for c in copies]))}
        rounds.append(r)
    return rounds


def median(rounds: list[dict], key, field: str) -> float:
    return float(np.median([r[key][field] for r in rounds]))


# ----------------------------------------------------------------------------------------------
# Latencies
# ----------------------------------------------------------------------------------------------

PING = r"""
import sys, time, numpy as np
from mpi4py import MPI
comm = MPI.COMM_WORLD
def batches(f, reps=100, n=15):
    for _ in range(20):
        f()
    out = []
    for _ in range(n):
        comm.Barrier()
        t = time.perf_counter()
        for _ in range(reps):
            f()
        out.append((time.perf_counter() - t) / reps)
    return out
res, K = {}, comm.size
for n in (1, 100, 1000, 10000, 100000):
    buf, out = np.ones(n), np.empty(n)
    res[f"allreduce {8 * n}"] = batches(lambda: comm.Allreduce(buf, out))
payload = 571 + 3                # one DMC step's exact sums: 8 accumulators of 71 int64 and 3 counts
m, mo = np.ones(payload + K * 71, dtype=np.int64), np.empty(payload + K * 71, dtype=np.int64)
a, ao = np.ones(payload, dtype=np.int64), np.empty(payload, dtype=np.int64)
e, eo = np.ones(71, dtype=np.int64), np.zeros(71, dtype=np.int64)
buf, rb = np.ones(50), np.empty(50)
r = comm.rank
def ring():
    s = comm.Isend(buf, dest=(r + 1) % K, tag=3)
    comm.Recv(rb, source=MPI.ANY_SOURCE, tag=3)
    s.Wait()
res["dmc reduction up to 8 ranks: allreduce with the scan inside"] = batches(lambda: comm.Allreduce(m, mo))
res["dmc reduction beyond: allreduce + exscan at once"] = batches(
    lambda: MPI.Request.Waitall([comm.Iallreduce(a, ao), comm.Iexscan(e, eo)]))
res["p2p 400"] = batches(ring)
if comm.rank == 0:
    print(__import__("json").dumps(res))
"""


def latencies(tree: Tree, tmp: Path, ranks: int = 2, repeats: int = 3) -> dict:
    """Batches of each MPI pattern on `ranks` ranks, from `repeats` runs of the ping (pooled)."""
    script = tmp / "ping.py"
    script.write_text(PING)
    pooled: dict[str, list] = {}
    for _ in range(repeats):
        out = subprocess.run([tree.mpiexec, "-n", str(ranks), tree.python, str(script)], check=True,
                             capture_output=True, text=True, env=env()).stdout
        for k, v in json.loads(out).items():
            pooled.setdefault(k, []).extend(v)
    return pooled


def fit_allreduce(res: dict, how: str, small: bool = True) -> tuple[float, float, list]:
    """alpha (s) and beta (s/B) of an allreduce from the batches (median or minimum of each size), fitted on
    the messages up to 8 kB (`small`: the payloads of the models' reductions) or from 8 kB up (the old
    DMC's allgather of every walker)."""
    pick = np.median if how == "median" else np.min
    points = [(float(k.split()[1]), float(pick(v))) for k, v in res.items() if k.startswith("allreduce ")]
    sel = [(b, t) for b, t in points if (b <= 8000) == small or b == 8000]
    nbytes, secs = np.array(sel).T
    beta, alpha = np.polyfit(nbytes, secs, 1)
    return float(max(alpha, secs.min() if small else 0.0)), float(max(beta, 0.0)), points


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------


def stages(K: int) -> int:
    return math.ceil(math.log2(K)) if K > 1 else 0


ROW_SHARE = 0.02      # vmc.drivers.driver.ROW_SHARE: rank 0's record writes take at most this share of its time


def vmc_model(c: dict, alpha, beta, K, weak) -> float:
    """E(K) = T(1) / T(K) (weak) or T(1) / (K T(K)) (strong) of one optimization iteration, with
    T(K) = t_walker W_K + t_update + stages (alpha + beta bytes) + the output: one row write t_write per
    iteration (before), or batched, min(t_write, ROW_SHARE T) (now)."""
    def T(k):
        w = c["walkers"] if weak else c["walkers"] / k
        t0 = c["t_walker"] * w + c["t_update"] + stages(k) * (alpha + beta * (c["bytes"] + 8 * k))
        return t0 + (min(c["t_write"], ROW_SHARE * t0) if c["batched"] else c["t_write"])
    return T(1) / T(K) if weak else T(1) / (K * T(K))


def dmc_model(c: dict, lat: dict, K: int, design: str) -> float:
    """Weak-scaling efficiency T(1) / T(K) of one DMC step with c["n"] walkers per rank (see the module doc);
    lat: the costs measured on 2 ranks (one stage): the step's reduction (`small`: with the scan inside the
    allreduce, up to 8 ranks; `large`: an allreduce and an exscan at once), one message `p2p`; alpha, beta:
    the allreduce fit."""
    n, N = c["n"], c["n"] * K
    alpha, beta = lat["alpha"], lat["beta"]
    base = (c["t_kernel"] + c["t_local"]) * n + c["t_fixed"]
    if design == "now":
        moved = 2.0 * c["sigma_w"] * math.sqrt(N / (2.0 * math.pi)) if K > 1 else 0.0
        stage = lat["small"] + beta * 8 * 71 * (K - 2) if K <= 8 else lat["large"]
        comm = stages(K) * stage + (2 * lat["p2p"] + beta * 8 * (c["M"] + 3) * moved if K > 1 else 0.0)
        t1 = base + c["t_global"] * n
        return t1 / (t1 + comm)
    t1 = base + c["t_global"] * n
    tk = base + c["t_global"] * N + (2 * stages(K) * alpha + lat["beta_large"] * 88 * N if K > 1 else 0.0)
    return t1 / tk


def dmc_costs(rounds: list[dict], tree: str, design: str) -> dict:
    """Per-step costs from the 1-rank runs at n and 4n walkers: the kernel per walker, and the population's
    own work ("rest" = step - kernel - MPI calls) = t_fixed + t_per_walker n, which is local (now) or over all N
    (before: the gathered arrays)."""
    r1 = {f: median(rounds, f"{tree}|1", f) for f in ("step", "kernel", "mpi", "walkers", "M")}
    r4 = {f: median(rounds, f"{tree}|1x4", f) for f in ("step", "kernel", "mpi", "walkers")}
    rest1, rest4 = r1["step"] - r1["kernel"] - r1["mpi"], r4["step"] - r4["kernel"] - r4["mpi"]
    slope = max((rest4 - rest1) / (r4["walkers"] - r1["walkers"]), 0.0)
    fixed = max(rest1 - slope * r1["walkers"], 0.0) + r1["mpi"]
    sigma = median(rounds, f"{tree}|2", "sigma_w")
    c = {"n": int(r1["walkers"]), "M": int(r1["M"]), "t_kernel": r1["kernel"] / r1["walkers"], "t_fixed": fixed,
         "sigma_w": sigma, "t_local": slope if design == "now" else 0.0, "t_global": 0.0 if design == "now" else slope}
    return c


# ----------------------------------------------------------------------------------------------
# Output
# ----------------------------------------------------------------------------------------------


def eff(e):
    return f"{e[0]:.2f} [{e[1]:.2f}-{e[2]:.2f}]"


def print_vmc(rows: list[dict], trees: list[str], alpha: float, beta: float, n_opt: int, cases: list[str]) -> None:
    print(f"{'tree':<6} {'case':<8} {'ranks':>8} {'opt samples/s':>14} {'efficiency':>16} {'prod samples/s':>15} "
          f"{'efficiency':>16} {'sampling':>9} {'max/min':>7} {'reduce':>7} {'upd+io':>7} {'mean':>7}")
    for r in rows:
        t = r["timing"]
        print(f"{r['tree']:<6} {r['case']:<8} {r['ranks']!s:>8} {r['optimization_samples_per_s']:>14.3g} "
              f"{eff(r['efficiency_optimization']):>16} {r['production_samples_per_s']:>15.3g} "
              f"{eff(r['efficiency_production']):>16} {t['sampling'] * 1e3:>6.1f} ms "
              f"{t['sampling_max'] / t['sampling_min']:>7.2f} "
              f"{t['reduce'] * 1e3:>4.1f} ms {(t['update'] + t['io']) * 1e3:>4.2f} ms "
              f"{(t['mean_update'] + t['mean_io']) * 1e3:>4.2f} ms")
    print("# model of the optimization's efficiency (weak/strong) from the 1-rank run: t/walker = (sampling + sums) /"
          " walkers, update and write: medians per iteration (a row written every iteration before, batched now)")
    header = " ".join(f"{'K=' + str(k):>11}" for k in KS)
    print(f"{'tree':<6} {'case':<8} {'t/walker-iter':>13} {'update':>9} {'write':>9} {header}")
    for tree in trees:
        for name in cases:
            b = next(r for r in rows if r["tree"] == tree and r["case"] == name and r["ranks"] == 1)
            t = b["timing"]
            c = {"walkers": b["walkers"], "t_walker": (t["sampling"] + t["reduce"]) / b["walkers"],
                 "t_update": t["update"], "t_write": t["io"], "batched": b.get("batched", tree == "now"),
                 "bytes": 8 * (2 * n_opt + 14)}   # sums of O and E_L O, moments, counts, control flags (+ 8 K)
            cells = [f"{vmc_model(c, alpha, beta, k, True):.2f}/{vmc_model(c, alpha, beta, k, False):.2f}" for k in KS]
            print(f"{tree:<6} {name:<8} {c['t_walker'] * 1e3:>10.3f} ms {c['t_update'] * 1e3:>6.3f} ms "
                  f"{c['t_write'] * 1e3:>6.3f} ms "
                  + " ".join(f"{x:>11}" for x in cells))
            below = next((int(k) for k in 2 ** np.arange(1, 21) if k <= b["walkers"]
                          and vmc_model(c, alpha, beta, int(k), False) < 0.8), None)
            if below:
                print(f"#   {tree} {name}: strong-scaling efficiency falls below 0.8 at K = {below} ranks "
                      f"({b['walkers']} walkers: {b['walkers'] / below:.1f} walkers per rank)")
            else:
                print(f"#   {tree} {name}: strong-scaling efficiency stays above 0.8 up to one walker per rank "
                      f"(K = {b['walkers']}: {vmc_model(c, alpha, beta, b['walkers'], False):.2f})")


def print_dmc(rounds: list[dict], trees: list[str], lat: dict) -> None:
    print(f"{'tree':<6} {'config':<9} {'walkers':>7} {'ms/step':>8} {'kernel':>8} {'max/min':>7} {'MPI':>8} "
          f"{'rest':>8} {'received':>8} {'efficiency':>17}")
    for t in trees:
        for k in ("1", "1x4", "2", "2 copies"):
            key = f"{t}|{k}"
            step = median(rounds, key, "step")
            kern, mpi = median(rounds, key, "kernel"), median(rounds, key, "mpi")
            ratio = median(rounds, key, "kernel_max") / max(median(rounds, key, "kernel_min"), 1e-12)
            e = "" if k in ("1", "1x4") else eff([float(f(x)) for f in (np.median, np.min, np.max) for x in
                                                   [[r[f"{t}|1"]["step"] / r[key]["step"] for r in rounds]]])
            print(f"{t:<6} {k:<9} {int(rounds[0][key]['walkers']):>7} {step * 1e3:>8.3f} {kern * 1e3:>8.3f} "
                  f"{ratio:>7.2f} {mpi * 1e3:>8.3f} {(step - kern - mpi) * 1e3:>8.3f} "
                  f"{median(rounds, key, 'received'):>8.2f} {e:>17}")
    print("# efficiency: T(1 rank, n walkers) / T(2 ranks, n walkers each), per round; rest = step - kernel - MPI")
    print("# model of the weak-scaling efficiency T(1) / T(K), n walkers per rank")
    header = " ".join(f"{'K=' + str(k):>7}" for k in KS)
    for t in trees:
        design = "now" if t == "now" else "before"
        c = dmc_costs(rounds, t, design)
        cells = " ".join(f"{dmc_model(c, lat, k, design):>7.3f}" for k in KS)
        print(f"{t:<6} n={c['n']:<5} kernel {c['t_kernel'] * 1e6:.2f} us/walker, population "
              f"{(c['t_local'] + c['t_global']) * 1e6:.2f} us/walker ({'local' if design == 'now' else 'all N'}), "
              f"fixed {c['t_fixed'] * 1e6:.0f} us/step, sigma_w {c['sigma_w']:.3f}")
        print(f"{'':<6} {header}\n{'':<6} {cells}")
        below = next((k for k in 2 ** np.arange(1, 25) if dmc_model(c, lat, int(k), design) < 0.9), None)
        need = next((n for n in 2 ** np.arange(0, 20) if dmc_model(c | {"n": int(n)}, lat, 1024, design) >= 0.9),
                    None)
        where = f"falls below 0.9 at K = {below} ranks" if below else "stays above 0.9 up to 2^24 ranks"
        enough = (f"0.9 at K = 1024 needs {need} walkers per rank" if need else
                  "no number of walkers per rank reaches 0.9 at K = 1024 (the per-step cost grows with N)")
        print(f"#   {t}: weak-scaling efficiency {where} with {c['n']} walkers per rank; {enough}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--repeats", type=int, default=5, help="rounds of all configurations (default 5)")
    p.add_argument("--base", type=Path, help="also measure this tree (a worktree with its own .venv): before/after")
    p.add_argument("--dmc", action="store_true", help="the DMC population's weak scaling instead of VMC")
    p.add_argument("--walkers", type=int, default=128, help="DMC walkers per rank (default 128)")
    p.add_argument("--steps", type=int, default=300, help="DMC steps timed per run (default 300)")
    p.add_argument("--particles", type=int, default=6, help="DMC electrons (default 6)")
    p.add_argument("--latency", choices=("median", "min"), default="median")
    p.add_argument("--save", type=Path, help="also store the measurements (JSON) here")
    p.add_argument("--load", type=Path, help="print the tables and the model of stored measurements, measure nothing")
    p.add_argument("--new-latencies", action="store_true", help="with --load: measure the MPI latencies again")
    args = p.parse_args()
    if args.load:
        data = json.loads(args.load.read_text())
        if args.new_latencies:
            with tempfile.TemporaryDirectory() as tmp:
                data["ping"] = latencies(Tree(ROOT, "now"), Path(tmp))
            data["ping_date"] = f"{datetime.datetime.now():%Y-%m-%d %H:%M}"
            if args.save:
                args.save.write_text(json.dumps(data))
    else:
        trees = [Tree(ROOT, "now")] + ([Tree(args.base.resolve(), "before")] if args.base else [])
        data = {"kind": "dmc" if args.dmc else "vmc", "trees": [[t.name, t.commit()] for t in trees],
                "repeats": args.repeats, "date": f"{datetime.datetime.now():%Y-%m-%d %H:%M}",
                "machine": f"{platform.node()}, {os.cpu_count()} cores", "cases": args.cases}
        with tempfile.TemporaryDirectory() as tmp:
            tmp = Path(tmp)
            if args.dmc:
                data["rounds"] = measure_dmc(trees, args.walkers, args.steps, args.particles, tmp, args.repeats)
            else:
                data["rows"] = [r for name in args.cases for r in measure_vmc(trees, name, tmp, args.repeats)]
            data["ping"] = latencies(trees[0], tmp)
        if args.save:
            args.save.write_text(json.dumps(data))
    report(data, args.latency)


def report(data: dict, latency: str) -> None:
    ping = data["ping"]
    alpha, beta, points = fit_allreduce(ping, latency)
    beta_large = fit_allreduce(ping, latency, small=False)[1]
    pick = np.median if latency == "median" else np.min
    def cost(key):
        return float(pick(ping[key])) if key in ping else math.nan
    lat = {"alpha": alpha, "beta": beta, "beta_large": beta_large, "p2p": cost("p2p 400"),
           "small": cost("dmc reduction up to 8 ranks: allreduce with the scan inside"),
           "large": cost("dmc reduction beyond: allreduce + exscan at once")}
    print(f"# {data['machine']}, {data['date']}; trees: " + ", ".join(f"{n} = {c}" for n, c in data["trees"])
          + f"; medians of {data['repeats']} rounds (efficiency: median [min-max] of the per-round ratios)")
    print(f"# MPI on 2 ranks{' (' + data['ping_date'] + ')' if 'ping_date' in data else ''}, {latency} of "
          f"{len(ping['p2p 400'])} batches of 100: allreduce alpha = {alpha * 1e6:.1f} us, beta = "
          f"{beta * 1e9:.3f} ns/B up to 8 kB, {beta_large * 1e9:.3f} ns/B beyond (measured: "
          + ", ".join(f"{int(b)} B {s * 1e6:.1f} us" for b, s in points) + ")"
          + ("; " + ", ".join(f"{k} {np.median(v) * 1e6:.1f}/{np.min(v) * 1e6:.1f} us" for k, v in ping.items()
                              if not k.startswith("allreduce ")) + " (median/min)" if data["kind"] == "dmc" else ""))
    trees = [n for n, _ in data["trees"]]
    if data["kind"] == "dmc":
        print_dmc(data["rounds"], trees, lat)
    else:
        from vmc.input import config
        from vmc.model.wavefunction import TrialState
        n_opt = TrialState.from_spec(config.load(ROOT / "inputs" / "default.toml").spec()).n_opt
        print_vmc(data["rows"], trees, alpha, beta, n_opt, data["cases"])


if __name__ == "__main__":
    main()
