"""Analysis of a run's production series: blocked error bars for the energy and its parts.

`analyze_group` is the one code path behind both the summary `vmc run` prints and `vmc analyze`.
The production layout it reads (`/production/local_energy`, `kinetic`, `trap`, `interaction`,
each chains x steps, with attribute `steps_done`) is documented in the README; `analyze_path` also
accepts a plain `.npy` file or a text column of numbers (one series, or one chain per column).
"""
from __future__ import annotations

import json
import math
import os
import warnings

import numpy as np

from ..input.spec import Spec
from ..model.hamiltonian import OBSERVABLE_NAMES, TERM_NAMES
from ..output.paths import not_regular
from . import blocking

PARTS = TERM_NAMES   # the energy parts, analysed like E_L
PC_SPAN = 1000   # DMC steps over which the population-control factors are undone (UNR's T_p)
ACCEPTANCE_BAND = (0.05, 0.999)   # Metropolis / importance acceptance outside it: a warning
# The DMC guard (`dmc_verdict`): a DMC energy is untrusted when its measured steps span less imaginary time
# than DMC_MIN_SPAN / omega, hold fewer than DMC_MIN_INDEPENDENT autocorrelation times, or lie more than
# DMC_FLOOR_SIGMAS error bars below the lowest energy the Hamiltonian allows.
DMC_MIN_SPAN = 5.0
DMC_MIN_INDEPENDENT = 10.0
DMC_FLOOR_SIGMAS = 5.0


class AnalysisError(Exception):
    """Input that cannot be analysed; str() is one line for the user."""


# Two electrons in 2D (singlet), exact: Taut, Phys. Rev. A 48, 3561 (1993) and J. Phys. A 27, 1045 (1994)
# for omega = 1 and 0.5 analytically; other omega from the numerically solved relative-motion equation.
TWO_ELECTRONS_2D = {1.0: 3.0, 0.5: 1.6597722, 0.28: 1.0216440, 0.1: 0.4407919, 0.05: 0.2540494, 0.01: 0.0738350}
# Closed-shell diffusion Monte Carlo energies (D, P) -> {omega: E}: S. Hogberget, MSc thesis, University
# of Oslo (2013), as tabulated in E. M. Nordhagen, MSc thesis, University of Oslo (2019).
CLOSED_SHELL_DMC = {
    (2, 6): {1.0: 20.15932, 0.5: 11.78484, 0.28: 7.60019, 0.1: 3.55385},
    (2, 12): {1.0: 65.7001, 0.5: 39.1596, 0.28: 25.63577, 0.1: 12.26984},
    (2, 20): {1.0: 155.8822, 0.5: 93.8752, 0.28: 61.9268, 0.1: 29.9779},
    (2, 30): {1.0: 308.5627, 0.5: 187.0426, 0.28: 123.9683, 0.1: 60.4205},
    (2, 56): {1.0: 879.3986, 0.5: 537.353, 0.28: 358.145, 0.1: 175.9553},
    (3, 8): {1.0: 32.6680, 0.5: 18.9611},
    (3, 20): {1.0: 142.8875, 0.5: 85.6555},
}


def reference_energy(spec: Spec) -> tuple[float, str] | None:
    """(E, kind) of the best known ground-state energy, kind "exact" or "DMC"; None if unknown.

    Without interaction (or for one particle): P D omega / 2 for bosons, the closed-shell sum
    2 sum (n + D/2) omega for fermions. Two interacting electrons in 2D: `TWO_ELECTRONS_2D`;
    closed shells: `CLOSED_SHELL_DMC`.

    >>> reference_energy(Spec.from_dict({"system": {"particles": 2, "dimensions": 2, "omega": 0.5}}))
    (1.6597722, 'exact')
    """
    s = spec.system
    P, D, omega = s.particles, s.dimensions, float(s.omega)
    fermions = s.statistics == "fermion"
    if not s.interaction or P == 1:
        if fermions and P > 2:
            from ..model.factors.slater import closed_shell_energy
            return closed_shell_energy(P, D, omega), "exact"
        return 0.5 * P * D * omega, "exact"
    if fermions and P == 2 and D == 2 and omega in TWO_ELECTRONS_2D:
        return TWO_ELECTRONS_2D[omega], "exact"
    if fermions and omega in CLOSED_SHELL_DMC.get((D, P), {}):
        return CLOSED_SHELL_DMC[(D, P)][omega], "DMC"
    return None


