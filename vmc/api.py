"""The Python API: run, load and analyse from a notebook or a script, through the same code as the CLI.

    >>> import vmc
    >>> run = vmc.run({"system": {"particles": 2, "dimensions": 2}}, output="two.h5")   # doctest: +SKIP
    >>> run.energy, run.error                                                          # doctest: +SKIP
    (3.0655..., 0.0019...)
    >>> print(run.summary())                   # the block `vmc run` prints             # doctest: +SKIP
    >>> points = vmc.load("runs/studies/omega.h5")   # a study: one Run per point       # doctest: +SKIP
    >>> [(p.swept["system.omega"], p.energy) for p in points]                           # doctest: +SKIP

`vmc.run` is `vmc run` (the front door `vmc.drivers.job`: `plan`, then `execute`): the same planning and checks
before any work, the same file,
the same numbers for the same seed and ranks; under `mpiexec` the ranks cooperate exactly as the CLI's
do. It never exits the interpreter: bad input raises `vmc.InputError` with the CLI's one-line message, a
failed run `vmc.RunError` / `vmc.NumericalError`, a signal `vmc.Interrupted` (the file is checkpointed
and `vmc.run(resume=path)` continues it). `vmc.load` reads a run or study file without running anything;
`Run` holds what people use, with plain names.
"""
from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from .errors import InputError, RunError


def run(input: str | os.PathLike | Mapping | None = None, *, output: str | os.PathLike | None = None,
        overrides: Mapping[str, Any] | None = None, resume: str | os.PathLike | None = None, force: bool = False,
        progress: bool | None = None) -> "Run | list[Run]":
    """Run an input and return its result (`Run`, or one per point for an input with a [sweep]).

    input: a TOML file path, TOML text, or a nested dict as the TOML would parse; overrides: dotted keys
    (`{"optimizer.learning_rate": 0.01}`, as `--set`); output: the HDF5 file (default as the CLI:
    the input's `output` option, else runs/<input name>.h5, runs/run.h5 for text or a dict); resume: an
    unfinished (or interrupted) output file to continue instead of `input`; force: overwrite `output`;
    progress: progress bars (default: only when stderr is a terminal or a notebook).
    """
    from .input import config as config_mod
    from .drivers import job

    output, resume = _path_argument("output", output), _path_argument("resume", resume)
    if overrides is not None and not isinstance(overrides, Mapping):
        raise InputError(f"vmc.run: overrides must be a mapping of dotted keys to values, e.g. "
                         f"{{\"optimizer.iterations\": 100}} (got {type(overrides).__name__})", everywhere=True)
    parsed = path = None
    if input is not None:
        try:
            if isinstance(input, Mapping):
                parsed = config_mod.from_dict(input)
            elif isinstance(input, os.PathLike) or (isinstance(input, str) and "\n" not in input
                                                     and (os.path.exists(input) or input.endswith(".toml"))):
                path = os.fspath(input)
            elif isinstance(input, str):
                parsed = config_mod.from_text(input)
            else:
                raise InputError(f"vmc.run: input must be a TOML file path, TOML text or a dict (got "
                                 f"{type(input).__name__})", everywhere=True)
        except config_mod.ConfigError as exc:
            raise InputError(str(exc), everywhere=True) from None
    if progress is None:
        progress = sys.stderr.isatty() or "ipykernel" in sys.modules
    request = job.Request(input=path, config=parsed, output=output, resume=resume, overrides=dict(overrides or {}),
                          force=force)
    with job.StopSignals() as stop:
        comm = job.world()
        outcome = job.execute(job.plan(comm, request), comm, stop, progress=progress, echo=False)
    if outcome.failure is not None:
        raise outcome.failure
    if outcome.status != job.EXIT_OK:
        raise RunError(f"{outcome.path}: the run ended with exit code {outcome.status}")
    return load(outcome.path)


def _path_argument(name: str, value) -> str | None:
    """A file argument as a str (None or "" for none); InputError for anything but a str or os.PathLike."""
    if value is None:
        return None
    if not isinstance(value, (str, os.PathLike)):
        raise InputError(f"vmc.run: {name} must be a file path (str or os.PathLike), got {type(value).__name__}",
                         everywhere=True)
    return os.fspath(value) or None


