"""The run front door, shared by the command line (`vmc run`) and the Python API (`vmc.run`): `plan` a job
(collective: rank 0 reads and checks everything before any work and shares the outcome, so no rank waits
for another), then `execute` it (create or open the output file, run every point that is not complete).

    request = Request(input="inputs/default.toml", output="runs/x.h5", overrides={"seed": 3})
    with StopSignals() as stop:
        comm = world()
        outcome = execute(plan(comm, request), comm, stop)      # outcome.status: the exit code

Exit codes (the CLI's; `Outcome.status`):

    0  success; also `--resume` of a run that is already complete (nothing is changed)
    1  the run failed: divergence or a non-finite energy, implausible sampling (acceptance 0 or 1), a
       DMC energy that cannot be trusted (`vmc.analysis.results.dmc_verdict`; its summary is stored), a
       write error such as a full disk, ranks out of step, or an internal error. The file keeps every
       completed iteration and production chunk and a checkpoint to `--resume` from.
    2  bad input, found before any work: configuration, files, `--resume` overrides, memory or disk
       the run would need, an output file another run is writing
    3  stopped by SIGTERM, SIGINT or SIGUSR1: the run wrote a checkpoint at the next safe point and
       `--resume` continues it bit for bit
"""
from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Mapping

from ..errors import InputError, Interrupted, NumericalError, RunError
from ..input.spec import Spec
from ..parallel import Comm, one_thread_per_rank
from ..version import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3


class JobError(RunError):
    """A failure every rank knows about (broadcast from rank 0): one line, exit code `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


def world() -> Comm:
    """The job's communicator (`vmc.parallel.world`); a launcher without mpi4py is bad input."""
    from .. import parallel
    try:
        return parallel.world()
    except parallel.ParallelError as exc:
        raise InputError(str(exc)) from None


def on_root(comm, fn, share: bool = True):
    """Run fn on rank 0 and share its result (`share`; else the result stays on rank 0 and the others get
    None); if it raised InputError (or an output error), every rank raises the same error, so no rank
    waits for another."""
    from ..output.io import OutputError
    from .resources import ResourceError
    result = outcome = None
    if comm.is_root:
        try:
            result = fn()
            outcome = ("ok", result if share else None)
        except (InputError, ResourceError) as exc:
            outcome = ("usage", str(exc))
        except OutputError as exc:
            outcome = ("output", str(exc))
    outcome = comm.bcast(outcome)
    if outcome[0] == "usage":
        raise InputError(outcome[1], everywhere=True)
    if outcome[0] == "output":
        raise JobError(outcome[1], EXIT_FAILED)
    return outcome[1] if share else result