def energy_lower_bound(spec: Spec) -> float:
    """The lowest energy H allows: the non-interacting ground state (Coulomb repulsion is positive)."""
    return reference_energy(spec.with_section("system", interaction=False))[0]


def analyze_series(chains: np.ndarray) -> dict:
    """Blocking analysis of one observable given as (n_chains, n_steps) or a 1D series."""
    chains = np.asarray(chains, dtype=float)
    if chains.ndim == 1:
        chains = chains[None, :]
    if chains.size == 0:
        raise AnalysisError("the series is empty")
    bad = int(np.count_nonzero(~np.isfinite(chains)))
    if bad:
        raise AnalysisError(f"the series contains {bad} non-finite values (NaN or inf)")
    try:
        r = blocking.analyze(chains)
    except ValueError as exc:
        raise AnalysisError(str(exc)) from None
    return {"mean": r.mean, "error": r.error, "naive_error": r.naive_error, "variance": r.variance,
            "tau": r.tau, "n_samples": r.n_samples, "n_chains": r.n_chains, "level": r.level,
            "r_hat": r.r_hat, "warnings": list(r.warnings), "curve": np.asarray(r.curve).tolist(),
            "trace": chains.mean(axis=0)}    # the walker-averaged series, for plots (not in JSON)


def analyze_group(group, name: str | None = None) -> dict:
    """Energy and parts with blocked errors, acceptance, virial ratio and efficiency of a run group."""
    name = name or group.file.filename
    if "production" not in group or "local_energy" not in group["production"]:
        raise AnalysisError(f"{name}: no /production/local_energy dataset (is this a vmc run file?)")
    from ..output.io import done as steps_done
    prod = group["production"]
    done = steps_done(group, "production")
    if done < 2:
        raise AnalysisError(f"{name}: the production phase holds {done} steps, too few to analyse")
    series = {key: prod[key][:, :done] for key in ("local_energy",) + OBSERVABLE_NAMES if key in prod}
    try:
        result = analyze_series(series["local_energy"])
    except AnalysisError as exc:
        raise AnalysisError(f"{name}: {exc}") from None
    for part in OBSERVABLE_NAMES:
        if part in series:
            r = analyze_series(series[part])
            result[part] = {"mean": r["mean"], "error": r["error"]}
    check_production(series, name)
    result["acceptance"] = acc = float(prod.attrs.get("acceptance", float("nan")))
    sampler = str(prod.attrs.get("sampler", ""))
    if sampler != "gibbs" and math.isfinite(acc) and not ACCEPTANCE_BAND[0] <= acc <= ACCEPTANCE_BAND[1]:
        result["warnings"].append(f"acceptance {acc:.4f} of the {sampler or 'Metropolis'} sampler is outside "
                                  f"[{ACCEPTANCE_BAND[0]}, {ACCEPTANCE_BAND[1]}]: the chains barely move; tune "
                                  "sampler.step or sampler.dt")
    cpu = float(prod.attrs.get("cpu_seconds", 0.0))
    result["cpu_seconds"] = cpu
    # QMCPACK's figure of merit: 1 / (error^2 * CPU time)
    # (the CPU time is recorded when the production ends: none for an unfinished run)
    result["efficiency"] = 1.0 / (result["error"] ** 2 * cpu) if cpu > 0 and result["error"] > 0 else float("nan")
    if "trap" in result and "kinetic" in result:
        result["virial_ratio"] = result["kinetic"]["mean"] / result["trap"]["mean"]
    if "dmc" in group and steps_done(group, "dmc") > 0:
        result["dmc"] = analyze_dmc(group, name)
    if "config" in group.attrs:
        spec = Spec.from_dict(json.loads(group.attrs["config"]))
        ref = reference_energy(spec)
        result["reference"], result["reference_kind"] = ref if ref else (None, None)
        result["interacting"] = bool(spec.system.interaction)
    return result


