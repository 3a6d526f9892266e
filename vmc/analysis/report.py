"""`vmc report`: a markdown report with figures from a run or study file.

Figures (PNG, matplotlib Agg): energy versus optimization iteration for every point (with the exact
value where known), final energy with blocked error bars versus each swept option, acceptance versus
the step length or time step, the energy parts and mean pair distance versus each swept option, and
the radial one-body density of every point (interacting and non-interacting on one plot when both
are there). The table lists, per point: E, blocked error, variance, acceptance, <T>, <V_trap>,
<V_int>, <r_ij>, samples per second, the efficiency 1/(error^2 x CPU s), and the exact or DMC reference
with the deviation in error bars.

Runs with DMC (`dmc.steps > 0`) add a DMC table (energy with blocked error, discarded equilibration, mixed
estimates of the parts, population, tau_eff, wall time), a figure of the energy, trial energy and population
per DMC step, and -- when `dmc.time_step` is swept -- the fit of E(tau) (linear, or quadratic where the
data need it, `vmc.mc.dmc.extrapolate`) with the extrapolated tau -> 0 energy and its error.
"""
from __future__ import annotations

import datetime
import json
import os
import platform

import numpy as np

from ..input.spec import Spec
from ..model.hamiltonian import SYMBOLS, TERM_NAMES
from ..output.io import attr_text, done, history, reading
from ..version import __version__
from .results import AnalysisError, analyze_group, run_groups

ACCEPTANCE_KEYS = ("sampler.step", "sampler.dt")
UNITS = {"system.omega": "omega (Hartree)", "sampler.dt": "time step dt", "dmc.time_step": "DMC time step tau",
         "sampler.step": "step length (Bohr)", "wavefunction.hidden": "hidden units N",
         "optimizer.learning_rate": "learning rate",
         "wavefunction.sigma": "sigma (Bohr)"}


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, out: str) -> None:
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    _plt().close(fig)


def collect(path: str) -> tuple[dict, list[dict]]:
    """File attributes and one record per completed point (spec, analysis, history, density)."""
    with reading(path, AnalysisError, "damaged or not a vmc output file") as f:
        if f.attrs.get("format") not in ("vmc-run", "vmc-study"):
            raise AnalysisError(f"{path}: not a vmc output file (no format attribute 'vmc-run' or 'vmc-study')")
        info = {k: f.attrs.get(k) for k in ("started", "host", "n_ranks", "command")}
        info.update(finished=attr_text(f, "finished"), config=attr_text(f, "config"))
        points = []
        for label, g in run_groups(f):
            if attr_text(g, "status") != "complete":
                continue
            spec = Spec.from_dict(json.loads(g.attrs["config"]))
            result = analyze_group(g, f"{path} [{label}]" if label else path)
            dens = g["production/density"]
            points.append({
                "label": label or "run", "spec": spec, "result": result,
                "energy_history": history(g, "energy"),
                "r": dens["r"][...] if "r" in dens else None,
                "density": dens["density"][...] if "density" in dens else None,
                "samples_per_s": g["production/local_energy"].shape[0] * done(g, "production")
                / max(float(g["production"].attrs.get("wall_seconds", 0)), 1e-12),
            })
    if not points:
        raise AnalysisError(f"{path}: no completed run to report on")
    return info, points


def _determines(points, key, other) -> bool:
    """True when the value of `key` fixes the value of `other` across the points (zipped sweeps)."""
    seen = {}
    for p in points:
        k, o = json.dumps(p["spec"].value(key)), json.dumps(p["spec"].value(other))
        if seen.setdefault(k, o) != o:
            return False
    return True


