"""Regenerate docs/results.md and docs/figures/ from the study output files (run by `make studies`).

    python docs/make_results.py runs/studies/*.h5 [runs/dots/*.h5] [runs/dmc/*.h5]
    python docs/make_results.py runs/dmc/*.h5      # only the DMC section, rewritten in place (`make dmc`)
"""
from __future__ import annotations

import datetime
import os
import platform
import re
import sys
from pathlib import Path

from vmc import __version__
from vmc.analysis.report import write_report

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent


def description(study: str) -> str:
    """The comment block at the top of inputs/studies/<study>.toml."""
    path = ROOT / "inputs" / "studies" / f"{study}.toml"
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("# ").rstrip())
    return " ".join(lines)


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


PUBLISHED_RBM = {(2, 2): "3.00002(2)", (2, 6): "20.1853(2)", (2, 12): "65.9550(7)", (2, 20): "156.104(1)"}


def dots_section(files: list[str]) -> list[str]:
    """Table of the closed-shell quantum-dot runs (inputs/dots) against references and published RBM results."""
    import json

    import h5py

    from vmc.analysis.results import analyze_group
    from vmc.output.io import attr_text
    rows = ["| input | N | D | omega | factors | E (Hartree) | reference | published RBM (+PJ, +SD) | wall time |",
            "|---|---|---|---|---|---|---|---|---|"]
    for f in files:
        with h5py.File(f, "r", locking=False) as h:
            if attr_text(h, "status") != "complete":
                continue
            cfg = json.loads(h.attrs["config"])
            r = analyze_group(h, f)
            summary = json.loads(h.attrs["summary"])
        s, w = cfg["system"], cfg["wavefunction"]
        factors = (("symmetric RBM" if w.get("rbm") == "symmetric" else "RBM")
                   + (" x PJ" if w["jastrow"] == "pade" else "") + (" x SD" if w["slater"] else ""))
        ref = f"{r['reference']} ({r['reference_kind']})" if r.get("reference") is not None else "–"
        rows.append(f"| `{Path(f).stem}` | {s['particles']} | {s['dimensions']} | {s['omega']} | {factors} | "
                    f"{r['mean']:.5f} +- {r['error']:.5f} | {ref} | "
                    f"{PUBLISHED_RBM.get((s['dimensions'], s['particles']), '–') if s['omega'] == 1.0 else '–'} | "
                    f"{summary['wall_time'] / 60:.1f} min |")
    return ["## Closed-shell quantum dots (`inputs/dots`)", "",
            "RBM (g = 1/2) times the Padé-Jastrow factor (PJ) and, for more than two electrons, Slater "
            "determinants (SD) of harmonic-oscillator orbitals; stochastic reconfiguration or Adam; each run "
            "`mpiexec -n 2 vmc run inputs/dots/<input>.toml` on this machine (2 cores), wall time as measured. "
            "Published RBM column: best RBM + Padé-Jastrow (+ SD) results in the literature, as quoted in the "
            "project's issue tracker.", ""] + rows + [""]


# Uncertainties of the published references (last digits in parentheses in the literature); exact: 0.
REFERENCE_ERRORS = {(2, 2): 0.0, (2, 6): 8e-5, (2, 12): 1e-4, (2, 20): 1e-4, (3, 8): 1e-4}
DMC_BEGIN, DMC_END = "<!-- BEGIN DMC (docs/make_results.py) -->", "<!-- END DMC -->"