class StopSignals:
    """SIGTERM, SIGINT and SIGUSR1 ask the run to stop at the next safe point (it checkpoints and exits
    with code 3); a second signal ends the process at once (the file stays valid). Off the main thread, where
    Python refuses signal handlers, it installs none and no stop is ever requested.

    While `immediate` (until the output file is open and the run is about to start) there is nothing to
    checkpoint and the run may be blocked in a system call: a signal then ends it at once, by raising
    `Interrupted` from the handler (Python retries an interrupted call only when its handler returns)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

    def __init__(self):
        self.received: str | None = None
        self.immediate = True
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for s in self.SIGNALS:
                self._previous[s] = signal.signal(s, self._handler)
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self._previous.items():
            signal.signal(s, handler)

    def _handler(self, signum, frame) -> None:
        if self.received is not None:
            os._exit(128 + signum)
        self.received = signal.Signals(signum).name
        if self.immediate:
            raise Interrupted(f"stopped by {self.received} before the run started (nothing to checkpoint)")

# ----------------------------------------------------------------------------------------------
# vmc run: planning (rank 0, before any work)
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """What a job is asked to do: an input (a TOML path, or a parsed `vmc.input.config.Config`), or `resume` an
    output file; where to write (default: the input's `output` option, else runs/<input name>.h5); option
    overrides by dotted key (on a resume only run-length options); `force` to replace an existing output."""
    input: str | None = None
    config: object = None
    output: str | None = None
    resume: str | None = None
    overrides: Mapping = field(default_factory=dict)
    force: bool = False


@dataclass
class Point:
    index: int
    label: str
    spec: Spec
    state: str = "new"            # new, resume or complete


@dataclass
class Plan:
    path: str
    study: bool
    points: list[Point]
    text: str
    overrides: dict
    resume: bool
    config: dict = field(default_factory=dict)   # the whole input (with its sweep)
    nothing_to_do: str = ""
    lock_fd: int = -1             # rank 0's lock on the output file (with --force first on the file it replaces)
    force: bool = False


def _output_path(request: Request, config) -> str:
    stem = os.path.splitext(os.path.basename(request.input))[0] if request.input else "run"
    return request.output or config.get("output") or os.path.join("runs", f"{stem}.h5")


def _read_stored(path: str) -> tuple[dict, str, list[dict]]:
    """(config, input text, progress of each run group) of an output file, read without modifying it."""
    from ..input import config as config_mod
    from ..output import io
    with io.reading(path, InputError, "damaged or incomplete vmc file, cannot resume") as f:
        kind = f.attrs.get("format")
        if kind not in (io.FORMAT, io.STUDY_FORMAT) or "config" not in f.attrs:
            raise InputError(f"{path}: not a vmc output file, cannot resume")
        groups = [f] if kind == io.FORMAT else [f["points"][k] for k in sorted(f["points"])]
        progress = []
        for g in groups:
            version = int(g.attrs.get("format_version", 0))
            if version < io.RESUMABLE_SINCE:
                raise InputError(f"{path}: format_version {version} kept the walkers' random streams in a form "
                                 f"vmc {__version__} no longer draws from; it is read but cannot be resumed "
                                 "(run the input again)")
            ck = g["checkpoint"].attrs
            progress.append({"status": io.attr_text(g, "status", "running"),
                             "has_checkpoint": int(ck["current"]) >= 0,
                             "iteration": int(ck.get("iteration", 0)), "phase": int(ck.get("phase", 0)),
                             "steps_done": io.done(g, "production"),
                             "dmc_steps_done": io.done(g, "dmc") if "dmc" in g else 0,
                             # as this version reads it: options added since at their defaults
                             "spec": config_mod.from_dict(json.loads(g.attrs["config"]), path).spec()})
        return json.loads(f.attrs["config"]), str(f.attrs.get("input_text", "")), progress


def _check_dmc_extension(path: str, steps: int, progress: dict) -> None:
    """`--set dmc.steps=STEPS` on a resume: only a run with DMC, and not below the measured steps done."""
    d = progress["spec"].dmc
    if d.steps == 0:
        raise InputError(f"{path}: --set dmc.steps: this run has no DMC; start one from its trial state (a new run "
                         f"with wavefunction.from_file = \"{path}\")")
    measured = max(0, progress["dmc_steps_done"] - d.equilibration)
    if steps < max(measured, 16):
        raise InputError(f"{path}: --set dmc.steps={steps} is below the {measured} measured DMC steps already done"
                         + (" (or below 16)" if measured < 16 else ""))


def _check_resume_overrides(path: str, overrides: dict, progress: list[dict]) -> None:
    """Refuse, before anything is written, overrides that would change the physics or the stored state,
    or that could no longer take effect."""
    from ..input.config import OPTION_BY_KEY, suggest
    allowed = sorted(k for k, o in OPTION_BY_KEY.items() if o.on_resume)
    for key in overrides:
        if key not in OPTION_BY_KEY:
            raise InputError(f"{path}: --set {key}: unknown key{suggest(key)}")
        if not OPTION_BY_KEY[key].on_resume:
            raise InputError(f"{path}: --set {key} cannot change on --resume: it fixes the physics or the shape "
                             f"of the stored state (a resume may change: {', '.join(allowed)})")
    for p in progress:
        optimizing = p["phase"] == 0
        for key, value in overrides.items():
            if key == "dmc.steps":
                _check_dmc_extension(path, value, p)
                continue
            if p["status"] == "complete":      # only dmc.steps can still take effect
                continue
            late = (key.startswith("optimizer.") or key in ("sampler.steps", "sampler.thermalize")) and not optimizing \
                or key.startswith("production.") and p["phase"] >= 2   # the production is over (DMC or done)
            if key == "sampler.burn_in" and p["iteration"] > 0 or key == "production.burn_in" and p["steps_done"] > 0 \
                    or late:
                raise InputError(f"{path}: --set {key} would have no effect: that part of the run is already done")
            if key == "optimizer.iterations" and value < p["iteration"]:
                raise InputError(f"{path}: --set optimizer.iterations={value} is below the {p['iteration']} "
                                 "iterations already done")
            if key == "production.steps" and value < p["steps_done"]:
                raise InputError(f"{path}: --set production.steps={value} is below the {p['steps_done']} "
                                 "production steps already done")


def _check_request(request: Request) -> None:
    if request.resume and (request.input or request.config is not None):
        raise InputError(f"vmc run: give an input file or --resume FILE, not both (a resume takes its input "
                         f"from {request.resume})")
    if not request.resume and not request.input and request.config is None:
        raise InputError("vmc run: give an input file (INPUT) or --resume FILE")
    if request.resume and request.force:
        raise InputError(f"vmc run: --force with --resume would overwrite the file the run continues from "
                         f"({request.resume}); drop --force")


def _points(config, n_ranks: int, progress: list[dict] | None) -> list[Point]:
    """One point per sweep point, with what is left to do of it ("new", "resume" or "complete")."""
    from ..input import config as config_mod
    points = []
    for index, (label, point) in enumerate(config.sweep_points()):
        config_mod.check_ranks(point.spec(), n_ranks, point.source)
        state = "new"
        if progress is not None:
            p = progress[index]
            grows = p["status"] == "complete" and point.spec().dmc.steps > p["spec"].dmc.steps
            state = "complete" if p["status"] == "complete" and not grows else \
                "resume" if p["has_checkpoint"] else "new"
        points.append(Point(index, label, point.spec(), state))
    return points


def _check_points(points: list[Point], source: str, n_ranks: int, ranks_on_node: int) -> None:
    """Memory per rank, and the parameters of `wavefunction.from_file` for every point still to start."""
    from .driver import run_shape, start_parameters
    from .resources import check_memory
    for p in points:
        check_memory(p.spec, source, n_ranks, ranks_on_node, run_shape(p.spec).n_opt)
        if p.spec.wavefunction.from_file and p.state == "new":
            try:
                start_parameters(p.spec)
            except ValueError as exc:
                raise InputError(f"{source}: {exc}") from None


def _plan(request: Request, n_ranks: int, ranks_on_node: int) -> Plan:
    from ..input import config as config_mod
    from ..output import io
    from .driver import run_shape
    from .resources import check_disk

    _check_request(request)
    overrides = dict(request.overrides)
    try:
        if request.resume:
            path = request.resume
            stored, text, progress = _read_stored(path)
            if all(p["status"] == "complete" for p in progress) and set(overrides) - {"dmc.steps"}:
                raise InputError(f"{path}: the run is complete; nothing to resume (the overrides were not "
                                 "applied; only dmc.steps may continue a complete run)")
            _check_resume_overrides(path, overrides, progress)
            config = config_mod.from_dict(stored, source=path, text=text)
        else:
            config = request.config if request.config is not None else config_mod.load(request.input)
            progress = None
        if overrides:
            config = config.with_overrides(overrides)
        points = _points(config, n_ranks, progress)
        if request.resume and all(p.state == "complete" for p in points):
            return Plan(path, False, [], text, overrides, True,
                        nothing_to_do=f"{path}: the run is already complete, nothing to do "
                                      f"(`vmc analyze {path}` shows its results)")
        _check_points(points, config.source, n_ranks, ranks_on_node)
        if request.resume:     # the file is locked, and the disk has room for its growth
            fd = io.lock(path)
            need = sum(max(0, run_shape(p.spec).file_bytes() - run_shape(prog["spec"]).file_bytes())
                       for p, prog in zip(points, progress))
        else:                  # the output is not a file the run reads, it is claimed, and the disk has room
            path = _output_path(request, config)
            _refuse_reading_own_output(path, points)
            fd = io.claim_output(path, request.force)
            need = sum(run_shape(p.spec).file_bytes() for p in points)
        try:
            check_disk(path, need)
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
    except (config_mod.ConfigError, io.OutputError) as exc:
        raise InputError(str(exc)) from None
    return Plan(path, bool(config.sweep), points, config.text, overrides, bool(request.resume), config.to_dict(),
                lock_fd=fd, force=bool(request.force))


def plan(comm: Comm, request: Request) -> Plan:
    """Plan a job (collective): rank 0 reads the input or the file to resume, applies the overrides, checks
    ranks, memory, disk, `wavefunction.from_file` and the output, and shares the plan; every rank raises the
    same InputError when something is wrong."""
    one_thread_per_rank()
    ranks_on_node = comm.ranks_on_node()
    return on_root(comm, lambda: _plan(request, comm.size, ranks_on_node))


def _refuse_reading_own_output(path: str, points: list[Point]) -> None:
    """A new run's output must not be a file the run reads (`wavefunction.from_file`): with --force it would be
    destroyed before it is read, without it the run is refused anyway (the file exists)."""
    for p in points:
        source = p.spec.wavefunction.from_file
        if source and os.path.exists(path) and os.path.exists(source) and os.path.samefile(source, path):
            raise InputError(f"{path}: the output is the file this run reads its parameters from "
                             f"(wavefunction.from_file = \"{source}\"): choose another output with -o")


# ----------------------------------------------------------------------------------------------
# vmc run: the file and the points
# ----------------------------------------------------------------------------------------------


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _run_attrs(cfg: dict, text: str, n_ranks: int) -> dict:
    return {"vmc_version": __version__, "input_text": text, "config": json.dumps(cfg), "n_ranks": n_ranks,
            "threads_per_rank": one_thread_per_rank(),
            "seed": cfg["seed"], "started": _now(), "host": socket.gethostname(), "command": " ".join(sys.argv),
            "resumed": "[]"}


def _open_output(plan: Plan, n_ranks: int):
    """Rank 0: create the output file with every run group at full size, or open it for a resume."""
    from ..output import io
    from ..model.wavefunction import TrialState
    from . import driver
    try:
        if plan.resume:
            f, ranks_before = io.open_for_resume(plan.path, {"time": _now(), "ranks": n_ranks,
                                                             "overrides": plan.overrides})
            if ranks_before != n_ranks:
                print(f"vmc: note: {plan.path} was run on {ranks_before} ranks, resuming on {n_ranks}: "
                      "results are statistically equivalent but not bit-identical", file=sys.stderr)
            for p in plan.points:
                if p.state == "complete":
                    continue
                g = _group(f, plan, p)
                if plan.overrides:
                    io.set_text(g, "config", json.dumps(p.spec.to_dict()))
                io.extend_run(g, p.spec.optimizer.iterations, p.spec.production.steps,
                              p.spec.dmc.equilibration + p.spec.dmc.steps if p.spec.dmc_on else 0)
            if plan.overrides and plan.study:
                io.set_text(f, "config", json.dumps(plan.config))
        else:
            def lay_out(f):
                if plan.study:
                    attrs = _run_attrs(plan.config, plan.text, n_ranks)
                    f.attrs.update(format=io.STUDY_FORMAT, format_version=io.FORMAT_VERSION,
                                   n_points=len(plan.points),
                                   **{k: v for k, v in attrs.items() if k not in io.TEXT_CAPACITY})
                    io.init_text(f, {**attrs, "status": "running"})
                    f.create_group("points")
                for p in plan.points:
                    g = f.require_group(f"points/{p.index:03d}") if plan.study else f
                    wf = TrialState.from_spec(p.spec)
                    io.create_run(g, {**_run_attrs(p.spec.to_dict(), plan.text, n_ranks), "label": p.label,
                                      "index": p.index}, driver.run_shape(p.spec), p.spec.sampler.kind,
                                  wf.attrs())
            f, fd = io.create_output(plan.path, plan.force, lay_out)
            if plan.lock_fd >= 0:
                os.close(plan.lock_fd)   # the replaced file's lock: the new file is locked already
            plan.lock_fd = fd
        f.flush()
    except OSError as exc:
        raise io.OutputError(f"{plan.path}: cannot {'open' if plan.resume else 'create'} the output file "
                             f"({io.describe_write_error(exc)})") from None
    return f


def _group(f, plan: Plan, p: Point):
    return f[f"points/{p.index:03d}"] if plan.study else f


@dataclass
class Outcome:
    status: int                        # the exit code
    path: str = ""                     # the output file
    failure: Exception | None = None   # what ended the run early (rank 0), if anything


def execute(plan: Plan, comm: Comm, stop: StopSignals, progress: bool = True, echo: bool = True) -> Outcome:
    """Create or open the planned output file and run every point that is not complete (collective).
    Failures of a run are recorded in the file and returned in the `Outcome`; `echo`: print the summary
    and the failure lines (the command line) or not (the Python API)."""
    from ..output import io
    from . import driver

    if plan.nothing_to_do:
        if comm.is_root and echo:
            print(plan.nothing_to_do, file=sys.stderr)
        return Outcome(EXIT_OK, plan.path)
    f = on_root(comm, lambda: _open_output(plan, comm.size), share=False)
    stop.immediate = False
    status, failure = EXIT_OK, None
    for p in plan.points:
        if p.state == "complete":
            continue
        writer = io.RunWriter(_group(f, plan, p)) if comm.is_root else None
        if comm.is_root and plan.study and progress:
            print(f"point {p.index + 1}/{len(plan.points)}: {p.label}", file=sys.stderr)
        if writer is not None:
            writer.status("running")
        at = f" at {p.label}" if p.label else ""
        try:
            summary = driver.run(p.spec, writer, comm, resume=p.state == "resume", progress=progress,
                                 stop=lambda: stop.received)
        except Interrupted as exc:
            if writer is not None:
                writer.status("interrupted", str(exc))
                if plan.study:
                    io.set_text(f, "status", "interrupted")
                f.flush()
                print_if(echo, f"vmc: {exc}{at}; checkpointed, continue with: vmc run --resume {plan.path}")
            status, failure = EXIT_INTERRUPTED, exc
            break
        except RunError as exc:
            if writer is not None:
                writer.status("failed", str(exc))
                hint = (f"\n  continue with: vmc run --resume {plan.path} --set optimizer.learning_rate=<smaller>"
                        if isinstance(exc, NumericalError) else "")
                print_if(echo, f"vmc: run failed{at}: {exc}{hint}")
            status, failure = EXIT_FAILED, failure or exc
            if not plan.study:
                break
            continue
        untrusted = _record(writer, summary, p, plan.path, echo)
        if untrusted is not None:
            print_if(echo, f"vmc: run failed{at}: {untrusted}")
            status, failure = EXIT_FAILED, failure or untrusted
    if comm.is_root:
        if plan.study and status != EXIT_INTERRUPTED:
            io.set_text(f, "status", "complete" if status == EXIT_OK else "failed")
            io.set_text(f, "finished", _now())
        f.close()
        os.close(plan.lock_fd)
    return Outcome(status, plan.path, failure)


def _record(writer, summary: dict, p: Point, path: str, echo: bool) -> RunError | None:
    """Rank 0: store a finished point's summary and status, print it; a DMC energy that fails the guard
    (`analysis.dmc_verdict`) keeps its summary and data but makes the point failed (returned as the error)."""
    from ..analysis.results import summary_text
    from ..output import io
    if writer is None:
        return None
    untrusted = summary.get("dmc", {}).get("failures", [])
    scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
    scalars["warnings"] = summary.get("warnings", []) + [f"DMC FAILED: {w}" for w in untrusted]
    text = json.dumps(scalars)
    if len(text.encode()) > io.TEXT_CAPACITY["summary"]:
        text = json.dumps({**scalars, "warnings": ["(too many warnings to store: see vmc analyze)"]})
    exc = RunError("the DMC energy cannot be trusted: " + "; ".join(untrusted)) if untrusted else None
    writer.status("failed" if exc else "complete", str(exc or ""), finished=_now(), summary=text)
    print_if(echo, (f"\n[{p.label}]" if p.label else "") + summary_text(summary, p.spec, path), file=sys.stdout)
    return exc


def print_if(echo: bool, text: str, file=None) -> None:
    if echo:
        print(text, file=file or sys.stderr)