# Production observables that cannot be negative (the trap and Coulomb energies, distances)
NON_NEGATIVE = ("trap", "interaction", "pair_distance")
SUM_RTOL = 1e-12   # |E_L - (kinetic + trap + interaction)| allowed, relative to |kinetic| + |trap| + |interaction|


def check_production(series: dict, name: str) -> None:
    """Physical consistency of the production series (walkers, steps), free given the arrays: E_L is
    stored as the sum of its parts, so it equals kinetic + trap + interaction to rounding, and the
    `NON_NEGATIVE` observables are >= 0. A violation means damaged data: AnalysisError, one line."""
    parts = [series[p] for p in PARTS if p in series]
    if len(parts) == len(PARTS):
        deviation = np.abs(series["local_energy"] - sum(parts[1:], start=parts[0]))
        scale = sum(np.abs(p) for p in parts)
        bad = deviation > SUM_RTOL * scale
        if bad.any():
            worst = float(np.max(deviation[bad] / np.maximum(scale[bad], 1e-300)))
            raise AnalysisError(f"{name}: damaged: /production/local_energy differs from "
                                f"{' + '.join(PARTS)} at {int(bad.sum())} samples (largest relative "
                                f"difference {worst:.2g}; they are stored equal)")
    for key in NON_NEGATIVE:
        if key in series:
            _check_non_negative(series[key], f"{name}: damaged: /production/{key}")


def _check_non_negative(values: np.ndarray, what: str, strict: bool = False) -> None:
    bad = values <= 0 if strict else values < 0
    if bad.any():
        raise AnalysisError(f"{what} holds {int(bad.sum())} {'non-positive' if strict else 'negative'} values "
                            f"(smallest {float(values.min()):.6g}); it is {'> 0' if strict else '>= 0'} by "
                            "construction")


def check_dmc(d, done: int, name: str) -> None:
    """Cheap consistency checks of the /dmc series (first `done` steps): the population is positive,
    the mixed estimates of the `NON_NEGATIVE` observables are >= 0; AnalysisError, one line."""
    _check_non_negative(d["population"][:done], f"{name}: damaged: /dmc/population", strict=True)
    for key in NON_NEGATIVE:
        if key in d:
            _check_non_negative(d[key][:done], f"{name}: damaged: /dmc/{key}")


