"""The standard table of closed-shell quantum dots: one VMC and one DMC input per cell, runs that continue where
they stopped, and the table (docs/dots.csv, and the markdown in docs/results.md made from it).

    python docs/dots.py inputs                 # write inputs/dots/<cell>.toml and inputs/dmc/<cell>.toml (CELLS)
    python docs/dots.py run vmc [--ranks 2]    # `make dots`: run every missing cell, resume every unfinished one
    python docs/dots.py run dmc [--ranks 2]    # `make dmc`: the same for DMC (from the cell's optimized state)
    python docs/dots.py run checks [--ranks 2] # the DMC checks of inputs/checks (resumable, like the cells)
    python docs/dots.py run backflow           # inputs/backflow: with and without backflow (resumable too)
    python docs/dots.py table                  # runs/ -> docs/dots.csv -> the dot table of docs/results.md
    python docs/dots.py plan                   # the cells, their inputs and what is done

Cells: closed shells N = 2, 6, 12, 20 in 2D at omega = 1, 0.5, 0.28, 0.1; N = 30, 42, 56 in 2D and N = 8, 20 in
3D at omega = 1 and 0.5. The trial state is RBM x Padé-Jastrow (x Slater determinants for N > 2), optimized by
stochastic reconfiguration (Adam for N = 2). Lengths and times scale with the trap: the Langevin time step of
VMC and the DMC time step are dt_0 / omega and tau_0 / omega (one trap period is 1/omega). 2D N = 12 and 20 at
omega = 1 sweep the DMC time step (tau = 0.005, 0.01, 0.02 at equal imaginary time) for the tau -> 0
extrapolation. Each run is `mpiexec -n RANKS vmc run INPUT -o runs/{dots,dmc}/<cell>.h5`; a cell whose file is
complete is skipped, an unfinished one resumed (`--resume`), so the table fills over several sittings.

Backflow runs (inputs/backflow/<input>.toml -> runs/backflow/<input>.h5, `dmc_*` inputs DMC) join the CSV too,
their `factors` ending in `+backflow`; `table` lists the cells that have them with and without backflow.
Checks of the DMC numbers (inputs/checks/<input>.toml -> runs/checks/<input>.h5, all DMC) join it as well: the
same nodes from another trial state (the fixed-node energy at tau -> 0 must not depend on anything but the nodes),
and other populations; `table` puts them beside the cell's own DMC rows.
docs/dots.csv has one row per run and method (`vmc`, `dmc`, `dmc_extrapolated`) with the columns of `COLUMNS`
(`population_corrected`: the DMC energy with UNR's population-control correction, `vmc analyze`; same error);
the references (exact, DMC, published RBM + Padé-Jastrow VMC) come from docs/references.csv, with sources.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
RUNS = ROOT / "runs"

OMEGAS = (1.0, 0.5, 0.28, 0.1)
CELLS = ([(2, n, w) for n in (2, 6, 12, 20) for w in OMEGAS] + [(2, n, w) for n in (30, 42, 56) for w in (1.0, 0.5)]
         + [(3, n, w) for n in (8, 20) for w in (1.0, 0.5)])
EXTRAPOLATED = {(2, 12, 1.0), (2, 20, 1.0)}   # cells whose DMC sweeps the time step
TIME_STEPS = (0.005, 0.01, 0.02)              # x 1/omega
COLUMNS = ("dimensions", "particles", "omega", "method", "factors", "energy", "error", "population_corrected",
           "variance", "reference",
           "reference_error", "walkers", "steps", "time_step", "wall_seconds", "cores", "input")
TABLE_BEGIN, TABLE_END = "<!-- BEGIN DOT TABLE (docs/dots.py table) -->", "<!-- END DOT TABLE -->"


def name(D: int, N: int, omega: float) -> str:
    """'2d_n6' at omega = 1, '2d_n6_w0.28' elsewhere."""
    return f"{D}d_n{N}" + ("" if omega == 1.0 else f"_w{omega:g}")


def vmc_input(D: int, N: int, omega: float) -> dict:
    """The VMC input of a cell (optimization + production), scaled by the trap."""
    large = N >= 30 or (D == 3 and N >= 20)
    dt0 = {2: 0.5, 6: 0.2, 8: 0.15}.get(N, 0.05 if large else 0.1)
    # hidden units: as in the omega = 1 runs of docs/results.md; few for large N, where the SR matrix grows as
    # (M N_hidden)^2 and the determinants carry the physics
    wf = {"hidden": 6 if large else {2: 4, 6: 12}.get(N, N), "jastrow": "pade"}
    if N > 2:
        wf.update(slater=True, optimize_sigma=True, init_scale=0.01)
    opt = ({"kind": "adam", "learning_rate": 0.02, "iterations": 300} if N == 2 else
           {"kind": "sr", "learning_rate": 0.05, "sr_shift": 0.001, "iterations": 200 if large else 300})
    seed = N + 30 * (D - 2) if omega == 1.0 else 10000 * D + 100 * N + round(100 * omega)
    return {"seed": seed,
            "system": {"particles": N, "dimensions": D, "omega": omega},
            "wavefunction": wf,
            "sampler": {"kind": "importance", "dt": round(dt0 / omega, 6), "walkers": 32, "burn_in": 1000,
                        "steps": 2000 if N == 2 else 500 if large else 1000},
            "optimizer": opt,
            "production": {"steps": 100000 if N == 2 else 10000 if large else 20000}}


def dmc_input(D: int, N: int, omega: float) -> dict:
    """The DMC input of a cell: VMC of the cell's optimized state (no optimization), then fixed-node DMC."""
    cfg = vmc_input(D, N, omega)
    large = N >= 30 or (D == 3 and N >= 20)
    cfg["wavefunction"] = {k: v for k, v in cfg["wavefunction"].items() if k != "init_scale"}
    cfg["wavefunction"]["from_file"] = f"runs/dots/{name(D, N, omega)}.h5"
    cfg["optimizer"] = {"iterations": 0}
    cfg["production"] = {"steps": 2000}
    steps = 2000 if large else 4000 if N >= 20 else 6000
    walkers = 500 if large else 1000
    if (D, N, omega) in EXTRAPOLATED:   # sized for sigma <= 1e-3 (N = 12) and 2e-3 (N = 20) after extrapolation
        walkers, steps = 2000, 40000 if N == 12 else 20000
    cfg["dmc"] = {"time_step": round(0.01 / omega, 6), "walkers": walkers, "equilibration": 1000, "steps": steps}
    if (D, N, omega) in EXTRAPOLATED:
        cfg["sweep"] = {"zip": True, "dmc.time_step": [round(t / omega, 6) for t in TIME_STEPS],
                        "dmc.steps": [round(steps * 0.01 / t) for t in TIME_STEPS],
                        "dmc.equilibration": [round(1000 * 0.01 / t) for t in TIME_STEPS]}
    return cfg


