"""Command line: `vmc run`, `vmc analyze`, `vmc report`, `vmc info` (also `python -m vmc ...`).

Exit codes (the README lists them too):

    0  success; also `--resume` of a run that is already complete (nothing is changed)
    1  the run failed: divergence or a non-finite energy, implausible sampling (acceptance 0 or 1), a
       write error such as a full disk, ranks out of step, or an internal error. The file keeps every
       completed iteration and production chunk and a checkpoint to `--resume` from.
    2  bad input, found before any work: configuration, files, `--resume` overrides, memory or disk
       the run would need, an output file another run is writing
    3  stopped by SIGTERM, SIGINT or SIGUSR1: the run wrote a checkpoint at the next safe point and
       `--resume` continues it bit for bit

Every error is one line on stderr. Under MPI no rank waits for a failed one: an error that only one
rank sees ends the whole job at once (MPI_Abort) with the codes above.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import socket
import sys
import tomllib
import traceback
from dataclasses import dataclass, field

from . import __version__
from .errors import InputError, Interrupted, NumericalError, RunError
from .parallel import one_thread_per_rank

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 3


class JobError(RunError):
    """A failure every rank knows about (broadcast from rank 0): one line, exit code `code`."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code


_COMM = None   # the job's communicator once `vmc run` has one (for `main`'s abort on a lone failure)


def _world():
    global _COMM
    from .parallel import ParallelError, world
    try:
        _COMM = world()
    except ParallelError as exc:
        raise InputError(str(exc)) from None
    return _COMM