def analyze_dmc(group, name: str = "") -> dict:
    """The DMC energy of a run group's /dmc series: the steps before `equilibration`, and any further
    equilibration the MSER rule detects (`vmc.mc.dmc.mser`), are discarded; the rest (one correlated series of
    mixed estimates per step) gets the error of Wolff's autocorrelation (Gamma) method, `blocking.gamma_method`:
    a DMC series is only 30-50 correlation times long, too short for blocking's plateau, whose error
    (`blocked_error`, kept for comparison) was measured 23 % low there (benchmarks/bench_dmc_coverage.py).
    tau is the integrated autocorrelation time in steps, window the lags summed. Also the parts (mixed
    estimates, same method), the mean trial energy, population and tau_eff, the acceptance, and the reference
    with the deviation.
    "failures" lists what makes the energy untrustworthy (`dmc_verdict`; empty when it passes)."""
    from ..mc.dmc import mser, population_control_weights
    from ..output.io import done as steps_done
    d = group["dmc"]
    done, eq = steps_done(group, "dmc"), int(d.attrs.get("equilibration", 0))
    out = {"steps_done": done, "equilibration": eq, "time_step": float(d.attrs.get("time_step", math.nan)),
           "walkers": int(d.attrs["walkers"]), "wall_seconds": float(d.attrs.get("wall_seconds", 0.0)),
           "cpu_seconds": float(d.attrs.get("cpu_seconds", 0.0)),
           "acceptance": float(d.attrs.get("acceptance", math.nan)),
           "node_crossings": float(d.attrs.get("node_crossings", 0.0))}
    check_dmc(d, done, name)
    energy = d["energy"][:done]
    skip = eq + (mser(energy[eq:]) if done - eq >= 16 else 0)
    out["discarded"] = skip
    spec = Spec.from_dict(json.loads(group.attrs["config"])) if "config" in group.attrs else None
    if spec is not None:
        out["omega"], out["lower_bound"] = float(spec.system.omega), energy_lower_bound(spec)
    if done - skip < blocking.MIN_SAMPLES:
        out["warnings"] = [f"{name}: DMC holds {done - skip} measured steps after equilibration, too few to analyse"]
        out["failures"] = dmc_verdict(out)
        return out
    r = analyze_series(energy[skip:])
    out.update({k: r[k] for k in ("mean", "naive_error", "variance", "n_samples", "level")})
    g = blocking.gamma_method(energy[skip:])
    out.update(error=g.error, tau=g.tau, window=g.window, blocked_error=r["error"])
    out["warnings"] = [w for w in r["warnings"] if not w.startswith("convergence")]
    out["measured"] = done - skip
    # the population-control bias (UNR): the estimate with the trial-energy factors of the last
    # PC_SPAN steps undone; its error is the blocked error of the weighted deviations
    span = min(PC_SPAN, done - skip)
    weights = population_control_weights(d["trial_energy"][skip:done], d["population"][skip:done],
                                         d["tau_eff"][skip:done], span)
    e_pc = float(np.sum(weights * energy[skip:]) / np.sum(weights))
    pc = blocking.gamma_method(weights * (energy[skip:] - e_pc) / weights.mean())
    out["population_corrected"] = {"mean": e_pc, "error": pc.error, "span": span}
    for part in OBSERVABLE_NAMES:
        pr = blocking.gamma_method(d[part][skip:done])
        out[part] = {"mean": pr.mean, "error": pr.error}
    for key in ("trial_energy", "population", "effective_walkers", "tau_eff"):
        series = d[key][skip:done]
        out[key] = {"mean": float(series.mean()), "min": float(series.min()), "max": float(series.max())}
    out["trace"] = energy
    out["population_trace"] = d["population"][:done]
    if spec is not None:
        ref = reference_energy(spec)
        out["reference"], out["reference_kind"] = ref if ref else (None, None)
    out["failures"] = dmc_verdict(out)
    return out