def swept_keys(info: dict, points: list[dict]) -> list[str]:
    """Options whose value differs between points, in input order; an option in one-to-one
    correspondence with an earlier one (zipped together, e.g. omega and dt) is left out."""
    sweep = json.loads(info["config"]).get("sweep", {}) if info.get("config") else {}
    keys = [k for k in sweep if k != "zip"]
    keys = [k for k in keys if len({json.dumps(p["spec"].value(k)) for p in points}) > 1]
    out = []
    for k in keys:
        if not any(_determines(points, k, e) and _determines(points, e, k) for e in out):
            out.append(k)
    return out


def _series_by_others(points, key, keys):
    """Group points into lines along `key`, one line per combination of the other swept options
    (options that `key` determines do not split lines)."""
    others = [k for k in keys if k != key and not _determines(points, key, k)]
    lines: dict[str, list] = {}
    for p in points:
        name = ", ".join(f"{k.split('.')[-1]}={p['spec'].value(k)}" for k in others)
        lines.setdefault(name, []).append(p)
    for name in lines:
        lines[name].sort(key=lambda p: p["spec"].value(key))
    return lines


def figure_history(points, out):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    exacts = set()
    for p in points:
        e = p["energy_history"]
        if e.size:
            ax.plot(np.arange(e.size), e, lw=1, label=p["label"])
        if p["result"].get("reference") is not None:
            exacts.add(p["result"]["reference"])
    for x in sorted(exacts):
        ax.axhline(x, color="k", ls="--", lw=0.8)
    if exacts:
        ax.plot([], [], "k--", lw=0.8, label="reference (exact or DMC)")
    finals = [p["result"]["mean"] for p in points]
    lo = min(min(finals), min(exacts) if exacts else np.inf)
    hi = max(np.percentile(np.concatenate([p["energy_history"] for p in points if p["energy_history"].size]
                                          or [np.array(finals)]), 90), max(finals))
    ax.set_ylim(lo - 0.05 * abs(hi - lo) - 1e-3, hi + 0.1 * abs(hi - lo) + 1e-3)
    ax.set_xlabel("optimization iteration")
    ax.set_ylabel("energy (Hartree)")
    ax.set_title("energy during optimization")
    if len(points) <= 12:
        ax.legend(fontsize=7)
    _save(fig, out)


def figure_vs(points, key, keys, out, quantity="energy"):
    """energy (with exact), acceptance, or parts (<T>, <V_trap>, <V_int> and <r_12>) versus a swept key."""
    plt = _plt()
    if quantity == "parts":
        fig, (ax, ax_r) = plt.subplots(1, 2, figsize=(11, 4.2))
    else:
        fig, ax = plt.subplots(figsize=(6.5, 4.2))
        ax_r = None
    for i, (name, line) in enumerate(_series_by_others(points, key, keys).items()):
        color = f"C{i % 10}"
        x = [p["spec"].value(key) for p in line]
        if quantity == "energy":
            ax.errorbar(x, [p["result"]["mean"] for p in line], yerr=[p["result"]["error"] for p in line],
                        fmt="o-", color=color, capsize=3, label=name or "VMC energy")
            ex = [p["result"].get("reference") for p in line]
            if any(e is not None for e in ex):
                ax.plot(x, [np.nan if e is None else e for e in ex], "--", color=color, lw=0.8,
                        label=f"reference {name}".strip())
            ax.set_ylabel("energy (Hartree), blocked error bars")
        elif quantity == "acceptance":
            ax.plot(x, [p["result"]["acceptance"] for p in line], "o-", color=color, label=name or "acceptance")
            ax.set_ylabel("acceptance ratio")
            ax.set_ylim(0, 1.02)
        else:
            for part, marker in zip(TERM_NAMES, "os^vD<>p"):
                ax.errorbar(x, [p["result"][part]["mean"] for p in line],
                            yerr=[p["result"][part]["error"] for p in line], fmt=marker + "-", color=color,
                            capsize=2, label=f"{SYMBOLS[part]} {name}".strip())
            ax.set_ylabel("energy parts (Hartree)")
            if line[0]["spec"].system.particles > 1:
                ax_r.errorbar(x, [p["result"]["pair_distance"]["mean"] for p in line],
                              yerr=[p["result"]["pair_distance"]["error"] for p in line], fmt="o-", color=color,
                              capsize=2, label=name or "<r_12>")
    axes = [ax] + ([ax_r] if ax_r is not None else [])
    numeric = all(isinstance(p["spec"].value(key), (int, float)) and not isinstance(p["spec"].value(key), bool)
                  for p in points)
    for a in axes:
        if numeric:
            vals = [p["spec"].value(key) for p in points]
            if min(vals) > 0 and max(vals) / min(vals) >= 50:
                a.set_xscale("log")
        a.set_xlabel(UNITS.get(key, key))
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=7)
    if ax_r is not None:
        ax_r.set_ylabel("mean pair distance <r_12> (Bohr)")
        ax_r.set_title(f"<r_12> versus {key}")
    ax.set_title(f"{quantity} versus {key}")
    _save(fig, out)


