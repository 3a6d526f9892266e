#!/usr/bin/env python3
"""Mutation check: plant each known bug of `mutants.toml` in a copy of the repository and require the
test suite to fail.

For every mutant: copy the repository (without .git, .venv, runs, caches) to a temporary directory,
replace the mutant's `old` text by `new` in its file (the text must occur exactly once, else the mutant
is STALE), run `python -m pytest -x -q` on the mutant's test files there with a fresh NUMBA_CACHE_DIR
(numba's cache does not notice changes in functions imported from other files) and a timeout, and
expect a test failure. At the end a baseline job runs every test that killed a mutant on an
unmodified copy: each must pass there (a test that fails anyway kills nothing).

Prints one table row per mutant (id, file, description, result, the first failing test, seconds) and
exits 1 if any mutant survives, is stale, times out or errors, or if the baseline fails.

    python tests/mutants/run.py [--jobs N] [--timeout S] [--only ID ...] [--list] [--keep] [--all-failures]
                                [--tests SELECTION ...]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
TABLE = HERE / "mutants.toml"
# numba's cache files (*.nbi, *.nbc) live in __pycache__ unless NUMBA_CACHE_DIR says otherwise: never copied,
# and every run below points NUMBA_CACHE_DIR at an empty directory of its own
IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", "runs", "__pycache__", ".pytest_cache", "*.egg-info",
                                "*.h5", "build", "dist", "*.nbi", "*.nbc")
FAILED_LINE = re.compile(r"^(FAILED|ERROR) (.+?)(?: - .*)?$")


@dataclass
class Mutant:
    id: str
    file: str
    description: str
    old: str
    new: str
    tests: list[str]


@dataclass
class Outcome:
    status: str          # killed, SURVIVED, STALE, TIMEOUT, ERROR (baseline: passed / FAILED)
    detail: str = ""     # the first failing test, or what went wrong
    seconds: float = 0.0
    log: str = ""


def load(path: Path = TABLE) -> list[Mutant]:
    with open(path, "rb") as fh:
        entries = tomllib.load(fh)["mutant"]
    mutants = [Mutant(e["id"], e["file"], e["description"], e["old"], e["new"], list(e["tests"])) for e in entries]
    ids = [m.id for m in mutants]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SystemExit(f"{path}: duplicate mutant ids {duplicates}")
    for m in mutants:
        if not m.tests or not all(t.startswith("tests/") for t in m.tests):
            raise SystemExit(f"{path}: mutant {m.id}: tests must be files or node ids under tests/")
    return mutants


def stale_reason(m: Mutant, root: Path = ROOT) -> str | None:
    """Why the mutant cannot be applied to the sources under root (None if it can)."""
    path = root / m.file
    if not path.is_file():
        return f"{m.file} does not exist"
    count = path.read_text().count(m.old)
    if count != 1:
        return f"old text found {count} times in {m.file} (needs exactly 1)"
    for t in m.tests:
        if not (root / t.split("::")[0]).is_file():
            return f"test file {t.split('::')[0]} does not exist"
    return None


def failures(output: str) -> list[str]:
    """Node ids of the failed or erroring tests in pytest's short summary, in order."""
    return [m.group(2) for m in map(FAILED_LINE.match, (line.strip() for line in output.splitlines())) if m]


def first_failure(output: str) -> str:
    found = failures(output)
    return found[0] if found else ""


def run_tests(repo: Path, tests: list[str], timeout: float, workdir: Path, stop_first: bool = True
              ) -> tuple[int | None, str]:
    """pytest -q (-x) on `tests` inside repo with a fresh numba cache; (return code or None on timeout, output)."""
    cache = workdir / "numba-cache"
    cache.mkdir(exist_ok=True)
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache), PYTHONDONTWRITEBYTECODE="1", MPLBACKEND="Agg",
               HDF5_USE_FILE_LOCKING="FALSE", PYTHONPATH=os.pathsep.join(
                   [str(repo)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else [])))
    cmd = [sys.executable, "-m", "pytest", *(["-x"] if stop_first else []), "-q", "-p", "no:cacheprovider", *tests]
    # own session: on a timeout the whole process group (pytest and any mpiexec it started) is ended
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out
    return proc.returncode, out


def copy_repo(workdir: Path) -> Path:
    repo = workdir / "repo"
    shutil.copytree(ROOT, repo, ignore=IGNORE, symlinks=True)
    return repo


def check_import(repo: Path) -> str | None:
    """The copy's vmc must be the one imported (not an installed or editable one elsewhere)."""
    env = dict(os.environ, PYTHONPATH=str(repo))
    p = subprocess.run([sys.executable, "-c", "import vmc; print(vmc.__file__)"], cwd=repo, env=env,
                       capture_output=True, text=True)
    where = p.stdout.strip()
    if p.returncode != 0 or not Path(where).resolve().is_relative_to(repo.resolve()):
        return f"vmc imported from {where or p.stderr.strip()!r}, not from the copy {repo}"
    return None