def _on_root(comm, fn, share: bool = True):
    """Run fn on rank 0 and share its result (`share`; else the result stays on rank 0 and the others get
    None); if it raised InputError (or an output error), every rank raises the same error, so no rank
    waits for another."""
    from .io import OutputError
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
    with code 3); a second signal ends the process at once (the file stays valid)."""

    SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

    def __init__(self):
        self.received: str | None = None
        self._previous: dict = {}

    def __enter__(self) -> "StopSignals":
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

    def pending(self) -> str | None:
        return self.received


# ----------------------------------------------------------------------------------------------
# vmc run: planning (rank 0, before any work)
# ----------------------------------------------------------------------------------------------


@dataclass
class Point:
    index: int
    label: str
    cfg: dict
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
    lock_fd: int = -1             # rank 0's lock on the output file


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.001")
    key, raw = (t.strip() for t in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _output_path(args, config) -> str:
    if args.output:
        return args.output
    if config.get("output"):
        return config.get("output")
    stem = os.path.splitext(os.path.basename(args.input))[0] if args.input else "run"
    return os.path.join("runs", f"{stem}.h5")


def _check_new_output(path: str, force: bool) -> int:
    """Check that a new output file can be written at `path`; returns a lock on an existing file that
    --force will replace (-1 if there is none)."""
    from .io import OutputError, lock
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory: give a file name for the output (-o DIR/NAME.h5)")
    fd = -1
    if os.path.exists(path):
        if not force:
            raise InputError(f"{path} exists: continue it with --resume {path}, overwrite it with --force, "
                             "or choose another name with -o")
        try:
            fd = lock(path)
        except OutputError as exc:
            raise InputError(f"{exc}; --force does not replace a file in use") from None
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise InputError(f"{path}: cannot create output directory {directory} "
                             f"({exc.strerror or exc})") from None
    if not os.access(directory, os.W_OK):
        raise InputError(f"{path}: output directory {directory} is not writable")
    return fd


def _read_stored(path: str) -> tuple[dict, str, list[dict]]:
    """(config, input text, progress of each run group) of an output file, read without modifying it."""
    from . import io
    try:
        with io.open_for_reading(path) as f:
            kind = f.attrs.get("format")
            if kind not in (io.FORMAT, io.STUDY_FORMAT) or "config" not in f.attrs:
                raise InputError(f"{path}: not a vmc output file, cannot resume")
            io.verify(f, path)
            groups = [f] if kind == io.FORMAT else [f["points"][k] for k in sorted(f["points"])]
            progress = []
            for g in groups:
                if "checkpoint" not in g or "current" not in g["checkpoint"].attrs:
                    raise InputError(f"{path}: holds no checkpoint in the format of vmc {__version__} "
                                     f"(format_version {g.attrs.get('format_version')}); it cannot be resumed")
                ck = g["checkpoint"].attrs
                progress.append({"status": io.attr_text(g, "status", "running"),
                                 "has_checkpoint": int(ck["current"]) >= 0,
                                 "iteration": int(ck.get("iteration", 0)), "phase": int(ck.get("phase", 0)),
                                 "steps_done": int(g["production"].attrs.get("steps_done", 0)),
                                 "config": json.loads(g.attrs["config"])})
            return json.loads(f.attrs["config"]), str(f.attrs.get("input_text", "")), progress
    except io.OutputError as exc:
        raise InputError(str(exc)) from None
    except (KeyError, OSError, RuntimeError, ValueError) as exc:
        raise InputError(f"{path}: damaged or incomplete vmc file, cannot resume "
                         f"({str(exc).splitlines()[0]})") from None


def _check_resume_overrides(path: str, overrides: dict, progress: list[dict]) -> None:
    """Refuse, before anything is written, overrides that would change the physics or the stored state,
    or that could no longer take effect."""
    from .config import OPTION_BY_KEY, _suggest
    allowed = sorted(k for k, o in OPTION_BY_KEY.items() if o.on_resume)
    for key in overrides:
        if key not in OPTION_BY_KEY:
            raise InputError(f"{path}: --set {key}: unknown key{_suggest(key)}")
        if not OPTION_BY_KEY[key].on_resume:
            raise InputError(f"{path}: --set {key} cannot change on --resume: it fixes the physics or the shape "
                             f"of the stored state (a resume may change: {', '.join(allowed)})")
    for p in progress:
        if p["status"] == "complete":
            continue
        optimizing = p["phase"] == 0
        for key, value in overrides.items():
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


def _plan(args, n_ranks: int, ranks_on_node: int) -> Plan:
    from . import config as config_mod
    from .driver import run_shape
    from .io import OutputError, lock
    from .resources import check_disk, check_memory

    given = getattr(args, "config", None)   # the Python API passes a parsed input
    if args.resume and (args.input or given):
        raise InputError(f"vmc run: give an input file or --resume FILE, not both (a resume takes its input "
                         f"from {args.resume})")
    if not args.resume and not args.input and given is None:
        raise InputError("vmc run: give an input file (INPUT) or --resume FILE")
    overrides = dict(_parse_override(s) for s in args.set or [])
    overrides.update(getattr(args, "overrides", None) or {})
    try:
        if args.resume:
            path = args.resume
            stored, text, progress = _read_stored(path)
            if all(p["status"] == "complete" for p in progress):
                if overrides:
                    raise InputError(f"{path}: the run is complete; nothing to resume (the overrides were not "
                                     "applied)")
                return Plan(path, False, [], text, overrides, True,
                            nothing_to_do=f"{path}: the run is already complete, nothing to do "
                                          f"(`vmc analyze {path}` shows its results)")
            _check_resume_overrides(path, overrides, progress)
            config = config_mod.from_dict(stored, source=path, text=text)
            if overrides:
                config = config.with_overrides(overrides)
            fd = lock(path)
        else:
            config = given if given is not None else config_mod.load(args.input)
            if overrides:
                config = config.with_overrides(overrides)
            path = _output_path(args, config)
            progress = None
            fd = -1
        points = []
        for index, (label, point) in enumerate(config.sweep_points()):
            config_mod.check_ranks(point, n_ranks)
            cfg = point.to_dict()
            state = "new"
            if progress is not None:
                state = "complete" if progress[index]["status"] == "complete" else \
                    "resume" if progress[index]["has_checkpoint"] else "new"
            points.append(Point(index, label, cfg, state))
        for p in points:
            check_memory(p.cfg, config.source, n_ranks, ranks_on_node, run_shape(p.cfg).n_opt)
            if p.cfg["wavefunction"]["from_file"] and p.state == "new":
                from .driver import start_parameters
                try:
                    start_parameters(p.cfg)
                except ValueError as exc:
                    raise InputError(f"{config.source}: {exc}") from None
        if not args.resume:
            fd = _check_new_output(path, args.force)
            check_disk(path, sum(run_shape(p.cfg).file_bytes() for p in points))
        else:
            extra = 0
            for p, prog in zip(points, progress):
                old, new = run_shape(prog["config"]), run_shape(p.cfg)
                extra += max(0, new.file_bytes() - old.file_bytes())
            check_disk(path, extra)
    except config_mod.ConfigError as exc:
        raise InputError(str(exc)) from None
    except OutputError as exc:
        raise InputError(str(exc)) from None
    return Plan(path, bool(config.sweep), points, config.text, overrides, bool(args.resume), config.to_dict(),
                lock_fd=fd)


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
    import h5py

    from . import driver, io
    try:
        if plan.resume:
            f = h5py.File(plan.path, "r+", locking=False)
            record = {"time": _now(), "ranks": n_ranks, "overrides": plan.overrides}
            history = json.loads(io.attr_text(f, "resumed") or "[]") + [record]
            while len(json.dumps(history)) > io.TEXT_CAPACITY["resumed"] and len(history) > 1:
                history.pop(0)   # the oldest resumes go when the record is full
            io.set_text(f, "resumed", json.dumps(history))
            if f.attrs.get("n_ranks") != n_ranks:
                print(f"vmc: note: {plan.path} was run on {f.attrs.get('n_ranks')} ranks, resuming on {n_ranks}: "
                      "results are statistically equivalent but not bit-identical", file=sys.stderr)
            for p in plan.points:
                if p.state == "complete":
                    continue
                g = _group(f, plan, p)
                if plan.overrides:
                    io.set_text(g, "config", json.dumps(p.cfg))
                io.extend_run(g, p.cfg["optimizer"]["iterations"], p.cfg["production"]["steps"])
            if plan.overrides and plan.study:
                io.set_text(f, "config", json.dumps(plan.config))
            io.set_text(f, "status", "running")
        else:
            # laid out under a temporary name and renamed when complete: a kill during the creation
            # leaves no half-made output file behind
            tmp = os.path.join(os.path.dirname(os.path.abspath(plan.path)),
                               f".{os.path.basename(plan.path)}.creating-{os.getpid()}")
            try:
                with h5py.File(tmp, "w", locking=False) as f:
                    if plan.study:
                        attrs = _run_attrs(plan.config, plan.text, n_ranks)
                        f.attrs.update(format=io.STUDY_FORMAT, format_version=io.FORMAT_VERSION,
                                       n_points=len(plan.points),
                                       **{k: v for k, v in attrs.items() if k not in io.TEXT_CAPACITY})
                        io.init_text(f, {**attrs, "status": "running"})
                        f.create_group("points")
                    for p in plan.points:
                        g = f.require_group(f"points/{p.index:03d}") if plan.study else f
                        wf = driver.trial_state(p.cfg)
                        io.create_run(g, {**_run_attrs(p.cfg, plan.text, n_ranks), "label": p.label,
                                          "index": p.index}, driver.run_shape(p.cfg), p.cfg["sampler"]["kind"],
                                      driver.wavefunction_attrs(wf))
                os.replace(tmp, plan.path)
            finally:
                if os.path.exists(tmp):
                    os.remove(tmp)
            f = h5py.File(plan.path, "r+", locking=False)
        f.flush()
    except OSError as exc:
        from .io import _describe_write_error
        raise io.OutputError(f"{plan.path}: cannot {'open' if plan.resume else 'create'} the output file "
                             f"({_describe_write_error(exc)})") from None
    if not plan.resume:
        from .io import lock
        old = plan.lock_fd
        plan.lock_fd = lock(plan.path)
        if old >= 0:
            os.close(old)
    return f


def _group(f, plan: Plan, p: Point):
    return f[f"points/{p.index:03d}"] if plan.study else f


def cmd_run(args) -> int:
    """Run one input (or every point of its [sweep]) into one HDF5 file; resume what is unfinished."""
    with StopSignals() as stop:
        return execute(args, _world(), stop).status


@dataclass
class Outcome:
    status: int                        # the exit code
    path: str = ""                     # the output file
    failure: Exception | None = None   # what ended the run early (rank 0), if anything


def execute(args, comm, stop: StopSignals, echo: bool = True) -> Outcome:
    """`vmc run` and `vmc.run`: plan (rank 0, shared), create or open the file, run every point that is
    not complete. InputError before any work; failures of a run are recorded in the file and returned.
    `echo`: print the summary and the failure lines (the command line) or not (the Python API)."""
    from . import driver, io

    one_thread_per_rank()
    ranks_on_node = comm.ranks_on_node()
    plan = _on_root(comm, lambda: _plan(args, comm.size, ranks_on_node))
    if plan.nothing_to_do:
        if comm.is_root and echo:
            print(plan.nothing_to_do, file=sys.stderr)
        return Outcome(EXIT_OK, plan.path)
    f = _on_root(comm, lambda: _open_output(plan, comm.size), share=False)
    status, failure = EXIT_OK, None
    for p in plan.points:
        if p.state == "complete":
            continue
        writer = io.RunWriter(_group(f, plan, p)) if comm.is_root else None
        if comm.is_root and plan.study and not args.quiet:
            print(f"point {p.index + 1}/{len(plan.points)}: {p.label}", file=sys.stderr)
        if writer is not None:
            writer.status("running")
        try:
            summary = driver.run(p.cfg, writer, comm, resume=p.state == "resume", progress=not args.quiet,
                                 stop=stop.pending)
        except Interrupted as exc:
            failure = exc
            if writer is not None:
                writer.status("interrupted", str(exc))
                if plan.study:
                    io.set_text(f, "status", "interrupted")
                f.flush()
                print_if(echo, f"vmc: {exc}{' at ' + p.label if p.label else ''}; checkpointed, continue with: "
                      f"vmc run --resume {plan.path}", file=sys.stderr)
            status = EXIT_INTERRUPTED
            break
        except RunError as exc:
            failure = failure or exc
            if writer is not None:
                writer.status("failed", str(exc))
                hint = (f"\n  continue with: vmc run --resume {plan.path} --set optimizer.learning_rate=<smaller>"
                        if isinstance(exc, NumericalError) else "")
                print_if(echo, f"vmc: run failed{' at ' + p.label if p.label else ''}: {exc}{hint}", file=sys.stderr)
            status = EXIT_FAILED
            if not plan.study:
                break
            continue
        if writer is not None:
            scalars = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
            scalars["warnings"] = summary.get("warnings", [])
            text = json.dumps(scalars)
            if len(text.encode()) > io.TEXT_CAPACITY["summary"]:
                text = json.dumps({**scalars, "warnings": ["(too many warnings to store: see vmc analyze)"]})
            writer.status("complete", finished=_now(), summary=text)
            print_if(echo, (f"\n[{p.label}]" if p.label else "") + summary_text(summary, p.cfg, plan.path),
                     file=sys.stdout)
    if comm.is_root:
        if plan.study and status != EXIT_INTERRUPTED:
            io.set_text(f, "status", "complete" if status == EXIT_OK else "failed")
            io.set_text(f, "finished", _now())
        f.close()
        os.close(plan.lock_fd)
    return Outcome(status, plan.path, failure)


def print_if(echo: bool, text: str, file=None) -> None:
    if echo:
        print(text, file=file or sys.stderr)


def summary_text(summary: dict, cfg: dict, path: str) -> str:
    """The block `vmc run` prints at the end of a run."""
    from .analysis import reference_energy
    from .hamiltonian import SYMBOLS, TERM_NAMES
    ref = reference_energy(cfg)
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
    for w in summary.get("warnings", []):
        lines.append(f"warning: {w}")
    if "dmc" in summary:
        from .analysis import dmc_lines
        lines += dmc_lines(summary["dmc"])
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# vmc info / analyze / report
# ----------------------------------------------------------------------------------------------


def cmd_info(args) -> int:
    from . import io
    try:
        print(io.describe(args.file))
    except io.OutputError as exc:
        raise InputError(str(exc)) from None
    return EXIT_OK


def cmd_analyze(args) -> int:
    from . import analysis
    try:
        result = analysis.analyze_path(args.file)
    except analysis.AnalysisError as exc:
        raise InputError(str(exc)) from None
    results = result["points"] if "points" in result else [result]
    if args.json:
        print(json.dumps(analysis.to_json(result), indent=2))
    else:
        print("\n\n".join(analysis.format_table(r, f"{args.file} [{r['label']}]" if "label" in r else args.file)
                          for r in results))
    if args.plot:
        analysis.plot(results[-1], args.plot)
    return EXIT_OK


def cmd_report(args) -> int:
    from . import analysis, report
    try:
        md = report.write_report(args.file, args.output)
    except analysis.AnalysisError as exc:
        raise InputError(str(exc)) from None
    print(md)
    return EXIT_OK


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vmc", description="Variational Monte Carlo for electrons in harmonic "
                                "traps with restricted-Boltzmann-machine trial states.",
                                epilog="exit codes: 0 success, 1 run failed, 2 bad input, 3 interrupted "
                                "(checkpointed; --resume continues)")
    p.add_argument("--version", action="version", version=f"vmc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="optimize and evaluate (under mpiexec: in parallel over walkers)")
    r.add_argument("input", nargs="?", help="TOML input file (see README: input reference)")
    r.add_argument("-o", "--output", help="HDF5 output file (default: runs/<input name>.h5)")
    r.add_argument("--resume", metavar="FILE", help="continue a killed, failed or interrupted run from its last "
                   "checkpoint (its input comes from FILE)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an option, e.g. --set optimizer.learning_rate=0.001 (repeatable); on --resume "
                        "only run-length and optimizer options")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file (not one in use)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    a = sub.add_parser("analyze", help="blocking analysis of a run's production series (or a .npy/text column)")
    a.add_argument("file", help="HDF5 run or study file; .npy array (chains, steps); text file, one chain per column")
    a.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    a.add_argument("--plot", metavar="PNG", help="draw the blocking curve and the energy trace")
    a.set_defaults(func=cmd_analyze)
    rp = sub.add_parser("report", help="markdown report with figures from a run or study file")
    rp.add_argument("file")
    rp.add_argument("-o", "--output", metavar="DIR", help="report directory (default: <file stem>_report)")
    rp.set_defaults(func=cmd_report)
    i = sub.add_parser("info", help="what an output file holds")
    i.add_argument("file")
    i.set_defaults(func=cmd_info)
    return p


def _rank() -> int:
    if _COMM is not None:
        return _COMM.rank
    return int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")) or 0)


def _fail(message: str, code: int) -> int:
    """Print one line; if other ranks may be waiting for this one, end the whole job (MPI_Abort)."""
    print(message, file=sys.stderr, flush=True)
    if _COMM is not None and _COMM.size > 1:
        _COMM.abort(code)
    return code


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        if exc.everywhere:
            if _rank() == 0:
                print(f"vmc: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        return _fail(f"vmc: error: {exc}", EXIT_USAGE)
    except JobError as exc:
        if _rank() == 0:
            print(f"vmc: error: {exc}", file=sys.stderr)
        return exc.code
    except BrokenPipeError:   # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        from .io import OutputError
        if isinstance(exc, OutputError):
            return _fail(f"vmc: error: {exc}", EXIT_FAILED)
        if os.environ.get("VMC_DEBUG"):
            traceback.print_exc()
        where = traceback.extract_tb(exc.__traceback__)[-1]
        rank = f" on rank {_rank()}" if _COMM is not None and _COMM.size > 1 else ""
        first = str(exc).splitlines()[0] if str(exc) else ""
        return _fail(f"vmc: internal error{rank}: {exc.__class__.__name__}: {first} "
                     f"({os.path.basename(where.filename)}:{where.lineno}; VMC_DEBUG=1 prints the traceback)",
                     EXIT_FAILED)


if __name__ == "__main__":
    sys.exit(main())