def figure_density(points, out):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    # same colour for points that differ only in the interaction; solid with, dashed without it
    def base(label):
        return ",".join(part for part in label.split(",") if not part.startswith("system.interaction=")) or "run"
    colours = {}
    for p in points:
        if p["r"] is None:
            continue
        inter = p["spec"].system.interaction
        key = base(p["label"])
        colour = colours.setdefault(key, f"C{len(colours) % 10}")
        ax.plot(p["r"], p["density"], "-" if inter else "--", color=colour,
                label=f"{key} ({'interacting' if inter else 'non-interacting'})")
    ax.set_xlabel("r (Bohr)")
    ax.set_ylabel("radial one-body density rho(r) (Bohr^-D)")
    ax.set_title("one-body density (integral rho d^D r = P)")
    if len(points) <= 12:
        ax.legend(fontsize=7)
    _save(fig, out)


def figure_dmc(points, out):
    """Energy (and trial energy) and population per DMC step of every point with DMC."""
    plt = _plt()
    fig, (ax, ax_p) = plt.subplots(1, 2, figsize=(12, 4.2))
    for i, p in enumerate(q for q in points if "dmc" in q["result"]):
        d, color = p["result"]["dmc"], f"C{i % 10}"
        e = np.asarray(d["trace"])
        steps = np.arange(e.size)
        ax.plot(steps, e, lw=0.4, color=color, alpha=0.7, label=f"{p['label']}: E per step")
        if "mean" in d:
            ax.axhline(d["mean"], color=color, ls="--", lw=0.8)
        ax.axvline(d["discarded"], color=color, ls=":", lw=0.8)
        ax_p.plot(steps, np.asarray(d["population_trace"]), lw=0.5, color=color, label=p["label"])
        ax_p.axhline(d["walkers"], color="k", lw=0.6)
        ref = d.get("reference")
    if points and ref is not None:
        ax.axhline(ref, color="k", ls="-", lw=0.8, label=f"reference {ref}")
    tails = [np.asarray(q["result"]["dmc"]["trace"])[q["result"]["dmc"]["discarded"]:] for q in points
             if "dmc" in q["result"]]
    if tails:
        lo, hi = min(np.percentile(t, 0.5) for t in tails), max(np.percentile(t, 99.5) for t in tails)
        pad = 0.3 * (hi - lo) or 1e-3
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_xlabel("DMC step (dotted: end of the discarded equilibration)")
    ax.set_ylabel("mixed estimate of E per step (Hartree)")
    ax.set_title("DMC energy per step (dashed: mean)")
    ax_p.set_xlabel("DMC step")
    ax_p.set_ylabel("total weight W (target: black line)")
    ax_p.set_title("DMC population")
    for a in (ax, ax_p):
        if len(points) <= 8:
            a.legend(fontsize=7)
    _save(fig, out)