def toml(cfg: dict, header: str) -> str:
    from vmc.input.schema import fmt
    lines = [f"# {line}" for line in header.splitlines()]
    lines += [f"{k} = {fmt(v)}" for k, v in cfg.items() if not isinstance(v, dict)]
    for section, table in cfg.items():
        if isinstance(table, dict):
            lines += ["", f"[{section}]"]
            lines += [f"{k if '.' not in k else json.dumps(k)} = {fmt(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"


def references() -> dict:
    """(D, N, omega) -> {kind: (energy, error)} from docs/references.csv."""
    out: dict = {}
    with open(DOCS / "references.csv", newline="") as f:
        for r in csv.DictReader(line for line in f if not line.startswith("#")):
            key = (int(r["dimensions"]), int(r["particles"]), float(r["omega"]))
            out.setdefault(key, {})[r["kind"]] = (float(r["energy"]), float(r["error"]))
    return out


def reference(key) -> tuple[float, float] | tuple[None, None]:
    refs = references().get(key, {})
    return refs.get("exact") or refs.get("dmc") or (None, None)


def write_inputs() -> None:
    for D, N, w in CELLS:
        cell = name(D, N, w)
        ref = reference((D, N, w))
        published = references().get((D, N, w), {}).get("published_rbm_pj")
        about = (f"{N} electrons in {D}D at omega = {w:g} (closed shell), generated by `python docs/dots.py inputs`.\n"
                 f"Reference: {ref[0]} ({'exact' if ref[1] == 0 else 'DMC'})" if ref[0] is not None else
                 f"{N} electrons in {D}D at omega = {w:g} (closed shell), generated by `python docs/dots.py inputs`.\n"
                 "Reference: none known")
        about += f"; published RBM + Padé-Jastrow VMC: {published[0]}." if published else "."
        (ROOT / "inputs" / "dots" / f"{cell}.toml").write_text(toml(vmc_input(D, N, w), about))
        (ROOT / "inputs" / "dmc" / f"{cell}.toml").write_text(toml(dmc_input(D, N, w), about + (
            f"\nFixed-node DMC from the optimized state of inputs/dots/{cell}.toml (`make dots` first); the VMC "
            "production\nevaluates that state (optimizer.iterations = 0), then DMC starts from its walkers.")))
    print(f"{len(CELLS)} cells: inputs/dots/*.toml, inputs/dmc/*.toml")


# ---- running -------------------------------------------------------------------------------------------


def status(path: Path) -> str:
    """'missing', 'complete' or the file's status (running, failed, interrupted, ...)."""
    if not path.exists():
        return "missing"
    import h5py

    from vmc.output.io import attr_text
    try:
        with h5py.File(path, "r", locking=False) as f:
            return attr_text(f, "status", "?")
    except OSError:
        return "unreadable"


def run_input(given: str, out: Path, ranks: int, label: str) -> int:
    """Run the input `given` into `out`: nothing if complete, `--resume` if unfinished, else a new run."""
    state = status(out)
    if state == "complete":
        return 0
    out.parent.mkdir(parents=True, exist_ok=True)
    args = ["--resume", str(out)] if state != "missing" else [given, "-o", str(out)]
    bin_dir = Path(sys.executable).parent
    cmd = [str(bin_dir / "mpiexec"), "-n", str(ranks), str(bin_dir / "vmc"), "run", *args, "--quiet"]
    print(f"{label}: {' '.join(cmd[3:])}", flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def run_cell(kind: str, D: int, N: int, w: float, ranks: int) -> int:
    cell = name(D, N, w)
    if kind == "dmc" and status(RUNS / "dots" / f"{cell}.h5") != "complete":
        code = run_cell("vmc", D, N, w, ranks)
        if code:
            return code
    folder = "dots" if kind == "vmc" else "dmc"
    return run_input(f"inputs/{folder}/{cell}.toml", RUNS / folder / f"{cell}.h5", ranks, f"{kind} {cell}")


def run_all(kind: str, ranks: int, only: list[str]) -> int:
    if kind in ("checks", "backflow"):   # after the cells whose optimized states they read (`from_file`); in name
        # order, so inputs/backflow/2d_* (optimizations) run before the dmc_* that read them
        jobs = [(inp.stem, lambda inp=inp: run_input(str(inp.relative_to(ROOT)), RUNS / kind / f"{inp.stem}.h5",
                                                     ranks, f"{kind} {inp.stem}"))
                for inp in sorted((ROOT / "inputs" / kind).glob("*.toml"))]
    else:
        jobs = [(name(D, N, w), lambda D=D, N=N, w=w: run_cell(kind, D, N, w, ranks)) for D, N, w in CELLS]
    failed = [label for label, job in jobs if (not only or label in only) and job() != 0]
    if failed:
        print(f"not complete: {', '.join(failed)} (run again to resume)", file=sys.stderr)
    return 1 if failed else 0


# ---- the table -----------------------------------------------------------------------------------------


def _factors(cfg: dict) -> str:
    w = cfg["wavefunction"]
    return "+".join(["rbm" if w.get("rbm", "coordinates") == "coordinates" else "symmetric_rbm"]
                    + (["pj"] if w["jastrow"] == "pade" else []) + (["sd"] if w["slater"] else [])
                    + (["backflow"] if w.get("backflow", "none") != "none" else []))


def rows_of(path: Path, kind: str) -> list[dict]:
    """The CSV rows of one complete run file (`kind` vmc or dmc; a DMC sweep gives one row per time step and the
    extrapolated row)."""
    import h5py

    from vmc.analysis.results import analyze_group, reference_energy, run_groups
    from vmc.input.spec import Spec
    rows = []
    with h5py.File(path, "r", locking=False) as f:
        for _, g in run_groups(f):
            cfg = json.loads(g.attrs["config"])
            s = cfg["system"]
            key = (s["dimensions"], s["particles"], float(s["omega"]))
            # a check without the Coulomb term (inputs/checks): its reference is the exact non-interacting energy
            ref, ref_err = reference(key) if s.get("interaction", True) else \
                (reference_energy(Spec.from_dict(cfg))[0], 0.0)
            base = {"dimensions": key[0], "particles": key[1], "omega": key[2], "factors": _factors(cfg),
                    "reference": ref, "reference_error": ref_err, "cores": int(f.attrs.get("n_ranks", 1)),
                    "input": f"inputs/{path.parent.name}/{path.stem}.toml"}
            r = analyze_group(g, str(path))
            if kind == "vmc":
                summary = json.loads(g.attrs["summary"])
                rows.append({**base, "method": "vmc", "energy": r["mean"], "error": r["error"],
                             "variance": r["variance"], "walkers": cfg["sampler"]["walkers"],
                             "steps": cfg["production"]["steps"],
                             "time_step": cfg["sampler"]["dt"], "wall_seconds": round(summary["wall_time"], 1)})
            elif "mean" in r.get("dmc", {}) and not r["dmc"].get("failures"):   # an untrusted DMC is no result
                d = r["dmc"]
                rows.append({**base, "method": "dmc", "energy": d["mean"], "error": d["error"],
                             "population_corrected": d["population_corrected"]["mean"], "walkers": d["walkers"],
                             "steps": d["measured"], "time_step": d["time_step"],
                             "wall_seconds": round(d["wall_seconds"], 1)})
    return rows + extrapolated([r for r in rows if r["method"] == "dmc"], rows[0]["input"] if rows else "")


def extrapolated(dmc: list[dict], inp: str) -> list[dict]:
    """The tau -> 0 row of DMC rows that form a time-step series (three time steps or more; a population series
    has one), with input `inp`; none otherwise."""
    from vmc.mc.dmc import extrapolate
    tau = [float(r["time_step"]) for r in dmc]
    if len(set(tau)) < 3:
        return []
    fit = extrapolate(tau, [float(r["energy"]) for r in dmc], [float(r["error"]) for r in dmc])
    corrected = [r.get("population_corrected") for r in dmc]
    if all(c not in (None, "") for c in corrected):    # older rows have no population-corrected energy
        corrected = extrapolate(tau, [float(c) for c in corrected], [float(r["error"]) for r in dmc])["e0"]
    else:
        corrected = None
    return [{**dmc[0], "method": "dmc_extrapolated", "energy": fit["e0"], "error": fit["error"], "input": inp,
             "population_corrected": corrected,
             "steps": sum(int(r["steps"]) for r in dmc), "time_step": 0.0,
             "cores": max(int(r["cores"]) for r in dmc), "wall_seconds": sum(float(r["wall_seconds"]) for r in dmc)}]


def extended_series(rows: list[dict]) -> list[dict]:
    """A cell's own time-step series (inputs/dmc/<cell>.toml) extended by its checks at one more time step from the
    same trial state (inputs/checks/dmc_<cell>_tau<tau>.toml): the tau -> 0 row through all their points, its
    input the inputs joined by '+'."""
    out = []
    for cell in CELLS:
        own = f"inputs/dmc/{name(*cell)}.toml"
        pattern = rf"inputs/checks/dmc_{re.escape(name(*cell))}_tau[0-9.]+\.toml"
        extra = sorted({r["input"] for r in rows if re.fullmatch(pattern, r["input"])})
        if extra:
            points = sorted((r for r in rows if r["method"] == "dmc" and r["input"] in [own, *extra]),
                            key=lambda r: r["input"] != own)     # the walkers of the row: the cell's series'
            out += extrapolated(points, "+".join([own, *extra]))
    return out


def collect() -> list[dict]:
    """The rows of every complete run: the cells' (runs/dots, runs/dmc), then the backflow runs of
    inputs/backflow (runs/backflow/<input>.h5; `dmc_*` inputs are DMC); `extended_series` joins them later."""
    rows = []
    for D, N, w in CELLS:
        for kind, folder in (("vmc", "dots"), ("dmc", "dmc")):
            path = RUNS / folder / f"{name(D, N, w)}.h5"
            if status(path) == "complete":
                rows += rows_of(path, kind)
    for folder in ("backflow", "checks"):
        for inp in sorted((ROOT / "inputs" / folder).glob("*.toml")):
            path = RUNS / folder / f"{inp.stem}.h5"
            if status(path) == "complete":
                rows += rows_of(path, "dmc" if inp.stem.startswith("dmc_") else "vmc")
    return rows


def row_key(r: dict) -> tuple:
    """What tells two rows apart: cell, method, factors, time step, walkers, input."""
    return (int(r["dimensions"]), int(r["particles"]), float(r["omega"]), r["method"], r["factors"],
            float(r["time_step"]), int(r["walkers"]), r["input"])


def write_csv(rows: list[dict], path: Path = DOCS / "dots.csv") -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in COLUMNS})