@dataclass
class Run:
    """One run (or one point of a study) as stored in its output file.

    energy, error: the production energy and its automated-blocking error; variance, acceptance;
    parts: {"kinetic": (mean, error), "trap": ..., "interaction": ..., "pair_distance": ...};
    history: the optimization record per iteration (`vmc.output.io.ITERATION_FIELDS`, e.g. history["energy"]);
    params: the final flat parameter vector, named: each factor's parameters in their shapes
    ("rbm.a", "rbm.W", "jastrow.beta", ...); density: (r, n(r)), the radial one-body density;
    reference: (value, "exact" | "DMC") where known; config: the resolved input; label and swept: the
    study point's label and its swept values ({"system.omega": 0.5}); status: complete, running, ...
    """
    path: str
    config: dict
    status: str
    analysis: dict | None               # `vmc.analysis.results.analyze_group` of the production run, None before it
    history: dict
    params: np.ndarray
    named: dict
    density: tuple
    stored_summary: dict = field(default_factory=dict)
    label: str = ""
    swept: dict = field(default_factory=dict)
    group: str = "/"

    def _value(self, key: str) -> float:
        return float(self.analysis[key]) if self.analysis else float("nan")

    energy = property(lambda self: self._value("mean"))
    error = property(lambda self: self._value("error"))
    variance = property(lambda self: self._value("variance"))
    acceptance = property(lambda self: self._value("acceptance"))

    @property
    def parts(self) -> dict:
        from .model.hamiltonian import OBSERVABLE_NAMES
        a = self.analysis or {}
        return {k: (a[k]["mean"], a[k]["error"]) for k in OBSERVABLE_NAMES if k in a}

    @property
    def reference(self) -> tuple | None:
        from .analysis.results import reference_energy
        from .input.spec import Spec
        return reference_energy(Spec.from_dict(self.config))

    @property
    def warnings(self) -> list:
        return list(self.stored_summary.get("warnings", (self.analysis or {}).get("warnings", [])))

    def series(self, name: str = "local_energy") -> np.ndarray:
        """A production series (walkers, steps) read from the file: local_energy or an observable; bytes
        damaged since `load` (a failing checksum) raise InputError, one line."""
        from .output.io import OutputError, done, open_for_reading
        try:
            with open_for_reading(self.path) as f:
                prod = f[self.group]["production"]
                return prod[name][:, :done(f[self.group], "production")]
        except OutputError as exc:
            raise InputError(str(exc)) from None
        except OSError as exc:
            raise InputError(f"{self.path}: damaged: dataset {self.group.rstrip('/')}/production/{name} cannot be "
                             f"read ({str(exc).splitlines()[0]})") from None

    def analyze(self, name: str = "local_energy") -> dict:
        """The blocking analysis of a production series (see `vmc.analyze`)."""
        return analyze(self.series(name))

    def summary(self) -> str:
        """The block `vmc run` printed at the end of this run."""
        from .analysis.results import summary_text
        from .input.spec import Spec
        if self.analysis is None:
            return f"{self.path}: status {self.status}, no production result yet"
        spec = Spec.from_dict(self.config)
        return summary_text({**self.analysis, **self.stored_summary}, spec, self.path).strip("\n")

    def __repr__(self) -> str:
        where = f"{self.path} [{self.label}]" if self.label else self.path
        if self.analysis is None:
            return f"Run({where}, status {self.status})"
        return f"Run({where}, E = {self.energy:.6f} +- {self.error:.6f}, status {self.status})"


def load(path: str | os.PathLike) -> "Run | list[Run]":
    """A run file as a `Run`, a study file as a list of `Run` (one per point, with `label` and `swept`)."""
    from .analysis import results as analysis_mod
    from .output.io import FORMAT, STUDY_FORMAT, reading
    if not isinstance(path, (str, os.PathLike)):
        raise InputError(f"vmc.load: path must be a file path (str or os.PathLike), got {type(path).__name__}")
    path = os.fspath(path)
    try:
        with reading(path, InputError) as f:
            kind = f.attrs.get("format")
            if kind == STUDY_FORMAT:     # the stored sweep has dotted keys (`Config.to_dict`)
                swept = tuple(k for k in json.loads(f.attrs["config"]).get("sweep") or {} if k != "zip")
                return [_read_run(path, f["points"][k], f"/points/{k}", swept) for k in sorted(f["points"])]
            if kind != FORMAT:
                raise InputError(f"{path}: not a vmc output file (format {kind!r})")
            return _read_run(path, f, "/", ())
    except analysis_mod.AnalysisError as exc:
        raise InputError(str(exc)) from None


def _read_run(path: str, g, name: str, swept_keys) -> Run:
    from .analysis.results import analyze_group
    from .input.spec import Spec
    from .output.io import ITERATION_FIELDS, attr_text, done, history
    cfg = json.loads(g.attrs["config"])
    spec = Spec.from_dict(cfg)
    status = attr_text(g, "status")
    prod = g["production"]
    # a finished run is analysed (and refused) exactly as `vmc analyze` does; an unfinished one once it has data
    analysis = analyze_group(g, path) if status == "complete" or done(g, "production") >= 2 else None
    stored = json.loads(attr_text(g, "summary")) if attr_text(g, "summary") else {}
    wf = g["wavefunction"]
    named = {}
    wf.visititems(lambda k, obj: named.__setitem__(k.replace("/", "."), obj[...])
                  if hasattr(obj, "shape") and k != "params" else None)
    dens = prod["density"]
    return Run(path=path, config=cfg, status=status, analysis=analysis,
               history={k: history(g, k) for k in ITERATION_FIELDS + ("params",)},
               params=wf["params"][...], named=named, density=(dens["r"][...], dens["density"][...]),
               stored_summary=stored, label=str(g.attrs.get("label", "")),
               swept={k: spec.value(k) for k in swept_keys}, group=name)


def analyze(data, *, name: str = "local_energy") -> dict | list:
    """The analysis `vmc analyze` prints: for an array ((steps,) or (chains, steps)) the automated-blocking
    result (mean, error, naive_error, tau, rhat, warnings, ...); for a file path the analysis of the run
    (energy and parts with errors, acceptance, virial ratio, efficiency), a list for a study; for a `Run`
    its series `name`.
    """
    from .analysis import results as analysis_mod
    try:
        if isinstance(data, Run):
            return data.analyze(name)
        if isinstance(data, (str, os.PathLike)):
            result = analysis_mod.analyze_path(os.fspath(data))
            return result["points"] if "points" in result else result
        return analysis_mod.analyze_series(np.asarray(data, dtype=float))
    except analysis_mod.AnalysisError as exc:
        raise InputError(str(exc)) from None