def time_step_fit(points) -> dict | None:
    """The tau -> 0 extrapolation of the DMC energies of the points (None without two time steps)."""
    from ..mc.dmc import extrapolate
    pts = [p for p in points if "mean" in p["result"].get("dmc", {})]
    taus = sorted({p["result"]["dmc"]["time_step"] for p in pts})
    if len(taus) < 2 or len(taus) != len(pts):
        return None
    pts.sort(key=lambda p: p["result"]["dmc"]["time_step"])
    fit = extrapolate([p["result"]["dmc"]["time_step"] for p in pts], [p["result"]["dmc"]["mean"] for p in pts],
                      [p["result"]["dmc"]["error"] for p in pts])
    fit["points"] = pts
    return fit


def figure_time_step(fit, out):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    pts = fit["points"]
    t = np.array([p["result"]["dmc"]["time_step"] for p in pts])
    ax.errorbar(t, [p["result"]["dmc"]["mean"] for p in pts], yerr=[p["result"]["dmc"]["error"] for p in pts],
                fmt="o", capsize=3, label="DMC")
    grid = np.linspace(0.0, t.max() * 1.05, 100)
    ax.plot(grid, np.polyval(fit["coefficients"][::-1], grid), "-", lw=1,
            label=f"{'linear' if fit['order'] == 1 else 'quadratic'} fit")
    ax.errorbar([0.0], [fit["e0"]], yerr=[fit["error"]], fmt="s", color="C3", capsize=3,
                label=f"tau -> 0: {fit['e0']:.6f} +- {fit['error']:.6f}")
    ref = pts[0]["result"]["dmc"].get("reference")
    if ref is not None:
        ax.axhline(ref, color="k", ls="--", lw=0.8, label=f"reference {ref}")
    ax.set_xlabel("DMC time step tau")
    ax.set_ylabel("DMC energy (Hartree)")
    ax.set_title("time-step extrapolation")
    ax.legend(fontsize=7)
    _save(fig, out)


def dmc_table(points) -> str:
    rows = ["| point | tau | walkers | E_DMC (Hartree) | error | steps measured (discarded) | <T> mixed | "
            "<V_trap> mixed | <V_int> mixed | population mean [min, max] | tau_eff | wall time (s) | reference | "
            "(E - ref)/error |", "|" + "---|" * 14]
    for p in points:
        d = p["result"].get("dmc")
        if not d or "mean" not in d:
            continue
        ref = d.get("reference")
        dev = f"{(d['mean'] - ref) / d['error']:+.1f}" if ref is not None and d["error"] > 0 else "–"
        pop = d["population"]
        rows.append("| " + " | ".join([
            p["label"], f"{d['time_step']:g}", str(d["walkers"]), _fmt(d["mean"]), _fmt(d["error"]),
            f"{d['measured']} ({d['discarded']})", *(_fmt(d[t]["mean"], 5) for t in TERM_NAMES),
            f"{pop['mean']:.1f} [{pop['min']:.1f}, {pop['max']:.1f}]", f"{d['tau_eff']['mean']:.5g}",
            f"{d['wall_seconds']:.0f}", "–" if ref is None else f"{ref} ({d['reference_kind']})", dev]) + " |")
    return "\n".join(rows)


def _fmt(x, digits=6):
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    return f"{x:.{digits}f}"


def table(points) -> str:
    parts = " | ".join(SYMBOLS[t] for t in TERM_NAMES)
    head = (f"| point | E (Hartree) | error | variance | acceptance | {parts} | <r_12> (Bohr) "
            "| samples/s | efficiency 1/(err^2 CPU s) | reference | (E - ref)/error |")
    rows = [head, "|" + "---|" * (10 + len(TERM_NAMES))]
    for p in points:
        r = p["result"]
        exact = r.get("reference")
        dev = (r["mean"] - exact) / r["error"] if exact is not None and r["error"] > 0 else None
        rows.append("| " + " | ".join([
            p["label"], _fmt(r["mean"]), _fmt(r["error"]), f"{r['variance']:.3g}", f"{r['acceptance']:.3f}",
            *(_fmt(r[t]["mean"], 5) for t in TERM_NAMES),
            _fmt(r["pair_distance"]["mean"], 4) if p["spec"].system.particles > 1 else "–",
            f"{p['samples_per_s']:.3g}", f"{r['efficiency']:.3g}" if np.isfinite(r["efficiency"]) else "–",
            "–" if exact is None else f"{exact} ({r['reference_kind']})",
            "–" if dev is None else f"{dev:+.1f}"]) + " |")
    return "\n".join(rows)