def read_csv(path: Path = DOCS / "dots.csv") -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _pm(e, err) -> str:
    """20.18285(66)-style: the error in units of the last digit, one significant digit (two when it is 1).

    >>> _pm(20.18285, 0.00066), _pm(65.7001, 0.0001), _pm(156.104, 0.0019), _pm(3.0, 0.0)
    ('20.1828(7)', '65.70010(10)', '156.1040(19)', '3.0')
    """
    if not err > 0:
        return f"{e}"
    digits = -math.floor(math.log10(err)) + (1 if f"{err:e}".startswith("1") else 0)
    return f"{e:.{digits}f}({round(err * 10 ** digits):d})"


def _sigma(a, ea, b, eb) -> str:
    s = math.hypot(ea, eb)
    return f"{(a - b) / s:+.1f}" if s > 0 else "–"


HEADER = ("| D | N | omega | VMC (this code) | published RBM + PJ | (VMC - pub.) / sigma | DMC (this code) | "
          "DMC reference | (DMC - ref.) / sigma | VMC walkers x steps, wall, cores | "
          "DMC walkers x steps, tau, wall, cores |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")


def _value(r: dict) -> tuple[float, float]:
    return float(r["energy"]), float(r["error"])


def cell_line(key, rows: list[dict], refs: dict) -> str:
    """One line of the dot table: VMC against the published RBM, DMC against the reference: the tau -> 0
    extrapolation of the cell's own series, else of its time-step check (`inputs/checks/dmc_<cell>_tau.toml`),
    else the single time step; "not run" where a run is missing."""
    series = ("inputs/dots/", "inputs/dmc/", f"inputs/checks/dmc_{name(*key)}_tau.toml")
    mine = [r for r in rows if (int(r["dimensions"]), int(r["particles"]), float(r["omega"])) == key
            and r["input"].startswith(series)]
    v = next((r for r in mine if r["method"] == "vmc"), None)
    own = sorted((r for r in mine if r["method"] == "dmc_extrapolated" and r["input"].startswith(series[1])),
                 key=lambda r: -r["input"].count("+"))          # the series extended by checks first
    d = next(iter(own), None) or next((r for r in mine if r["method"] == "dmc_extrapolated"), None) or \
        next((r for r in mine if r["method"] == "dmc" and r["input"].startswith(series[1])), None)
    taus = sorted({float(r["time_step"]) for r in rows if r["method"] == "dmc" and d
                   and r["input"] in d["input"].split("+")})
    pub = refs.get(key, {}).get("published_rbm_pj")
    ref = refs.get(key, {}).get("exact") or refs.get(key, {}).get("dmc")
    cols = [f"{key[0]}", f"{key[1]}", f"{key[2]:g}",
            _pm(*_value(v)) if v else "not run", _pm(*pub) if pub else "–",
            _sigma(*_value(v), *pub) if v and pub else "–",
            (_pm(*_value(d)) + (" (tau -> 0)" if d["method"] == "dmc_extrapolated" else "")) if d else "not run",
            _pm(*ref) if ref else "–", _sigma(*_value(d), *ref) if d and ref else "–",
            f"{v['walkers']} x {v['steps']}, {float(v['wall_seconds']) / 60:.1f} min, {v['cores']}" if v else "",
            (f"{d['walkers']} x {d['steps']}, "
             + ("tau = " + ", ".join(f"{t:g}" for t in taus) + " -> 0"
                if d["method"] == "dmc_extrapolated" else f"{float(d['time_step']):g}")
             + f", {float(d['wall_seconds']) / 60:.1f} min, {d['cores']}") if d else ""]
    return "| " + " | ".join(cols) + " |"