def dmc_verdict(d: dict) -> list[str]:
    """The problems that make a DMC energy (`analyze_dmc`'s result) untrustworthy; [] when it passes.

    With n measured steps, tau_int their integrated autocorrelation time in steps (`analyze_dmc`'s tau),
    tau_eff the mean effective time step, omega the trap frequency and E_0 the lowest energy H allows (the
    non-interacting ground state: the Coulomb term is positive, and the fixed-node energy is an upper
    bound to the exact one), the energy fails when

    1. n tau_eff omega < DMC_MIN_SPAN (5): the measured series spans less than 5 / omega of imaginary time.
       The slowest motion in the trap, the centre of mass (gap omega, by Kohn's theorem for any
       interaction), decorrelates on 1/omega, so such a series holds at most a few independent samples
       whatever its autocorrelation says: a series only sees correlations shorter than itself and then
       gets an error bar that is too small by sqrt(true / apparent correlation time) (tau = 1e-6:
       E = 3.1134 +- 0.0015 for the exact 3, 73 error bars off). Ordinary runs span 10-60 / omega
       (600 x 0.02 to 6000 x 0.01).
    2. n / tau_int < DMC_MIN_INDEPENDENT (10): fewer than 10 effectively independent samples, no plateau
       (the error bar is then uncertain by more than +-35 %, `blocking.gamma_method`'s tau_error, and
       biased low). Ordinary runs hold 15 (545 x 0.02, the tests) to 30-50 (3000-4000 x 0.01).
    3. E < E_0 - DMC_FLOOR_SIGMAS error (5): impossible for any correct run (a blown-up population or a
       broken trial state).
    4. no energy at all (too few measured steps after the discarded equilibration).

    >>> ok = {"mean": 3.001, "error": 0.002, "measured": 4000, "tau": 60.0, "tau_eff": {"mean": 0.0099},
    ...       "omega": 1.0, "lower_bound": 2.0}
    >>> dmc_verdict(ok)
    []
    >>> [p.split(":")[0] for p in dmc_verdict(dict(ok, tau_eff={"mean": 1e-6}, tau=500.0, mean=1.9))]
    ['too short in imaginary time', 'too few independent samples', 'below the lowest energy H allows']
    """
    if "mean" not in d:
        return ["no DMC energy: too few measured steps after the equilibration"]
    problems = []
    n, tau_eff, omega = d["measured"], d["tau_eff"]["mean"], d.get("omega")
    if omega is not None and n * tau_eff * omega < DMC_MIN_SPAN:
        problems.append(f"too short in imaginary time: {n} steps x tau_eff {tau_eff:.3g} = {n * tau_eff:.3g}, "
                        f"below {DMC_MIN_SPAN:g} / omega = {DMC_MIN_SPAN / omega:.3g}; the walkers cannot have "
                        "decorrelated and the error bar is meaningless (more dmc.steps or a larger dmc.time_step)")
    independent = n / d["tau"] if d["tau"] > 0 else math.inf
    if independent < DMC_MIN_INDEPENDENT:
        problems.append(f"too few independent samples: {n} steps / correlation time {d['tau']:.1f} = "
                        f"{independent:.1f} < {DMC_MIN_INDEPENDENT:g}; no plateau, the error bar is meaningless "
                        "(more dmc.steps: `vmc run --resume FILE --set dmc.steps=N` continues this run)")
    floor = d.get("lower_bound")
    if floor is not None and d["mean"] < floor - DMC_FLOOR_SIGMAS * d["error"]:
        problems.append(f"below the lowest energy H allows: E_DMC = {d['mean']:.6g} < {floor:.6g} (the "
                        "non-interacting ground state) by more than "
                        f"{DMC_FLOOR_SIGMAS:g} error bars; the population or the trial state broke down")
    return problems


def run_groups(f) -> list[tuple[str, object]]:
    """(label, group) of every run in an output file: the root of a run file, each point of a study."""
    from ..output.io import FORMAT, STUDY_FORMAT
    kind = f.attrs.get("format")
    if kind == STUDY_FORMAT:
        points = f.get("points", {})
        return [(points[k].attrs.get("label", k), points[k]) for k in sorted(points)]
    if kind == FORMAT or "production" in f:
        return [("", f)]
    return []


def analyze_path(path: str) -> dict:
    """Analyse an HDF5 run or study file, a .npy array or a text column of numbers.

    A study gives {"points": [{"label": ..., **result}, ...]}; anything else one result.
    """
    if not os.path.exists(path):
        raise AnalysisError(f"{path}: no such file")
    problem = not_regular(path, "input file")
    if problem:
        raise AnalysisError(problem)
    ext = os.path.splitext(path)[1].lower()
    if ext in (".h5", ".hdf5", ".hdf"):
        from ..output.io import attr_text, reading, unfinished
        with reading(path, AnalysisError, "damaged or incomplete HDF5 file") as f:
            groups = run_groups(f)
            if len(groups) == 1 and groups[0][0] == "":
                result = analyze_group(f, path)
                note = unfinished(f)
                if note:
                    result["unfinished"] = note
                return result
            if not groups:
                raise AnalysisError(f"{path}: no /production/local_energy dataset (is this a vmc run file?)")
            points = []
            for label, g in groups:
                if attr_text(g, "status") != "complete":
                    continue
                points.append({"label": label, **analyze_group(g, f"{path} [{label}]")})
            if not points:
                raise AnalysisError(f"{path}: no completed point in this study yet")
            return {"points": points}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")   # loadtxt warns on an empty file; we say it below
            data = np.load(path) if ext == ".npy" else np.loadtxt(path, ndmin=1)
        data = np.asarray(data, dtype=float)
    except (ValueError, OSError) as exc:
        raise AnalysisError(f"{path}: cannot read numbers ({str(exc).splitlines()[0]})") from None
    try:
        # a text file holds one chain per column; a .npy array is (chains, steps) like the HDF5 series
        return analyze_series(data.T if data.ndim == 2 and ext != ".npy" else data)
    except AnalysisError as exc:
        raise AnalysisError(f"{path}: {exc}") from None