def dmc_section(files: list[str]) -> list[str]:
    """Table of the DMC runs (inputs/dmc): VMC of the same state, DMC per time step and extrapolated, reference,
    deviation in combined errors, wall time."""
    import math

    from vmc.analysis.report import collect, time_step_fit
    rows = ["| case | N | D | VMC (same state) | tau | walkers x steps | DMC (Hartree) | reference | "
            "(DMC - ref) / combined error | population-control shift | DMC wall time |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    figures = []
    for f in files:
        if not os.path.exists(f):
            rows.append(f"| `{Path(f).stem}` | | | | | | not run (no {f}) | | | | |")
            continue
        try:
            _, points = collect(f)
        except Exception as exc:   # an unfinished run: say so in the table
            rows.append(f"| `{Path(f).stem}` | | | | | | not complete ({str(exc)[:60]}) | | | | |")
            continue
        points = [p for p in points if "mean" in p["result"].get("dmc", {})]
        if not points:
            continue
        s = points[0]["spec"].system
        key = (s.dimensions, s.particles)
        ref_err = REFERENCE_ERRORS.get(key)

        def row(label, tau, size, e, err, ref, kind, wall, vmc="", shift=""):
            dev = "–"
            if ref is not None and ref_err is not None:
                dev = f"{(e - ref) / math.hypot(err, ref_err):+.1f}"
            ref_text = "–" if ref is None else f"{ref}" + (f" +- {ref_err:g}" if ref_err else "") + f" ({kind})"
            return (f"| `{Path(f).stem}` | {s.particles} | {s.dimensions} | {vmc} | {tau} | {size} | "
                    f"{e:.5f} +- {err:.5f} | {ref_text} | {dev} | {shift} | {wall} |")
        for p in sorted(points, key=lambda p: p["result"]["dmc"]["time_step"]):
            r, d = p["result"], p["result"]["dmc"]
            rows.append(row(label="", tau=f"{d['time_step']:g}", size=f"{d['walkers']} x {d['measured']}",
                            e=d["mean"], err=d["error"], ref=d.get("reference"), kind=d.get("reference_kind"),
                            wall=f"{d['wall_seconds'] / 60:.1f} min", vmc=f"{r['mean']:.5f} +- {r['error']:.5f}",
                            shift=f"{d['population_corrected']['mean'] - d['mean']:+.1e}"))
        fit = time_step_fit(points)
        if fit is not None:
            fig_dir = DOCS / "figures" / f"dmc_{Path(f).stem}"
            write_report(f, str(fig_dir), title=f"DMC {Path(f).stem}")
            figures.append(f"![DMC energy versus time step for `{Path(f).stem}`, with the fit extrapolated to "
                           f"tau -> 0](figures/{fig_dir.name}/dmc_time_step.png)")
            d = points[0]["result"]["dmc"]
            rows.append(row(label="", tau=f"-> 0 ({'linear' if fit['order'] == 1 else 'quadratic'})", size="",
                            e=fit["e0"], err=fit["error"], ref=d.get("reference"), kind=d.get("reference_kind"),
                            wall=f"{sum(p['result']['dmc']['wall_seconds'] for p in points) / 60:.1f} min"))
    return [DMC_BEGIN, "## Fixed-node diffusion Monte Carlo (`inputs/dmc`)", "",
            "Fixed-node DMC (`vmc/mc/dmc.py`) from the optimized states of `inputs/dots` (`wavefunction.from_file`, "
            "`optimizer.iterations = 0`: the VMC column is the production of the same run, i.e. VMC of exactly the "
            "trial state DMC uses); `mpiexec -n 2 vmc run inputs/dmc/<case>.toml` on this machine (2 cores shared "
            "with other jobs), `make dmc`. Errors: automated blocking of the per-step mixed estimates after the "
            "equilibration (set, plus what MSER detects); the extrapolation is a weighted least-squares fit of "
            "E(tau) (`vmc.mc.dmc.extrapolate`); combined error = sqrt(error^2 + reference error^2). Population-control "
            "shift: the estimate with the trial-energy factors of the last 1000 steps undone (Umrigar, Nightingale "
            "& Runge 1993, `vmc.mc.dmc.population_control_weights`) minus the plain one, a measure of the O(1/N) "
            "population-control bias.", ""] + rows + [
        ""] + [line for fig in figures for line in (fig, "")] + [DMC_END, ""]


def update_dmc_section(files: list[str]) -> None:
    path = DOCS / "results.md"
    text = path.read_text()
    section = "\n".join(dmc_section(files))
    if DMC_BEGIN in text:
        start, end = text.index(DMC_BEGIN), text.index(DMC_END) + len(DMC_END) + 1
        text = text[:start] + section + text[end:]
    else:
        marker = "\n## gibbs_sigma"
        at = text.index(marker) + 1 if marker in text else len(text)
        text = text[:at] + section + "\n" + text[at:]
    path.write_text(text)
    print(path)


def main(files: list[str]) -> None:
    if files and all("/dmc/" in f for f in files):
        update_dmc_section(files)
        return
    out = [
        "# Results of the parameter studies",
        "",
        f"Generated by `make studies` (vmc {__version__}) on {datetime.date.today()}, on {platform.node()}: "
        f"{cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}; every study ran with "
        "`mpiexec -n 2 vmc run inputs/studies/<study>.toml`. Energies in Hartree, lengths in Bohr; error bars "
        "are automated-blocking errors of each point's production run (`vmc.analysis.blocking`). Each study's own "
        "report is in `docs/figures/<study>/report.md`.",
        "",
    ]
    dots = [f for f in files if "/dots/" in f]
    dmc = [f for f in files if "/dmc/" in f]
    files = [f for f in files if "/dots/" not in f and "/dmc/" not in f]
    if dots:
        out += dots_section(dots)
    if dmc:
        out += dmc_section(dmc)
    for f in files:
        study = Path(f).stem
        fig_dir = DOCS / "figures" / study
        md = Path(write_report(f, str(fig_dir), title=study))
        body = md.read_text().splitlines()
        # drop the per-report title and provenance lines; re-home image links
        start = next(i for i, line in enumerate(body) if line.startswith("Energies in Hartree"))
        text = "\n".join(body[start + 1:])
        text = re.sub(r"\]\(([^)]+\.png)\)", lambda m: f"](figures/{study}/{m.group(1)})", text)
        out += [f"## {study}", "", description(study), "", f"Input: `inputs/studies/{study}.toml`.", "", text, ""]
    (DOCS / "results.md").write_text("\n".join(out))
    print(DOCS / "results.md")


if __name__ == "__main__":
    main(sys.argv[1:])