def write_report(path: str, out_dir: str | None = None, title: str | None = None) -> str:
    """Write report.md and its figures into out_dir (default: <file stem>_report); returns the .md path."""
    info, points = collect(path)
    out_dir = out_dir or os.path.splitext(path)[0] + "_report"
    os.makedirs(out_dir, exist_ok=True)
    keys = swept_keys(info, points)
    figures = []

    def add(name, caption, fn, *args):
        fn(*args, os.path.join(out_dir, name))
        figures.append((name, caption))

    add("energy_history.png", "Energy per optimization iteration (mean over all walkers).", figure_history, points)
    for key in keys:
        slug = key.replace(".", "_")
        add(f"energy_vs_{slug}.png", f"Final energy with blocked error bars versus `{key}`.",
            lambda p, o, k=key: figure_vs(p, k, keys, o, "energy"), points)
        add(f"parts_vs_{slug}.png", f"<T>, <V_trap>, <V_int> and <r_12> versus `{key}`.",
            lambda p, o, k=key: figure_vs(p, k, keys, o, "parts"), points)
        if key in ACCEPTANCE_KEYS:
            add(f"acceptance_vs_{slug}.png", f"Acceptance versus `{key}`.",
                lambda p, o, k=key: figure_vs(p, k, keys, o, "acceptance"), points)
    add("density.png", "Radial one-body density of each point.", figure_density, points)
    has_dmc = any("mean" in p["result"].get("dmc", {}) for p in points)
    fit = time_step_fit(points) if has_dmc else None
    if has_dmc:
        add("dmc.png", "DMC energy (mixed estimate) and population per step.", figure_dmc, points)
    if fit is not None:
        add("dmc_time_step.png", "DMC energy versus time step with the fit extrapolated to tau -> 0.",
            figure_time_step, fit)

    name = title or os.path.basename(path)
    lines = [f"# Report: {name}", "",
             f"Produced by vmc {__version__} from `{path}` on {datetime.date.today()} "
             f"({platform.node()}, {platform.processor() or platform.machine()}).",
             f"Run: started {info.get('started')}, finished {info.get('finished')}, host {info.get('host')}, "
             f"{info.get('n_ranks')} MPI ranks; command `{info.get('command')}`.", "",
             "Energies in Hartree, lengths in Bohr; errors are automated-blocking errors of the production run.",
             ""]
    if keys:
        lines += ["Swept options: " + ", ".join(f"`{k}`" for k in keys) + ".", ""]
    lines += [table(points), ""]
    if has_dmc:
        lines += ["Fixed-node DMC (mixed estimates; error: automated blocking of the per-step energies after the "
                  "discarded equilibration):", "", dmc_table(points), ""]
    if fit is not None:
        lines += [f"Time-step extrapolation ({'linear' if fit['order'] == 1 else 'quadratic'} fit, chi^2 = "
                  f"{fit['chi2']:.2f} for {fit['dof']} degrees of freedom): **E(tau -> 0) = {fit['e0']:.6f} +- "
                  f"{fit['error']:.6f}**.", ""]
    for fig, caption in figures:
        lines += [f"![{caption}]({fig})", "", caption, ""]
    md = os.path.join(out_dir, "report.md")
    with open(md, "w") as fh:
        fh.write("\n".join(lines))
    return md