def to_json(result: dict) -> dict:
    """A JSON-ready copy: numpy scalars to Python numbers, non-finite to null, no series."""
    def clean(v):
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k not in ("trace", "population_trace")}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (np.floating, float)):
            return None if not math.isfinite(v) else float(v)
        if isinstance(v, np.integer):
            return int(v)
        return v
    return clean(result)


def format_table(result: dict, name: str = "") -> str:
    rows = [("energy", result)] + [(p, result[p]) for p in OBSERVABLE_NAMES if p in result]
    lines = [f"{name}" if name else ""] + ([f"warning: {result['unfinished']}"] if result.get("unfinished") else [])
    lines.append(f"{'':<12}{'mean':>14}{'error':>12}")
    for label, r in rows:
        lines.append(f"{label:<12}{r['mean']:>14.7f}{r['error']:>12.7f}")
    lines += [
        f"naive error {result['naive_error']:.3g}, tau = {result['tau']:.2f}, blocking level {result['level']}, "
        f"{result['n_samples']} samples in {result['n_chains']} chains, R-hat = {result['r_hat']:.4f}",
        f"variance of E_L {result['variance']:.6g}",
    ]
    if "acceptance" in result:
        efficiency = (f"{result['efficiency']:.4g}" if math.isfinite(result["efficiency"])
                      else "unknown (no CPU time recorded yet)")
        lines.append(f"acceptance {result['acceptance']:.4f}, efficiency 1/(err^2 CPU s) = {efficiency}")
    if result.get("reference") is not None:
        ref = result["reference"]
        dev = (result["mean"] - ref) / result["error"] if result["error"] > 0 else float("inf")
        lines.append(f"{result['reference_kind']} {ref}: deviation {result['mean'] - ref:+.3g} ({dev:+.1f} error bars)")
    if "virial_ratio" in result and not result.get("interacting", True):
        lines.append(f"virial check <T>/<V_trap> = {result['virial_ratio']:.5f} "
                     "(1 for the exact non-interacting state)")
    lines += [f"warning: {w}" for w in result.get("warnings", [])]
    if "dmc" in result:
        lines += dmc_lines(result["dmc"])
    return "\n".join(lines)


def dmc_lines(d: dict) -> list[str]:
    """The DMC part of `vmc analyze` and of the summary of `vmc run`; loud lines for an energy that fails
    `dmc_verdict`."""
    failed = [f"  FAILED: the DMC energy cannot be trusted: {p}" for p in d.get("failures", [])]
    head = (f"DMC (time step {d['time_step']}, {d['walkers']} walkers): {d['steps_done']} steps, "
            f"{d['discarded']} discarded as equilibration ({d['equilibration']} set)")
    if "mean" not in d:
        return [head] + [f"warning: {w}" for w in d.get("warnings", [])] + failed
    lines = [head, f"  E_DMC = {d['mean']:.6f} +- {d['error']:.6f}  ({d['measured']} steps, autocorrelation time "
                   f"{d['tau']:.1f} steps summed over {d['window']} lags; blocked error {d['blocked_error']:.6f})"
             + (f"   {d['reference_kind']} {d['reference']}: {(d['mean'] - d['reference']) / d['error']:+.1f} "
                "error bars" if d.get("reference") is not None and d["error"] > 0 else ""),
             "  mixed estimates " + "  ".join(f"{p} {d[p]['mean']:.5f}({d[p]['error']:.5f})" for p in OBSERVABLE_NAMES),
             f"  population-control bias: E_DMC with the trial-energy factors of the last "
             f"{d['population_corrected']['span']} steps undone (UNR) = {d['population_corrected']['mean']:.6f} "
             f"+- {d['population_corrected']['error']:.6f}, shift {d['population_corrected']['mean'] - d['mean']:+.6f}",
             f"  E_T {d['trial_energy']['mean']:.6f}   population {d['population']['mean']:.1f} "
             f"[{d['population']['min']:.1f}, {d['population']['max']:.1f}]   effective walkers "
             f"{d['effective_walkers']['mean']:.1f}   acceptance {d['acceptance']:.5f}   tau_eff "
             f"{d['tau_eff']['mean']:.6g}   node crossings rejected {d['node_crossings']:.0f}   "
             f"wall {d['wall_seconds']:.1f} s"]
    return lines + [f"  warning: {w}" for w in d.get("warnings", [])] + failed