def run_mutant(m: Mutant, timeout: float, keep: bool, all_failures: bool = False) -> Outcome:
    t0 = time.time()
    workdir = Path(tempfile.mkdtemp(prefix=f"vmc-mutant-{m.id}-"))
    try:
        repo = copy_repo(workdir)
        reason = stale_reason(m, repo)
        if reason:
            return Outcome("STALE", reason, time.time() - t0)
        path = repo / m.file
        path.write_text(path.read_text().replace(m.old, m.new))
        rc, out = run_tests(repo, m.tests, timeout, workdir, stop_first=not all_failures)
        seconds = time.time() - t0
        if rc is None:
            return Outcome("TIMEOUT", f"no verdict within {timeout:.0f} s", seconds, out)
        if rc == 0:
            return Outcome("SURVIVED", "all tests passed", seconds, out)
        if rc == 1:
            found = failures(out)
            if not found:
                return Outcome("ERROR", "pytest failed but named no failing test", seconds, out)
            more = f" (+{len(found) - 1} more)" if all_failures and len(found) > 1 else ""
            return Outcome("killed", found[0] + more, seconds, out)
        return Outcome("ERROR", f"pytest exit code {rc}: {first_failure(out) or out.strip().splitlines()[-1:]}",
                       seconds, out)
    finally:
        if keep:
            print(f"  kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run_baseline(tests: list[str], timeout: float) -> Outcome:
    """The given tests on an unmodified copy (with the import check): all must pass."""
    t0 = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="vmc-mutant-baseline-"))
    try:
        repo = copy_repo(workdir)
        problem = check_import(repo)
        if problem:
            return Outcome("FAILED", problem, time.time() - t0)
        rc, out = run_tests(repo, tests, timeout, workdir, stop_first=False)
        if rc == 0:
            return Outcome("passed", f"{len(tests)} killing tests pass without mutants", time.time() - t0)
        found = failures(out)
        return Outcome("FAILED", "timeout" if rc is None else
                       (f"fail without any mutant: {', '.join(found)}" if found else f"exit code {rc}"),
                       time.time() - t0, out)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def table(rows: list[tuple[str, ...]]) -> str:
    header = ("mutant", "file", "description", "result", "killed by", "s")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    fmt = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()   # noqa: E731
    return "\n".join([fmt(header), fmt(tuple("-" * w for w in widths)), *map(fmt, rows)])


BASELINE_TIMEOUTS = 3


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", "-j", type=int, default=int(os.environ.get("NPROC", 2)),
                    help="mutants run in parallel (default: $NPROC or 2)")
    ap.add_argument("--timeout", type=float, default=600.0,
                    help="seconds per mutant (default 600; the baseline: BASELINE_TIMEOUTS times that)")
    ap.add_argument("--only", nargs="+", metavar="ID", help="run only these mutants")
    ap.add_argument("--list", action="store_true", help="list the mutants and check that they apply; run nothing")
    ap.add_argument("--keep", action="store_true", help="keep the temporary copies (for debugging)")
    ap.add_argument("--no-baseline", action="store_true",
                    help="skip re-running the killing tests on an unmodified copy")
    ap.add_argument("--all-failures", action="store_true",
                    help="run each mutant's tests without -x and list every failing test (slower)")
    ap.add_argument("--tests", nargs="+", metavar="SELECTION",
                    help="run these test files / node ids for every mutant instead of each mutant's own list")
    ap.add_argument("--verbose", "-v", action="store_true", help="print pytest's output of every mutant")
    args = ap.parse_args(argv)

    mutants = load()
    if args.tests:
        for m in mutants:
            m.tests = list(args.tests)
    if args.only:
        unknown = sorted(set(args.only) - {m.id for m in mutants})
        if unknown:
            ap.error(f"unknown mutant ids {unknown}")
        mutants = [m for m in mutants if m.id in args.only]
    if args.list:
        bad = 0
        for m in mutants:
            reason = stale_reason(m)
            bad += reason is not None
            print(f"{m.id:14s} {m.file:22s} {m.description:58s} {'STALE: ' + reason if reason else 'ok'}")
        return 1 if bad else 0

    t0 = time.time()
    print(f"mutation check: {len(mutants)} mutants, {args.jobs} in parallel, fresh numba cache each", flush=True)
    outcomes: dict[str, Outcome] = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(run_mutant, m, args.timeout, args.keep, args.all_failures): m for m in mutants}
        for fut in concurrent.futures.as_completed(futures):
            m = futures[fut]
            try:
                outcomes[m.id] = fut.result()
            except Exception as exc:            # a broken runner must not pass for a killed mutant
                outcomes[m.id] = Outcome("ERROR", f"{type(exc).__name__}: {exc}")
            o = outcomes[m.id]
            print(f"  {m.id}: {o.status} {o.detail} ({o.seconds:.0f} s)", flush=True)
            if (args.verbose or o.status != "killed") and o.log:
                print("\n".join("    | " + line for line in o.log.strip().splitlines()[-30:]), flush=True)
            if args.all_failures and o.status == "killed":
                print("\n".join(f"    - {t}" for t in failures(o.log)), flush=True)
    killing = sorted({t for o in outcomes.values() if o.status == "killed" for t in failures(o.log)})
    # the baseline runs every killing test in one session (one per mutant, on one core): the per-mutant timeout
    # times BASELINE_TIMEOUTS (it ran out once at 601 s on a machine loaded by four other jobs)
    base = run_baseline(killing, BASELINE_TIMEOUTS * args.timeout) if killing and not args.no_baseline else None

    rows = [(m.id, m.file, m.description, outcomes[m.id].status, outcomes[m.id].detail,
             f"{outcomes[m.id].seconds:.0f}") for m in mutants]
    print()
    print(table(rows))
    bad = [m.id for m in mutants if outcomes[m.id].status != "killed"]
    print()
    if base is not None:
        print(f"baseline (unmodified copy): {base.status}, {base.detail} ({base.seconds:.0f} s)")
        if base.status != "passed" and base.log:
            print("\n".join("    | " + line for line in base.log.strip().splitlines()[-30:]))
    killed = len(mutants) - len(bad)
    print(f"{killed} of {len(mutants)} mutants killed in {time.time() - t0:.0f} s"
          + (f"; not killed: {', '.join(f'{i} ({outcomes[i].status})' for i in bad)}" if bad else ""))
    return 1 if bad or (base is not None and base.status != "passed") else 0


if __name__ == "__main__":
    sys.exit(main())