def markdown(rows: list[dict]) -> str:
    """The dot table, one line per cell (`cell_line`), with its introduction."""
    refs = references()
    done = len({(r["dimensions"], r["particles"], r["omega"]) for r in rows
                if r["method"] == "vmc" and r["input"].startswith("inputs/dots/")})
    intro = (f"{done} of {len(CELLS)} cells have a VMC result. Made by `python docs/dots.py table` from docs/dots.csv "
             "(one row per run and method); inputs `inputs/dots/<cell>.toml` and `inputs/dmc/<cell>.toml`, run by "
             "`make dots` and `make dmc`. sigma: the combined error sqrt(error^2 + reference error^2). A VMC energy "
             "at or below the published RBM + Padé-Jastrow value within 2 sigma meets the target; DMC within 2 sigma "
             "of the reference. DMC: the tau -> 0 extrapolation of the cell's series, or of its time-step check "
             "`inputs/checks/dmc_<cell>_tau.toml` where it has one, else the single time step of "
             "`inputs/dmc/<cell>.toml`.")
    lines = [cell_line(cell, rows, refs) for cell in CELLS]
    return "\n".join([TABLE_BEGIN, "## The standard table of quantum dots", "", intro, "", HEADER] + lines
                     + backflow_lines(rows, refs) + checks_lines(rows, refs) + ["", TABLE_END]) + "\n"


