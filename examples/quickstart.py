#!/usr/bin/env python
"""vmc from Python: run the default input at a reduced length, plot its energy history and one-body
density from the returned object, then run a small omega study and tabulate it from the loaded file.

    python examples/quickstart.py                 # about a minute on 2 cores
    python examples/quickstart.py --short         # a few seconds (what the tests run)

Writes quickstart.h5, quickstart_study.h5 and quickstart.png into --out (default runs/examples).
"""
import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

import vmc  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
ap.add_argument("--short", action="store_true", help="tiny settings (seconds)")
ap.add_argument("--out", type=Path, default=ROOT / "runs" / "examples")
args = ap.parse_args()
args.out.mkdir(parents=True, exist_ok=True)
length = ({"optimizer.iterations": 10, "sampler.steps": 200, "sampler.burn_in": 100, "production.steps": 2000}
          if args.short else {"optimizer.iterations": 100, "production.steps": 10000})

# 1. One run: the default input, shortened; the result is a vmc.Run.
run = vmc.run(ROOT / "inputs" / "default.toml", output=args.out / "quickstart.h5", overrides=length, force=True)
print(run.summary())
print(f"energy {run.energy:.6f} +- {run.error:.6f}")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5))
ax1.errorbar(range(len(run.history["energy"])), run.history["energy"], run.history["error"], fmt=".", ms=3)
if run.reference:
    ax1.axhline(run.reference[0], color="k", lw=0.8, label=f"{run.reference[1]} {run.reference[0]}")
    ax1.legend()
ax1.set(xlabel="iteration", ylabel="E (Hartree)", title="optimization")
r, density = run.density
ax2.plot(r, density)
ax2.set(xlabel="r (Bohr)", ylabel="n(r)", title="one-body density")
fig.tight_layout()
fig.savefig(args.out / "quickstart.png", dpi=120)

# 2. A parameter study: the same system at three trap frequencies, as a nested dict with a [sweep].
study = {"seed": 7, "system": {"particles": 2, "dimensions": 2},
         "sampler": {"kind": "importance", "dt": 0.5, "walkers": 8, "burn_in": 100, "steps": 300},
         "optimizer": {"kind": "adam", "learning_rate": 0.02, "iterations": 5 if args.short else 60},
         "production": {"steps": 1000 if args.short else 10000},
         "sweep": {"system": {"omega": [0.5, 1.0, 2.0]}}}
vmc.run(study, output=args.out / "quickstart_study.h5", force=True)

# 3. Load the study file as its points and tabulate them.
print(f"{'omega':>6} {'E':>10} {'error':>9} {'<T>':>9} {'reference':>10}")
for point in vmc.load(args.out / "quickstart_study.h5"):
    ref = point.reference[0] if point.reference else float("nan")
    print(f"{point.swept['system.omega']:6.2f} {point.energy:10.6f} {point.error:9.6f} "
          f"{point.parts['kinetic'][0]:9.5f} {ref:10.4f}")
