#!/usr/bin/env python
"""Sampling throughput of the VMC engine: particle moves and local energies per second, one core.

For each sampler (Metropolis step 1.0, importance sampling dt 0.05, Gibbs) and each (P, D, N) of
CASES, an interacting trap (omega = 1) with an RBM (g = 1/2, sigma = default_sigma, a, b, W drawn from
N(0, 0.1^2)) is sampled by `Sampler.sample` over several walkers, measuring the local energy after
every sweep (as production runs do). One sweep = P particle moves (Gibbs updates all particles at
once: counted as P moves). Numba compilation is done in a warm-up call; each timing is sized to take
about --seconds, and the best of --repeats is reported.

Rates are per CPU second of this process (--clock cpu, the default; time.process_time), so that
time-slicing with other busy processes on a shared machine does not halve them; --clock wall uses
wall-clock time instead. Both times are kept in the JSON rows (cpu_seconds, wall_seconds), and a
wall/cpu ratio well above 1 in the table flags a contended run. The C yardstick is timed the same
way (CPU time of the child process from getrusage; its own wall-clock figure is printed too).

    python benchmarks/bench_sampling.py                  # table
    python benchmarks/bench_sampling.py --json           # one JSON object per row
    python benchmarks/bench_sampling.py --quick          # smoke run (a few seconds)
    python benchmarks/bench_sampling.py --with-c-limit   # also build and run ../shared/perf/limit.c

--with-c-limit compiles the plain-C yardstick (brute-force Metropolis + E_L every sweep, one walker)
and prints its particle moves/s beside the engine's Metropolis (2, 2, 4) figure and their ratio.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from vmc.mc.samplers import Sampler, Walkers  # noqa: E402
from vmc.model.hamiltonian import Hamiltonian  # noqa: E402
from vmc.model.wavefunction import TrialState, default_sigma  # noqa: E402

CASES = [(2, 2, 2), (2, 2, 4), (6, 2, 12), (2, 3, 4)]
SAMPLERS = [("metropolis", dict(step=1.0)), ("importance", dict(dt=0.05)), ("gibbs", {})]
C_LIMIT_SRC = REPO.parent / "shared" / "perf" / "limit.c"
C_LIMIT_CASE = (2, 2, 4)
C_LIMIT_ARGS = ["2", "2", "4", "2000000"]
C_LIMIT_TARGET = 0.8      # engine / C at C_LIMIT_CASE (benchmarks/README.md)
OMEGA, G, PARAM_SCALE, SPREAD = 1.0, 0.5, 0.1, 0.5


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict:
    return {
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": platform.python_version(),
        "numba": numba.__version__,
        "numpy": np.__version__,
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
    }


def setup(P: int, D: int, N: int, n_walkers: int, seed: int):
    rng = np.random.default_rng(seed)
    wf = TrialState(P, D, N, default_sigma(OMEGA, G), g=G).randomize(rng, PARAM_SCALE)
    ham = Hamiltonian(P, D, OMEGA, interaction=True)
    walkers = Walkers.start(seed, n_walkers, P * D, SPREAD)
    return wf, ham, walkers


def bench_case(kind: str, opts: dict, P: int, D: int, N: int, n_walkers: int, seconds: float,
               repeats: int, seed: int, clock: str, between=None) -> dict:
    """Time `Sampler.sample` on one case; `between()`, if given, is called after each timed repeat."""
    sampler = Sampler(kind, **opts)
    wf, ham, walkers = setup(P, D, N, n_walkers, seed)
    # Warm-up: numba compilation (or cache load) plus equilibration of the walkers.
    sampler.sample(wf, ham, walkers, n_burn=200, n_steps=10)

    def timed(n_steps: int) -> tuple[float, float, object]:
        w0, c0 = time.perf_counter(), time.process_time()
        out = sampler.sample(wf, ham, walkers, n_burn=0, n_steps=n_steps)
        c1, w1 = time.process_time(), time.perf_counter()
        return w1 - w0, c1 - c0, out

    # Calibrate the number of measured sweeps per walker so that one timing takes ~`seconds`.
    n_steps = 100
    while True:
        elapsed, _, _ = timed(n_steps)
        if elapsed >= 0.05 * seconds or n_steps >= 10**8:
            break
        n_steps *= 10
    n_steps = max(10, int(n_steps * seconds / max(elapsed, 1e-9)))

    best, wall_best, cpu_best, acceptance = float("inf"), float("nan"), float("nan"), float("nan")
    for _ in range(repeats):
        wall, cpu, out = timed(n_steps)
        elapsed = cpu if clock == "cpu" else wall
        if elapsed < best:
            best, wall_best, cpu_best, acceptance = elapsed, wall, cpu, out.acceptance
        if between is not None:
            between()
    sweeps = n_walkers * n_steps
    return {
        "sampler": kind, "P": P, "D": D, "N": N,
        "walkers": n_walkers, "sweeps_per_walker": n_steps, "clock": clock, "seconds": best,
        "wall_seconds": wall_best, "cpu_seconds": cpu_best,
        "sweeps_per_s": sweeps / best,
        "particle_moves_per_s": sweeps * P / best,
        "local_energies_per_s": sweeps / best,
        "ns_per_particle_move": 1e9 * best / (sweeps * P),
        "acceptance": acceptance,
    }


class CLimit:
    """The plain-C yardstick: built once in a temporary directory, then run once per `run()`.

    `available` is False (with `reason`) if the source or gcc is missing or the build fails.
    """

    def __init__(self, src: Path, clock: str):
        self.clock, self.available, self.reason = clock, False, ""
        self.best = self.best_wall = None
        self.best_line, self.error = "", None
        self.command = "./limit " + " ".join(C_LIMIT_ARGS)
        self._tmp = tempfile.TemporaryDirectory()
        if not src.is_file():
            self.reason = f"{src} not found"
            return
        gcc = shutil.which("gcc")
        if gcc is None:
            self.reason = "gcc not found"
            return
        self.exe = Path(self._tmp.name) / "limit"
        build = subprocess.run([gcc, "-O3", "-march=native", "-o", str(self.exe), str(src), "-lm"],
                               capture_output=True, text=True)
        if build.returncode != 0:
            self.reason = "gcc failed: " + build.stderr.strip()
            return
        self.available = True

    def run(self) -> None:
        """Run ./limit once and keep the best rate (per CPU second of the child, or its wall figure)."""
        if not self.available:
            return
        moves = int(C_LIMIT_ARGS[0]) * int(C_LIMIT_ARGS[3])
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = subprocess.run([str(self.exe), *C_LIMIT_ARGS], capture_output=True, text=True,
                             cwd=self._tmp.name)
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        m = re.search(r"particle-moves/s=([0-9.eE+-]+)", res.stdout)
        if res.returncode != 0 or m is None:
            self.available, self.reason = False, f"unexpected output: {res.stdout!r} {res.stderr!r}"
            return
        wall_rate = float(m.group(1))  # limit.c's own figure (CLOCK_MONOTONIC around its loop)
        cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)  # whole process, incl. start-up
        rate = moves / cpu if self.clock == "cpu" and cpu > 0 else wall_rate
        if self.best is None or rate > self.best:
            self.best, self.best_wall, self.best_line = rate, wall_rate, res.stdout.strip()

    def close(self) -> None:
        self._tmp.cleanup()


def fmt_table(rows: list[dict]) -> str:
    head = (f"{'sampler':<11} {'P':>2} {'D':>2} {'N':>3} {'walkers':>7} {'sweeps/walker':>13} "
            f"{'moves/s':>10} {'E_L/s':>10} {'ns/move':>8} {'acc':>6} {'wall/cpu':>8}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['sampler']:<11} {r['P']:>2} {r['D']:>2} {r['N']:>3} {r['walkers']:>7} "
                     f"{r['sweeps_per_walker']:>13} {r['particle_moves_per_s']:>10.3e} "
                     f"{r['local_energies_per_s']:>10.3e} {r['ns_per_particle_move']:>8.1f} "
                     f"{r['acceptance']:>6.3f} {r['wall_seconds'] / r['cpu_seconds']:>8.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object per row instead of a table")
    ap.add_argument("--quick", action="store_true", help="fast smoke run (short timings, 1 repeat)")
    ap.add_argument("--with-c-limit", action="store_true",
                    help="build and run the plain-C yardstick (brute-force Metropolis + E_L every sweep) "
                         f"and compare it with the engine's metropolis {C_LIMIT_CASE} figure")
    ap.add_argument("--c-limit-src", type=Path, default=C_LIMIT_SRC,
                    help="path of limit.c (default: ../shared/perf/limit.c relative to the repo root)")
    ap.add_argument("--walkers", type=int, default=8, help="walkers per sampling call (default 8)")
    ap.add_argument("--seconds", type=float, default=None, help="target seconds per timing (default 1, quick 0.05)")
    ap.add_argument("--repeats", type=int, default=None, help="timings per case, best kept (default 3, quick 1)")
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="time base of the rates: process CPU time (default) or wall-clock time")
    args = ap.parse_args(argv)
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 1.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 3)

    info = machine_info()
    if not args.json:
        print("# vmc sampling benchmark: single process (one core), interacting, omega=1, g=1/2, "
              f"sigma=default_sigma, RBM params ~ N(0, {PARAM_SCALE}^2), E_L after every sweep")
        print(f"# machine: {info['platform']}; CPU: {info['cpu']} ({info['cpus_available']} available)")
        print(f"# python {info['python']}, numba {info['numba']}, numpy {info['numpy']}")
        print(f"# date: {info['date']}")
        print(f"# timing: best of {repeats}, ~{seconds:g} s each, {args.walkers} walkers; "
              f"rates per {args.clock} second; "
              "moves/s counts P particle moves per sweep (gibbs included)")
        sys.stdout.flush()

    # The C yardstick, if asked for, runs once after each timed repeat of the engine's metropolis
    # (2, 2, 4) case, so that both best-of figures come from the same stretch of machine time.
    c = CLimit(args.c_limit_src, args.clock) if args.with_c_limit else None
    rows = []
    try:
        for kind, opts in SAMPLERS:
            for P, D, N in CASES:
                is_ref = kind == "metropolis" and (P, D, N) == C_LIMIT_CASE
                rows.append(bench_case(kind, opts, P, D, N, args.walkers, seconds, repeats, args.seed,
                                       args.clock, between=c.run if (c is not None and is_ref) else None))
    finally:
        if c is not None:
            c.close()
    ref = next(r for r in rows if r["sampler"] == "metropolis" and (r["P"], r["D"], r["N"]) == C_LIMIT_CASE)
    if c is not None and c.available:
        ref["c_limit_particle_moves_per_s"] = c.best
        ref["c_limit_wall_particle_moves_per_s"] = c.best_wall
        ref["ratio_to_c_limit"] = ref["particle_moves_per_s"] / c.best
    elif c is not None:
        ref["c_limit_skipped"] = c.reason

    if args.json:
        for r in rows:
            print(json.dumps({**r, **info}))
        return 0

    print(fmt_table(rows))
    if c is not None:
        print()
        if not c.available:
            print(f"# C limit: skipped ({c.reason})")
        else:
            ratio = ref["ratio_to_c_limit"]
            print(f"# C limit ({c.command}, gcc -O3 -march=native, best of {repeats}, "
                  f"interleaved with the engine's metropolis {C_LIMIT_CASE} repeats):")
            print(f"#   {c.best_line}")
            print(f"#   per {args.clock} second: {c.best:.3e} particle moves/s")
            print(f"# metropolis {C_LIMIT_CASE}: engine {ref['particle_moves_per_s']:.3e} moves/s, "
                  f"C {c.best:.3e} moves/s, engine/C = {ratio:.2f} "
                  f"({'meets' if ratio >= C_LIMIT_TARGET else 'BELOW'} the >= {C_LIMIT_TARGET} target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