def summary_text(summary: dict, spec: Spec, path: str) -> str:
    """The block `vmc run` prints at the end of a run."""
    from ..model.hamiltonian import SYMBOLS
    ref = reference_energy(spec)
    lines = [
        "",
        f"E = {summary['mean']:.6f} +- {summary['error']:.6f}  (blocked error; naive {summary['naive_error']:.6f}, "
        f"tau = {summary['tau']:.1f})" + (f"   {ref[1]}: {ref[0]}" if ref else ""),
        f"variance {summary['variance']:.6g}   acceptance {summary['acceptance']:.3f}   "
        + "  ".join(f"{SYMBOLS[t]} = {summary[t]['mean']:.5f}" for t in TERM_NAMES),
        f"wall time {summary['wall_time']:.1f} s   {summary['samples_per_s']:.3g} samples/s   "
        f"{summary['iterations']} iterations   output {path}",
    ]
    if summary.get("timing"):
        lines.append(f"time: {summary['timing']}")
    lines += [f"warning: {w}" for w in summary.get("warnings", [])]
    if "dmc" in summary:
        lines += dmc_lines(summary["dmc"])
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """Two panels: the Flyvbjerg-Petersen blocking curve with the chosen error, and the
    walker-averaged energy trace with its running mean and the blocked error band."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    curve = np.asarray(result["curve"])
    ax1.plot(np.arange(curve.size), curve, "o-", label="naive error at level k")
    ax1.axhline(result["error"], color="k", ls="--", label=f"blocked error {result['error']:.3g}")
    ax1.axvline(result["level"], color="gray", ls=":", label=f"chosen level {result['level']}")
    ax1.set_xlabel("blocking level k (block length 2^k steps)")
    ax1.set_ylabel("error of the mean (Hartree)")
    ax1.set_title("blocking curve")
    ax1.legend()
    trace = np.asarray(result["trace"])
    steps = np.arange(1, trace.size + 1)
    ax2.plot(steps, trace, lw=0.3, color="C0", alpha=0.6, label="energy (mean over walkers)")
    ax2.plot(steps, np.cumsum(trace) / steps, color="C3", label="running mean")
    ax2.axhspan(result["mean"] - result["error"], result["mean"] + result["error"], color="C3", alpha=0.2,
                label=f"{result['mean']:.5f} +- {result['error']:.5f}")
    if result.get("reference") is not None:
        ax2.axhline(result["reference"], color="k", ls="--", label=f"{result['reference_kind']} {result['reference']}")
    lo, hi = np.percentile(trace, [0.5, 99.5])
    pad = 0.1 * (hi - lo) or 1e-6
    ax2.set_ylim(min(lo, result["mean"]) - pad, max(hi, result["mean"]) + pad)   # rare 1/r spikes clipped
    ax2.set_xlabel("production step")
    ax2.set_ylabel("local energy (Hartree)")
    ax2.set_title("trace")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