def backflow_lines(rows: list[dict], refs: dict) -> list[str]:
    """The cells with backflow rows: VMC and DMC with and without backflow (the DMC rows with the backflow DMC's
    time step and walkers, its companion run of inputs/backflow first), against the reference."""
    cells = sorted({(int(r["dimensions"]), int(r["particles"]), float(r["omega"])) for r in rows
                    if "backflow" in r["factors"]})
    if not cells:
        return []
    out = ["", "Backflow (inputs/backflow, rows of docs/dots.csv whose factors name it): the same cells with and "
           "without backflow; DMC at the same time step and walkers.", "",
           "| D | N | omega | factors | VMC | variance of E_L | DMC (tau) | DMC reference | (DMC - ref.) / sigma |",
           "|---|---|---|---|---|---|---|---|---|"]
    for key in cells:
        mine = [r for r in rows if (int(r["dimensions"]), int(r["particles"]), float(r["omega"])) == key
                and not r["input"].startswith("inputs/checks/")]      # the checks have their own table
        ref = refs.get(key, {}).get("exact") or refs.get(key, {}).get("dmc")
        like = [(float(r["time_step"]), int(r["walkers"])) for r in mine
                if r["method"] == "dmc" and "backflow" in r["factors"]]
        for factors in sorted({r["factors"] for r in mine}, key=lambda f: ("backflow" in f, f)):
            v = next((r for r in mine if r["factors"] == factors and r["method"] == "vmc"), None)
            dmc = [r for r in mine if r["factors"] == factors and r["method"] == "dmc"]
            same = [r for r in dmc if (float(r["time_step"]), int(r["walkers"])) in like]   # the companion run first
            same.sort(key=lambda r: not r["input"].startswith("inputs/backflow/"))
            d = (same or [r for r in dmc if float(r["time_step"]) in {t for t, _ in like}] or dmc or [None])[0]
            variance = f"{float(v['variance']):.5f}" if v and v.get("variance") not in (None, "") else "–"
            out.append("| " + " | ".join([
                f"{key[0]}", f"{key[1]}", f"{key[2]:g}", factors.replace("+", " x "),
                _pm(*_value(v)) if v else "not run", variance,
                f"{_pm(*_value(d))} ({float(d['time_step']):g})" if d else "not run",
                _pm(*ref) if ref else "–", _sigma(*_value(d), *ref) if d and ref else "–"]) + " |")
        for v in (r for r in mine if r["method"] == "vmc" and r["input"].endswith("_more.toml")):
            out.append("| " + " | ".join([      # the plain state given the backflow run's optimizer budget
                f"{key[0]}", f"{key[1]}", f"{key[2]:g}", v["factors"].replace("+", " x ") + ", the backflow's "
                "iterations without it", _pm(*_value(v)), f"{float(v['variance']):.5f}", "–", "–", "–"]) + " |")
    return out


