"""Command line: `vmc run`, `vmc analyze`, `vmc report`, `vmc info` (also `python -m vmc ...`).

Exit codes: 0 success, 1 the run failed (numerical blow-up, inconsistent ranks), 2 bad input
(configuration, missing or unreadable files) — reported as one line on stderr, before any work.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import socket
import sys
import tomllib

from . import __version__

EXIT_FAILED, EXIT_USAGE = 1, 2


class UsageError(Exception):
    """Bad input detected before any work: one line for the user, exit code 2."""


def _parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise UsageError(f"--set {text!r}: expected KEY=VALUE, e.g. optimizer.learning_rate=0.001")
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
    stem = os.path.splitext(os.path.basename(args.input))[0]
    return os.path.join("runs", f"{stem}.h5")


def _prepare_output(path: str, force: bool) -> None:
    """Check (on rank 0) that a new output file can be written at `path`."""
    if os.path.exists(path) and not force:
        raise UsageError(f"{path} exists: continue it with --resume {path}, overwrite it with --force, "
                         "or choose another name with -o")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise UsageError(f"{path}: cannot create output directory {directory} ({exc.strerror})") from None
    if not os.access(directory, os.W_OK):
        raise UsageError(f"{path}: output directory {directory} is not writable")


def _collective(comm, fn):
    """Run fn on rank 0 (result there, None elsewhere); every rank raises the same UsageError if it failed."""
    error = None
    result = None
    if comm.is_root:
        try:
            result = fn()
        except UsageError as exc:
            error = str(exc)
    error = comm.bcast(error)
    if error:
        raise UsageError(error)
    return result


def _resolve_run_inputs(args, comm):
    """(config, input text, output path) for `vmc run`, checked on every rank before any work."""
    from . import config as config_mod
    from . import io

    overrides = dict(_parse_override(s) for s in args.set or [])
    try:
        if args.resume:
            def read_stored():
                try:
                    with io.open_for_reading(args.resume) as f:
                        if f.attrs.get("format") not in (io.FORMAT, io.STUDY_FORMAT) or "config" not in f.attrs:
                            raise UsageError(f"{args.resume}: not a vmc output file, cannot resume")
                        return f.attrs["config"], f.attrs.get("input_text", "")
                except io.OutputError as exc:
                    raise UsageError(str(exc)) from None
            stored, text = comm.bcast(_collective(comm, read_stored))
            config = config_mod.from_dict(json.loads(stored), source=args.resume, text=text)
            path = args.resume
        else:
            if not args.input:
                raise UsageError("vmc run: give an input file (INPUT) or --resume FILE")
            config = config_mod.load(args.input)
            path = _output_path(args, config)
        if overrides:
            config = config.with_overrides(overrides)
        for _, point in config.sweep_points():
            config_mod.check_ranks(point, comm.size)
        if not args.resume:
            _collective(comm, lambda: _prepare_output(path, args.force))
    except config_mod.ConfigError as exc:
        raise UsageError(str(exc)) from None
    return config, config.text, path, overrides


def _run_attrs(cfg: dict, text: str, comm) -> dict:
    return {"vmc_version": __version__, "input_text": text, "config": json.dumps(cfg), "n_ranks": comm.size,
            "seed": cfg["seed"], "started": _now(), "host": socket.gethostname(), "command": " ".join(sys.argv)}


def cmd_run(args) -> int:
    """Run one input (or every point of its [sweep]) into one HDF5 file; resume what is unfinished."""
    import h5py

    from . import driver, io
    from .parallel import ParallelError, world

    try:
        comm = world()
    except ParallelError as exc:
        raise UsageError(str(exc)) from None
    config, text, path, overrides = _resolve_run_inputs(args, comm)
    points = config.sweep_points()
    study = bool(config.sweep)
    f = None
    if comm.is_root:
        if args.resume:
            f = h5py.File(path, "a")
            f.attrs["resumed"] = json.dumps(json.loads(f.attrs.get("resumed", "[]")) + [
                {"time": _now(), "ranks": comm.size, "overrides": overrides}])
            if overrides:
                f.attrs["config"] = json.dumps(config.to_dict())
            if f.attrs.get("n_ranks") != comm.size:
                print(f"vmc: note: {path} was run on {f.attrs.get('n_ranks')} ranks, resuming on {comm.size}: "
                      "results are statistically equivalent but not bit-identical", file=sys.stderr)
        else:
            if os.path.exists(path):
                os.remove(path)
            f = h5py.File(path, "w")
            if study:
                f.attrs.update(format=io.STUDY_FORMAT, format_version=io.FORMAT_VERSION, n_points=len(points),
                               **_run_attrs(config.to_dict(), text, comm))
                f.attrs["status"] = "running"
                f.create_group("points")
        f.flush()
    status = 0
    for index, (label, point) in enumerate(points):
        cfg = point.to_dict()
        group, state = None, None
        if comm.is_root:
            name = f"points/{index:03d}" if study else "/"
            if name in f and "format" in f[name].attrs:
                group = f[name]
                state = group.attrs.get("status", "running")
            else:
                group = f.require_group(name)
                io.create_run(group, {**_run_attrs(cfg, text, comm), "label": label, "index": index},
                              n_params=driver.trial_state(cfg).n_params, n_walkers=cfg["sampler"]["walkers"],
                              production_steps=cfg["production"]["steps"],
                              density_bins=cfg["production"]["density_bins"])
                f.flush()
        state = comm.bcast(state)
        if state == "complete":
            continue
        if comm.is_root and study and not args.quiet:
            print(f"point {index + 1}/{len(points)}: {label}", file=sys.stderr)
        if comm.is_root:
            group.attrs["status"] = "running"
            if overrides and state is not None:
                group.attrs["config"] = json.dumps(cfg)
        try:
            summary = driver.run(cfg, group, comm, resume=state is not None, progress=not args.quiet)
        except driver.RunError as exc:
            if comm.is_root:
                group.attrs["status"] = "failed"
                group.attrs["message"] = str(exc)
                f.flush()
                hint = (f"\n  continue with: vmc run --resume {path} --set optimizer.learning_rate=<smaller>"
                        if isinstance(exc, driver.NumericalError) else "")
                print(f"vmc: run failed{' at ' + label if label else ''}: {exc}{hint}", file=sys.stderr)
            status = EXIT_FAILED
            if not study:
                break
            continue
        if comm.is_root:
            group.attrs["status"] = "complete"
            group.attrs["finished"] = _now()
            f.flush()
            print((f"\n[{label}]" if label else "") + _summary_text(summary, cfg, path))
    if comm.is_root:
        if study:
            f.attrs["status"] = "complete" if status == 0 else "failed"
            f.attrs["finished"] = _now()
        f.close()
    return status


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _summary_text(summary: dict, cfg: dict, path: str) -> str:
    from .analysis import reference_energy
    ref = reference_energy(cfg)
    lines = [
        "",
        f"E = {summary['mean']:.6f} +- {summary['error']:.6f}  (blocked error; naive {summary['naive_error']:.6f}, "
        f"tau = {summary['tau']:.1f})" + (f"   {ref[1]}: {ref[0]}" if ref else ""),
        f"variance {summary['variance']:.6g}   acceptance {summary['acceptance']:.3f}   "
        f"<T> = {summary['kinetic']['mean']:.5f}  <V_trap> = {summary['trap']['mean']:.5f}  "
        f"<V_int> = {summary['interaction']['mean']:.5f}",
        f"wall time {summary['wall_time']:.1f} s   {summary['samples_per_s']:.3g} samples/s   "
        f"{summary['iterations']} iterations   output {path}",
    ]
    for w in summary.get("warnings", []):
        lines.append(f"warning: {w}")
    return "\n".join(lines)


def cmd_info(args) -> int:
    from . import io
    try:
        print(io.describe(args.file))
    except (io.OutputError, KeyError) as exc:
        raise UsageError(str(exc)) from None
    return 0


def cmd_analyze(args) -> int:
    from . import analysis
    try:
        result = analysis.analyze_path(args.file)
    except analysis.AnalysisError as exc:
        raise UsageError(str(exc)) from None
    results = result["points"] if "points" in result else [result]
    if args.json:
        print(json.dumps(analysis.to_json(result), indent=2))
    else:
        print("\n\n".join(analysis.format_table(r, f"{args.file} [{r['label']}]" if "label" in r else args.file)
                          for r in results))
    if args.plot:
        analysis.plot(results[-1], args.plot)
    return 0


def cmd_report(args) -> int:
    from . import analysis, report
    try:
        md = report.write_report(args.file, args.output)
    except analysis.AnalysisError as exc:
        raise UsageError(str(exc)) from None
    print(md)
    return 0


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vmc", description="Variational Monte Carlo for electrons in harmonic "
                                "traps with restricted-Boltzmann-machine trial states.")
    p.add_argument("--version", action="version", version=f"vmc {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="optimize and evaluate (under mpiexec: in parallel over walkers)")
    r.add_argument("input", nargs="?", help="TOML input file (see README: input reference)")
    r.add_argument("-o", "--output", help="HDF5 output file (default: runs/<input name>.h5)")
    r.add_argument("--resume", metavar="FILE", help="continue a killed or failed run from its last checkpoint")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override an option, e.g. --set optimizer.learning_rate=0.001 (repeatable)")
    r.add_argument("--force", action="store_true", help="overwrite an existing output file")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)
    a = sub.add_parser("analyze", help="blocking analysis of a run's production series (or a .npy/text column)")
    a.add_argument("file")
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


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except UsageError as exc:
        _print_once(f"vmc: error: {exc}")
        return EXIT_USAGE
    except BrokenPipeError:   # output piped into head & co.
        sys.stderr.close()
        return 0


def _print_once(message: str) -> None:
    rank = int(os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK", "0")) or 0)
    if rank == 0:
        print(message, file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
