"""Command line: `vmc run`, `vmc analyze`, `vmc report`, `vmc info` (also `python -m vmc ...`).

The command line parses argv, hands `vmc run` to the run front door (`vmc.drivers.job`: the same `plan` and
`execute` as the Python API) and prints; the exit codes are `vmc.drivers.job`'s (the README lists them):
0 success, 1 the run failed, 2 bad input found before any work, 3 stopped by a signal after a checkpoint.

Every error is one line on stderr. Under MPI no rank waits for a failed one: an error that only one
rank sees ends the whole job at once (MPI_Abort) with the codes above.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
import tomllib
import traceback

from .errors import InputError, Interrupted
from .drivers import job
from .drivers.job import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, JobError, StopSignals
from .version import __version__

ABORT_GRACE = 0.5   # seconds between printing a lone rank's error and aborting the job (see `_fail`)
_COMM = None   # the job's communicator once `vmc run` has one (for `main`'s abort on a lone failure)


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise InputError(f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.001")
    key, raw = (t.strip() for t in text.split("=", 1))
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def cmd_run(args) -> int:
    """Run one input (or every point of its [sweep]) into one HDF5 file; resume what is unfinished."""
    global _COMM
    with StopSignals() as stop:
        request = job.Request(input=args.input, output=args.output, resume=args.resume, force=args.force,
                              overrides=dict(parse_override(s) for s in args.set or []))
        _COMM = comm = job.world()
        return job.execute(job.plan(comm, request), comm, stop, progress=not args.quiet).status


# ----------------------------------------------------------------------------------------------
# vmc info / analyze / report
# ----------------------------------------------------------------------------------------------


def cmd_info(args) -> int:
    from .output import io
    try:
        print(io.describe(args.file))
    except io.OutputError as exc:
        raise InputError(str(exc)) from None
    return EXIT_OK


def cmd_analyze(args) -> int:
    from .analysis import results as analysis
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
    from .analysis import report
    from .analysis import results as analysis
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
        # the launcher forwards a rank's stderr through a pipe and stops reading when the job is aborted:
        # give it a moment, or the one line that says what happened can be lost (seen on a loaded machine)
        time.sleep(ABORT_GRACE)
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
    except Interrupted as exc:   # a signal before the run started (during it, `execute` checkpoints first)
        return _fail(f"vmc: {exc}", EXIT_INTERRUPTED)
    except BrokenPipeError:   # output piped into head & co.
        sys.stderr.close()
        return EXIT_OK
    except Exception as exc:
        from .output.io import OutputError
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