def checks_lines(rows: list[dict], refs: dict) -> list[str]:
    """The cells with DMC checks (inputs/checks): every DMC row of the cell's own input and of its checks (each time
    step, and tau -> 0 where there is a series), against the reference."""
    cells = sorted({(int(r["dimensions"]), int(r["particles"]), float(r["omega"])) for r in rows
                    if r["input"].startswith("inputs/checks/")})
    if not cells:
        return []
    out = ["", "Checks of the DMC numbers (inputs/checks, `python docs/dots.py run checks`): the same nodes from "
           "another trial state, time-step series, other populations; beside the cell's own DMC rows.", "",
           "| D | N | omega | input | factors | walkers | tau | DMC | DMC reference | (DMC - ref.) / sigma |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for key in cells:
        ref = refs.get(key, {}).get("exact") or refs.get(key, {}).get("dmc")
        mine = [r for r in rows if (int(r["dimensions"]), int(r["particles"]), float(r["omega"])) == key
                and r["method"] in ("dmc", "dmc_extrapolated")
                and r["input"].startswith(("inputs/dmc/", "inputs/checks/"))]
        mine.sort(key=lambda r: (not r["input"].startswith("inputs/dmc/"), r["input"], r["method"] != "dmc",
                                 float(r["time_step"])))
        for r in mine:
            tau = "-> 0" if r["method"] == "dmc_extrapolated" else f"{float(r['time_step']):g}"
            own = (float(r["reference"]), float(r["reference_error"] or 0.0)) if r["reference"] not in ("", None) \
                else ref     # the row's own: exact for a check without the Coulomb term
            out.append("| " + " | ".join([
                f"{key[0]}", f"{key[1]}", f"{key[2]:g}", f"`{r['input']}`", r["factors"].replace("+", " x "),
                f"{r['walkers']}", tau, _pm(*_value(r)), _pm(*own) if own else "–",
                _sigma(*_value(r), *own) if own else "–"]) + " |")
    return out


def update_results(rows: list[dict]) -> None:
    path = DOCS / "results.md"
    text = path.read_text()
    section = markdown(rows)
    if TABLE_BEGIN in text:
        start, end = text.index(TABLE_BEGIN), text.index(TABLE_END) + len(TABLE_END) + 1
        text = text[:start] + section + text[end:]
    else:
        first = text.index("\n## ") + 1 if "\n## " in text else len(text)
        text = text[:first] + section + "\n" + text[first:]
    path.write_text(text)


def plan() -> None:
    for D, N, w in CELLS:
        cell = name(D, N, w)
        print(f"{cell:<14} vmc {status(RUNS / 'dots' / f'{cell}.h5'):<12} dmc {status(RUNS / 'dmc' / f'{cell}.h5')}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python docs/dots.py", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("inputs")
    r = sub.add_parser("run")
    r.add_argument("kind", choices=("vmc", "dmc", "checks", "backflow"))
    r.add_argument("--ranks", type=int, default=int(os.environ.get("NPROC", 2)))
    r.add_argument("--only", nargs="*", default=[], metavar="CELL", help="cells (or checks: input names) to run")
    sub.add_parser("table")
    sub.add_parser("plan")
    args = p.parse_args(argv)
    if args.command == "inputs":
        write_inputs()
    elif args.command == "run":
        return run_all(args.kind, args.ranks, args.only)
    elif args.command == "table":
        rows = collect()
        if (DOCS / "dots.csv").exists():   # keep the rows of runs made elsewhere (their files are not here)
            here = {row_key(r) for r in rows}
            rows += [r for r in read_csv() if row_key(r) not in here]
        rows = [r for r in rows if "+" not in r["input"]]      # the joined series are fitted again
        rows += extended_series(rows)
        write_csv(rows)
        update_results(read_csv())
        print(f"docs/dots.csv: {len(rows)} rows; docs/results.md updated")
    else:
        plan()
    return 0


if __name__ == "__main__":
    sys.exit(main())
