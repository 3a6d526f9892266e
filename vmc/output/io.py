"""HDF5 output of a run (written by rank 0 only); `LAYOUT` documents it (the README's table is made from it).

Crash safety. HDF5 files are not journaled: a process killed while HDF5 rewrites its metadata (a dataset
being resized, an object being created) can leave a file no library can open. So every dataset and
every frequently written attribute of a run is created at full size when the file is created
(`create_run`, with space allocated and filled at once), and from then on a run only overwrites
bytes in place: the per-iteration record, the production series, the density and the checkpoint never
allocate. A kill at any moment leaves a file with the structure it was created with; the checkpoint
has two slots, written alternately, and `/checkpoint.current` is switched only after the new slot is
flushed. Because the space is reserved up front, a full disk shows up when the file is created, not in
the middle of a run; any later write error is still caught and reported (`OutputError`). Studies
create every point's group up front for the same reason. Only rare events (the end of a phase, the
final summary, a resume that extends a run) change the file's structure.

Damage. Every dataset carries Fletcher32 checksums (`_early`; size-neutral, so the above holds), and
`verify` reads a whole file before its numbers are used: bytes changed on disk become one line naming
the dataset instead of different numbers. The analysis adds the free physical checks (`vmc.analysis.results`).
Measured cost for the output of inputs/default.toml (300 iterations, 32 x 20000 production, checkpoints):
writing 0.30 s instead of 0.28 s in all, `verify` 0.05 s; wall times of runs unchanged within noise.

A file is valid after every flush: readers (`vmc info`, `vmc analyze`, h5py) may open it while a run
writes it. The number of valid rows is `/optimization.iterations_done` and
`/production.steps_done`; rows beyond them hold NaN or values a resumed run will overwrite.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import tempfile
from dataclasses import dataclass
from typing import Callable

import h5py
import numpy as np

from ..errors import InputError
from ..mc.dmc import STEP_FIELDS as DMC_FIELDS
from ..model.hamiltonian import N_TERMS, OBSERVABLE_NAMES
from .paths import not_regular

FORMAT = "vmc-run"
STUDY_FORMAT = "vmc-study"   # a parameter study: one run group per point under /points
FORMAT_VERSION = 5   # 5: counter-based walker streams (no generator states); 4: Fletcher32 checksums on every
RESUMABLE_SINCE = 5  # dataset; 3: phase timings, the DMC phase and /dmc. Older files are read, not resumed.
ITERATION_FIELDS = ("energy", "error", "variance", "acceptance", "grad_norm", "learning_rate") + OBSERVABLE_NAMES + (
    "wall_time",)
SERIES = ("local_energy",) + OBSERVABLE_NAMES
PRODUCTION_CHUNK = 1000   # production sweeps per write; also the HDF5 chunk width
# Seconds per optimization iteration or production chunk: rank 0's sampling, the slowest and fastest rank's
# sampling, the allreduce (including waiting for the slowest rank), the update, output and checkpoints.
TIMING_FIELDS = ("sampling", "sampling_max", "sampling_min", "reduce", "update", "io")
PHASES = ("optimization", "production", "dmc", "done")
DMC_WALKER_FIELDS = ("local_energy", "velocity_ratio")   # per DMC walker in a checkpoint (dmc_walkers)


# Text attributes that change after a file is created, stored as fixed-length strings of this many
# bytes so that rewriting them never allocates (`set_text`; longer values are cut).
TEXT_CAPACITY = {"status": 16, "message": 1024, "finished": 40, "summary": 16384, "resumed": 8192,
                 "config": 16384}


class OutputError(RuntimeError):
    """The output file cannot be read or written; str() is one line for the user."""


def _fit(value: str, capacity: int) -> bytes:
    return value.encode()[:capacity].decode("utf-8", "ignore").encode()


def init_text(obj, values: dict) -> None:
    """Create the `TEXT_CAPACITY` attributes of a run or study group (missing ones empty)."""
    for name, capacity in TEXT_CAPACITY.items():
        value = str(values.get(name, ""))
        obj.attrs.create(name, _fit(value, capacity), dtype=h5py.string_dtype("utf-8", length=capacity))


def set_text(obj, name: str, value: str) -> None:
    """Rewrite a `TEXT_CAPACITY` attribute in place."""
    obj.attrs.modify(name, _fit(value, TEXT_CAPACITY[name]))


def attr_text(obj, name: str, default: str = "") -> str:
    """An attribute's text, whether stored fixed-length (bytes) or variable-length (str)."""
    if name not in obj.attrs:
        return default
    value = obj.attrs[name]
    return value.decode() if isinstance(value, bytes) else str(value)


def open_for_resume(path: str, record: dict) -> tuple[h5py.File, int]:
    """Open a run or study file to continue it: `record` appended to its `resumed` history (the oldest entries
    go when the attribute is full), its status set to running. Returns the file and the ranks it ran on before."""
    f = h5py.File(path, "r+", locking=False)
    history = json.loads(attr_text(f, "resumed") or "[]") + [record]
    while len(json.dumps(history)) > TEXT_CAPACITY["resumed"] and len(history) > 1:
        history.pop(0)
    set_text(f, "resumed", json.dumps(history))
    set_text(f, "status", "running")
    return f, int(f.attrs.get("n_ranks", 0))


# ----------------------------------------------------------------------------------------------
# Layout
# ----------------------------------------------------------------------------------------------

LAYOUT: tuple[tuple[str, str, str], ...] = (   # path, shape / type, contents
    ("`/` attributes", "",
     "`format` = \"vmc-run\", `format_version`, `vmc_version`, `input_text` (the input file), `config` "
     "(resolved configuration, JSON), `n_ranks`, `threads_per_rank` (BLAS/OpenMP threads per rank: 1 unless "
     "set by `OMP_NUM_THREADS` and the like), `seed`, `started`, `finished`, `host`, `command`, `status` "
     "(pending / running / complete / failed / interrupted), `message`, `summary` (JSON of the final "
     "numbers, with `warnings`), `resumed` (JSON list of resumes: time, ranks, overrides)"),
    ("`/optimization/{" + ",".join(ITERATION_FIELDS) + "}`", "(iterations,) f8",
     "one entry per iteration; attribute `iterations_done` counts the valid ones; `error` from the spread "
     "of walker means; `learning_rate` is the one the update used"),
    ("`/optimization/params`", "(iterations, n_params) f8",
     "the parameters at which each iteration's energy was measured"),
    ("`/optimization/timing`, `/production/timing`", "(iterations or chunks, " + str(len(TIMING_FIELDS))
     + ") f8", "where the time went, per iteration and per production chunk of " + str(PRODUCTION_CHUNK)
     + " steps, in seconds; columns (attribute `fields`): " + ", ".join(f"`{f}`" for f in TIMING_FIELDS)
     + ": rank 0's sampling, the slowest and the fastest rank's sampling, the allreduce (waiting for the "
     "slowest rank included), the parameter update, output and checkpoints (rank 0)"),
    ("`/wavefunction/params`, `/wavefunction/<factor>/<name>`", "f8",
     "final parameters (written when the optimization ends): the flat vector (every factor's variational "
     "parameters in factor order, then the fixed ones such as sigma) and each factor's parameters in their "
     "natural shapes: `rbm/{a,b,W}` (M, N, (M, N); the symmetric RBM: `rbm/{a,b,W,c,V}`), `jastrow/beta`, "
     "`backflow/{v,c,U}` ((2, K), (2, K), (2, 3, K)); "
     "attributes `sigma`, `g`, `beta`, `particles`, `dimensions`, `hidden`, `optimize_sigma`, `rbm`, "
     "`jastrow`, `slater`, `backflow`, `n_opt`"),
    ("`/production/{" + ",".join(SERIES) + "}`", "(walkers, steps) f8",
     "per-walker series of the production run at fixed parameters (E_L = kinetic + trap + interaction; "
     "pair_distance = mean r_ij); attributes `steps_done` (valid columns), `acceptance`, `accepted`, "
     "`proposed`, `walkers`, `sampler`, `wall_seconds`, `cpu_seconds`"),
    ("`/production/density/{r_edges,r,counts,density}`", "(bins,) f8",
     "radial one-body density from the production run, normalised so that the integral of density over "
     "d^D r equals the number of particles"),
    ("`/dmc/{" + ",".join(DMC_FIELDS) + "}`", "(equilibration + steps,) f8",
     "only with `dmc.steps > 0`: one entry per DMC step, equilibration included: the mixed estimates "
     "(weighted averages over the walkers) of E and of its parts and <r_ij>, the trial energy E_T used in "
     "the step's branching, the total weight W (the population; target `dmc.walkers`), the effective number "
     "of walkers W^2 / sum w^2, the step's acceptance, tau_eff, the largest weight relative to the mean; "
     "attributes `steps_done`, `equilibration`, `time_step`, `walkers`, `accepted`, `proposed`, "
     "`acceptance` (measured steps), `node_crossings` (proposals rejected by the fixed-node rule), "
     "`wall_seconds`, `cpu_seconds`"),
    ("`/checkpoint/slot0`, `/checkpoint/slot1`", "",
     "what `--resume` needs, in two alternating slots (attribute `/checkpoint.current` names the complete "
     "one, -1 before the first): `params`, walker `positions` (walkers, M), `optimizer_{t,m,v}`, "
     "`density_counts`, `state` (the run's counters, among them `sweeps`, the walkers' sweeps so far; names "
     "in its attribute `fields`); with DMC also `dmc_positions` (dmc walkers, M) and `dmc_walkers` (dmc "
     "walkers, 2: E_L and the drift-limiting ratio); no random-generator states: the streams are "
     "counter-based (`vmc.mc.streams`), found from the sweep or step count"),
    ("every dataset", "chunked, Fletcher32",
     "from `format_version` 4 on, every dataset is chunked (a fixed-size one as one chunk of its whole "
     "shape) with HDF5's Fletcher32 checksum filter, so any HDF5 reader verifies what it reads; `vmc info`, "
     "`analyze`, `report`, `vmc.load`, `--resume` and `wavefunction.from_file` first read the whole file "
     "(`vmc.output.io.verify`; the checkpoint slot that is not current is skipped) and report a dataset that "
     "fails as damage (one line, exit code 2); files without checksums are read unverified"),
    ("study files", "",
     "root attributes `format` = \"vmc-study\", `n_points`, `config` (with the sweep), ...; one run group "
     "with the layout above per point under `/points/000`, `/points/001`, ..., all created when the "
     "study starts"),
)


def layout_markdown() -> str:
    """The README's HDF5 layout table."""
    rows = ["| path | shape / type | contents |", "|---|---|---|"]
    rows += [f"| {path} | {shape} | {contents} |" for path, shape, contents in LAYOUT]
    return "\n".join(rows) + "\n"


@dataclass(frozen=True)
class RunShape:
    """Sizes that fix a run file's layout."""
    n_params: int
    n_opt: int
    n_visible: int
    walkers: int
    iterations: int
    production_steps: int
    density_bins: int
    state_fields: tuple[str, ...]
    views: tuple[tuple[str, tuple[int, ...]], ...] = ()   # "factor.name" parameter arrays under /wavefunction
    dmc_walkers: int = 0      # DMC population (0: no DMC)
    dmc_steps: int = 0        # DMC steps recorded (equilibration + measured)
    dmc_equilibration: int = 0
    dmc_time_step: float = 0.0

    def file_bytes(self) -> int:
        """Bytes of a run file with this shape (all data; HDF5 metadata comes on top, ~100 kB)."""
        f8 = 8
        optimization = self.iterations * (len(ITERATION_FIELDS) + self.n_params) * f8
        production = self.walkers * self.production_steps * len(SERIES) * f8
        slot = (self.n_params + self.walkers * self.n_visible + 1 + 2 * self.n_opt
                + self.density_bins + len(self.state_fields)) * f8
        wavefunction = 2 * self.n_params * f8
        density = 4 * self.density_bins * f8
        dmc = self.dmc_steps * len(DMC_FIELDS) * f8 + 2 * self.dmc_walkers * (self.n_visible + 2) * f8
        return optimization + production + 2 * slot + wavefunction + density + dmc + 100_000


def _early(shape, maxshape=None, chunks=None):
    """Dataset creation keywords: space allocated and filled when the dataset is created, and every chunk
    checksummed (HDF5's Fletcher32 filter; a fixed-size dataset is one chunk of its whole shape). The checksum
    never changes a chunk's size: measured, file size and chunk addresses unchanged over thousands of row writes."""
    if chunks is None and all(n > 0 for n in shape):
        chunks = tuple(shape)
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    kw = dict(shape=shape, maxshape=maxshape, chunks=chunks, fill_time="alloc")
    if chunks is not None:
        dcpl.set_chunk(chunks)
        dcpl.set_fletcher32()
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    kw["dcpl"] = dcpl
    return kw


# Values per chunk of a dataset that is rewritten while it holds valid data (row records, the DMC series, the
# density): a checksummed chunk is rewritten whole, so a kill in the middle of writing a chunk that spans
# several memory pages could leave it half new and failing its checksum, valid rows included. A chunk of at
# most one page (4096 bytes with the 4-byte checksum) is written by the kernel in one piece; a wider row gets a
# chunk of its own, so a torn write can only hit the row being written, which is not counted yet.
PAGE_VALUES = 511


def _rows_chunk(width: int) -> int:
    """Rows per chunk of a record written row by row: at most one page of values, or one row (see PAGE_VALUES)."""
    return max(1, min(256, PAGE_VALUES // max(1, width)))


def create_run(group: h5py.Group, attrs: dict, shape: RunShape, sampler: str, wavefunction: dict) -> None:
    """Lay out every dataset of a run at full size (see the module docstring); `wavefunction` holds the
    attributes of /wavefunction (values updated in place when the optimization ends)."""
    group.attrs["format"] = FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    for key, value in attrs.items():
        if key not in TEXT_CAPACITY:
            group.attrs[key] = value
    init_text(group, {**attrs, "status": "pending"})
    opt = group.create_group("optimization")
    n_it = max(shape.iterations, 1)
    for name in ITERATION_FIELDS:
        opt.create_dataset(name, dtype="f8", fillvalue=np.nan, **_early((n_it,), (None,), (_rows_chunk(1),)))
    opt.create_dataset("params", dtype="f8", fillvalue=np.nan,
                       **_early((n_it, shape.n_params), (None, shape.n_params),
                                (_rows_chunk(shape.n_params), shape.n_params)))
    opt.attrs["iterations_done"] = np.int64(0)
    _create_timing(opt, n_it)
    wf = group.create_group("wavefunction")
    wf.create_dataset("params", dtype="f8", fillvalue=np.nan, **_early((shape.n_params,)))
    for name, dims in shape.views:
        wf.create_dataset(name.replace(".", "/"), dtype="f8", fillvalue=np.nan, **_early(dims))
    wf.attrs.update(wavefunction)
    prod = group.create_group("production")
    width = min(shape.production_steps, PRODUCTION_CHUNK)
    chunk = (min(shape.walkers, max(1, 65536 // width)), width)
    for name in SERIES:
        prod.create_dataset(name, dtype="f8", fillvalue=np.nan,
                            **_early((shape.walkers, shape.production_steps), (shape.walkers, None), chunk))
    prod.attrs.update(steps_done=np.int64(0), accepted=0.0, proposed=0.0, acceptance=np.nan,
                      walkers=np.int64(shape.walkers), sampler=sampler, wall_seconds=0.0, cpu_seconds=0.0)
    _create_timing(prod, production_chunks(shape.production_steps))
    dens = prod.create_group("density")
    for name, size in (("counts", shape.density_bins), ("r", shape.density_bins), ("density", shape.density_bins),
                       ("r_edges", shape.density_bins + 1)):
        dens.create_dataset(name, dtype="f8", fillvalue=0.0, **_early((size,), chunks=(min(size, PAGE_VALUES),)))
    dens.attrs["normalisation"] = "integral of density over d^D r equals the number of particles"
    if shape.dmc_walkers > 0:
        d = group.create_group("dmc")
        for name in DMC_FIELDS:
            d.create_dataset(name, dtype="f8", fillvalue=np.nan,
                             **_early((shape.dmc_steps,), (None,), (min(shape.dmc_steps, PAGE_VALUES),)))
        d.attrs.update(steps_done=np.int64(0), walkers=np.int64(shape.dmc_walkers), accepted=0.0, proposed=0.0,
                       equilibration=np.int64(shape.dmc_equilibration), time_step=float(shape.dmc_time_step),
                       acceptance=np.nan, node_crossings=0.0, wall_seconds=0.0, cpu_seconds=0.0)
    ck = group.create_group("checkpoint")
    for s in (0, 1):
        slot = ck.create_group(f"slot{s}")
        for name, dims, dtype in _checkpoint_arrays(shape):
            slot.create_dataset(name, dtype=dtype, fillvalue=0, **_early(dims))
        slot["state"].attrs["fields"] = list(shape.state_fields)
    ck.attrs.update(current=np.int64(-1), iteration=np.int64(0), phase=np.int64(0))


def production_chunks(steps: int) -> int:
    return max(1, -(-steps // PRODUCTION_CHUNK))


def _create_timing(group: h5py.Group, rows: int) -> None:
    width = len(TIMING_FIELDS)
    ds = group.create_dataset("timing", dtype="f8", fillvalue=np.nan,
                              **_early((rows, width), (None, width), (_rows_chunk(width), width)))
    ds.attrs["fields"] = list(TIMING_FIELDS)


def _checkpoint_arrays(shape: RunShape):
    return (("params", (shape.n_params,), "f8"), ("positions", (shape.walkers, shape.n_visible), "f8"),
            ("optimizer_t", (1,), "f8"),
            ("optimizer_m", (shape.n_opt,), "f8"), ("optimizer_v", (shape.n_opt,), "f8"),
            ("density_counts", (shape.density_bins,), "f8"), ("state", (len(shape.state_fields),), "f8")) + (
        (("dmc_positions", (shape.dmc_walkers, shape.n_visible), "f8"),
         ("dmc_walkers", (shape.dmc_walkers, len(DMC_WALKER_FIELDS)), "f8")) if shape.dmc_walkers else ())


def extend_run(group: h5py.Group, iterations: int, production_steps: int, dmc_steps: int = 0) -> None:
    """Grow the optimization record, the production series and the DMC record (a resume with more iterations
    or steps)."""
    opt, prod = group["optimization"], group["production"]
    done_before = int(opt.attrs["iterations_done"])
    for ds in [opt[name] for name in ITERATION_FIELDS] + [opt["params"]]:
        _grow(ds, iterations, valid=done_before)
    _grow(opt["timing"], iterations)
    _grow(prod["timing"], production_chunks(production_steps))
    for name in SERIES:
        _grow(prod[name], production_steps, axis=1)
    for name in DMC_FIELDS if "dmc" in group else ():
        _grow(group["dmc"][name], dmc_steps)


def _grow(ds: h5py.Dataset, size: int, axis: int = 0, valid: int | None = None) -> None:
    """Resize `ds` to `size` along `axis` if it is shorter; NaN from row `valid` (default: the old size) on."""
    old = ds.shape[axis]
    if size > old:
        ds.resize(size, axis=axis)
        ds[(slice(None),) * axis + (slice(old if valid is None else valid, None),)] = np.nan


# ----------------------------------------------------------------------------------------------
# Writing (rank 0)
# ----------------------------------------------------------------------------------------------

def describe_write_error(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    code = getattr(exc, "errno", None)
    if code == errno.ENOSPC or "No space left" in text or "errno = 28" in text:
        return "disk full"
    if code == errno.EFBIG or "File too large" in text or "errno = 27" in text:
        return "file size limit reached"
    return f"write error ({text})"


class _Rows:
    """Row writes into one preallocated dataset through h5py's low-level interface, with the file and memory
    selections built once: about a quarter of the cost of `ds[i] = value`, paid every iteration."""

    def __init__(self, ds: h5py.Dataset):
        self._id, self._file_space, self._dtype, self._row = ds.id, ds.id.get_space(), ds.dtype, ds.shape[1:]
        self._memory = h5py.h5s.create_simple((1, *self._row))      # the one-row selection, built once

    def write(self, i: int, values) -> None:
        """Rows i, i + 1, ... of `values` (k rows) in one write."""
        values = np.ascontiguousarray(values, dtype=self._dtype)
        count = (values.shape[0], *self._row)
        self._file_space.select_hyperslab((i,) + (0,) * len(self._row), count)
        memory = self._memory if count[0] == 1 else h5py.h5s.create_simple(count)
        self._id.write(memory, self._file_space, values.reshape(count))


class RunWriter:
    """Rank 0's handle on a run group: cached datasets, and writes that only overwrite bytes in place.

    Every write error becomes one `OutputError` line naming the file, what was being written and what
    the file still holds (e.g. "disk full while writing iteration 41: the file holds 40 complete
    iterations and its last checkpoint; free space and --resume").
    """

    def __init__(self, group: h5py.Group):
        self.group = group
        self.path = group.file.filename
        opt, prod = group["optimization"], group["production"]
        self._fields = [_Rows(opt[name]) for name in ITERATION_FIELDS]
        self._params = _Rows(opt["params"])
        self._opt = opt
        self._series = [prod[name] for name in SERIES]
        self._prod = prod
        self._density = prod["density"]
        self._ck = group["checkpoint"]
        self._timing = {name: _Rows(g["timing"]) for name, g in (("optimization", opt), ("production", prod))}

    def _fail(self, exc: Exception, what: str) -> OutputError:
        held = (f"the file holds {int(self._opt.attrs['iterations_done'])} complete iterations, "
                f"{int(self._prod.attrs['steps_done'])} production steps and its last checkpoint")
        return OutputError(f"{describe_write_error(exc)} while writing {what} to {self.path}: {held}; "
                           f"free space and continue with --resume {self.path}")

    def iterations(self, first: int, rows: list[dict], params: np.ndarray) -> None:
        """Rows first, first + 1, ... of the optimization record (one dict per iteration, params (k, n)), one
        write per dataset whatever k; `iterations_done` becomes first + k."""
        k = len(rows)
        try:
            for ds, name in zip(self._fields, ITERATION_FIELDS):
                ds.write(first, [row[name] for row in rows])
            self._params.write(first, params)
            self._opt.attrs.modify("iterations_done", first + k)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, f"iteration {first}" if k == 1 else f"iterations {first}-{first + k - 1}") from None

    def timings(self, phase: str, first: int, rows: np.ndarray) -> None:
        """Rows first, first + 1, ... of /<phase>/timing (rows (k, len(TIMING_FIELDS))) in one write, flushed with
        the next record."""
        try:
            self._timing[phase].write(first, rows)
        except (OSError, RuntimeError) as exc:
            which = f"row {first}" if len(rows) == 1 else f"rows {first}-{first + len(rows) - 1}"
            raise self._fail(exc, f"the timing of {phase} {which}") from None

    def set_iterations_done(self, n: int) -> None:
        self._opt.attrs.modify("iterations_done", n)

    def wavefunction(self, params: np.ndarray, views: dict, attrs: dict) -> None:
        """The final parameters, their named views and attributes (same names and types as at creation)."""
        try:
            wf = self.group["wavefunction"]
            wf["params"][...] = params
            for name, view in views.items():
                wf[name.replace(".", "/")][...] = view
            for key, value in attrs.items():
                wf.attrs.modify(key, value)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, "the final parameters") from None

    def production(self, start: int, observables: np.ndarray, density: np.ndarray, r_max: float,
                   particles: int, dimensions: int, accepted: float, proposed: float) -> None:
        """Observables (walkers, steps, observables) at production steps [start, start + steps), and the running
        density histogram and acceptance."""
        stop = start + observables.shape[1]
        try:
            columns = np.ascontiguousarray(np.moveaxis(observables, -1, 0))   # (observables, walkers, steps)
            self._series[0][:, start:stop] = columns[:N_TERMS].sum(axis=0)
            for ds, col in zip(self._series[1:], columns):
                ds[:, start:stop] = col
            edges, r, profile = density_profile(density, r_max, particles, dimensions)
            for name, values in (("counts", density), ("r_edges", edges), ("r", r), ("density", profile)):
                self._density[name][...] = values
            self._prod.attrs.modify("accepted", float(accepted))
            self._prod.attrs.modify("proposed", float(proposed))
            self._prod.attrs.modify("acceptance", float(accepted / proposed) if proposed else math.nan)
            self._prod.attrs.modify("steps_done", stop)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, f"production steps {start}-{stop}") from None

    def dmc(self, start: int, records: np.ndarray, attrs: dict) -> None:
        """DMC steps [start, start + n) (records (n, len(DMC_FIELDS))) and the group's attributes."""
        stop = start + records.shape[0]
        try:
            d = self.group["dmc"]
            for k, name in enumerate(DMC_FIELDS):
                d[name][start:stop] = records[:, k]
            for key, value in attrs.items():
                d.attrs.modify(key, value)
            d.attrs.modify("steps_done", stop)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, f"DMC steps {start}-{stop}") from None

    def production_times(self, wall_seconds: float, cpu_seconds: float) -> None:
        self._prod.attrs.modify("wall_seconds", float(wall_seconds))
        self._prod.attrs.modify("cpu_seconds", float(cpu_seconds))

    def checkpoint(self, arrays: dict, state: np.ndarray, iteration: int, phase: int) -> None:
        """Write `arrays` (see `_checkpoint_arrays`) and the state vector into the slot not in use, flush,
        then make it current (flushed again): a kill at any moment leaves one complete slot."""
        try:
            target = 1 - int(self._ck.attrs["current"]) if int(self._ck.attrs["current"]) >= 0 else 0
            slot = self._ck[f"slot{target}"]
            for key, value in arrays.items():
                slot[key][...] = value
            slot["state"][...] = state
            self.group.file.flush()
            self._ck.attrs.modify("current", target)
            self._ck.attrs.modify("iteration", iteration)
            self._ck.attrs.modify("phase", phase)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, "a checkpoint") from None

    def status(self, status: str, message: str = "", **text_attrs) -> None:
        """Set the run's status and message (and other `TEXT_CAPACITY` attributes), in place."""
        try:
            set_text(self.group, "status", status)
            set_text(self.group, "message", message)
            for key, value in text_attrs.items():
                set_text(self.group, key, value)
            self.group.file.flush()
        except (OSError, RuntimeError) as exc:
            raise self._fail(exc, "the run's status") from None


def density_profile(counts: np.ndarray, r_max: float, particles: int, dimensions: int):
    """(r_edges, r, rho) of a radial histogram, normalised so that integral rho(r) d^D r = P.

    rho(r_i) = P * counts_i / (sum(counts) * shell volume of bin i);
    shell volume = V_D (r_hi^D - r_lo^D), V_D = pi^(D/2) / Gamma(D/2 + 1).

    >>> edges, r, rho = density_profile(np.array([1.0, 1.0]), 2.0, 1, 1)   # 1D: shells of length 2
    >>> np.round(rho, 12).tolist()
    [0.25, 0.25]
    """
    edges = np.linspace(0.0, r_max, counts.size + 1)
    unit = math.pi ** (dimensions / 2) / math.gamma(dimensions / 2 + 1)
    shell = unit * (edges[1:] ** dimensions - edges[:-1] ** dimensions)
    total = counts.sum()
    density = particles * counts / (total * shell) if total > 0 else np.zeros_like(counts)
    return edges, 0.5 * (edges[1:] + edges[:-1]), density


# ----------------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------------

_COUNTERS = {"optimization": ("iterations_done", "energy", 0), "production": ("steps_done", "local_energy", 1),
             "dmc": ("steps_done", "energy", 0)}


def done(group: h5py.Group, phase: str) -> int:
    """The valid length of a phase's record: iterations ("optimization") or steps ("production", "dmc"), from
    its counter, checked against the size of the record (a damaged counter is an OutputError that names it)."""
    attr, dataset, axis = _COUNTERS[phase]
    g = group[phase]
    capacity = g[dataset].shape[axis]
    value = g.attrs.get(attr, capacity)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = -1
    if n != value or not 0 <= n <= capacity:
        raise OutputError(f"{group.file.filename}: damaged: {g.name}.{attr} = {value!r}, outside the record's "
                          f"0 ... {capacity}")
    return n


def history(group: h5py.Group, name: str = "energy") -> np.ndarray:
    """The valid part of an optimization record (`ITERATION_FIELDS` or "params")."""
    return group["optimization"][name][:done(group, "optimization")]


@dataclass
class Checkpoint:
    arrays: dict
    state: dict


def read_checkpoint(group: h5py.Group) -> Checkpoint | None:
    """The last complete checkpoint, or None before the first."""
    ck = group["checkpoint"]
    current = int(ck.attrs.get("current", -1))
    if current < 0:
        return None
    slot = ck[f"slot{current}"]
    names = [str(n) for n in slot["state"].attrs["fields"]]
    state = dict(zip(names, slot["state"][...].tolist()))
    arrays = {key: slot[key][...] for key in slot if key != "state"}
    return Checkpoint(arrays, state)


def open_for_reading(path: str) -> h5py.File:
    """Open any output file for reading, also while a run writes it; one-line OutputError otherwise (also for
    a path that is not a regular file: h5py would block on a named pipe)."""
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory, not an output file")
    problem = not_regular(path, "output file")
    if problem:
        raise OutputError(problem)
    try:
        f = h5py.File(path, "r", locking=False)
    except FileNotFoundError:
        raise OutputError(f"{path}: no such file") from None
    except OSError as exc:
        reason = str(exc).splitlines()[0]
        if "signature" in reason:
            reason = "not an HDF5 file"
        raise OutputError(f"{path}: not a readable HDF5 file ({reason})") from None
    return f


@contextlib.contextmanager
def reading(path: str, error: type[Exception] = OutputError, damaged: str = "damaged or incomplete vmc file"):
    """The output file at `path` opened (`open_for_reading`) and verified (`verify`). Whatever fails inside
    reaches the caller as one `error` line: an `error` raised inside as it is, an OutputError with its message,
    any other read failure (a missing dataset, a bad attribute) as "<path>: <damaged> (<why>)"."""
    try:
        with open_for_reading(path) as f:
            verify(f, path)
            yield f
    except error:
        raise
    except OutputError as exc:
        raise error(str(exc)) from None
    except (KeyError, OSError, RuntimeError, ValueError) as exc:
        raise error(f"{path}: {damaged} ({str(exc).splitlines()[0]})") from None


VERIFY_BLOCK_BYTES = 1 << 25   # 32 MB: what `verify` reads at a time
VERIFY_RETRIES = 2             # re-reads of a failing block (a run may be rewriting that chunk)


def verify(obj: h5py.Group, path: str | None = None) -> None:
    """Read every checksummed dataset of a file or group once, in blocks, and raise one-line OutputError
    naming the first dataset whose bytes changed after they were written ("<path>: damaged: dataset
    /production/kinetic fails its checksum ..."), so that a damaged file is reported instead of giving
    different numbers. Datasets without the Fletcher32 filter (files before format_version 4) are not
    checked; neither is a checkpoint slot that is not current (a kill may have left it half written)."""
    path = path or obj.file.filename
    datasets = []
    obj.visititems(lambda name, item: datasets.append(item) if _checked(item) else None)
    for ds in datasets:
        _verify_dataset(ds, path)


def _checked(item) -> bool:
    """Whether `verify` reads this object: a checksummed dataset outside the unused checkpoint slot."""
    if not isinstance(item, h5py.Dataset) or not item.fletcher32:
        return False
    slot = item.parent
    name = slot.name.rsplit("/", 1)[-1]
    if name in ("slot0", "slot1") and slot.parent.name.endswith("checkpoint"):
        return name == f"slot{int(slot.parent.attrs.get('current', -1))}"
    return True


def _verify_dataset(ds: h5py.Dataset, path: str) -> None:
    """Read `ds` in whole-chunk blocks along its first axis; a block that fails is read again after a
    pause (a writer may have been rewriting that chunk) before it counts as damage."""
    import time
    if ds.size == 0:
        return
    row_bytes = ds.dtype.itemsize * math.prod(ds.shape[1:])
    rows = max(1, VERIFY_BLOCK_BYTES // max(1, row_bytes)) // ds.chunks[0] * ds.chunks[0] or ds.chunks[0]
    for start in range(0, ds.shape[0], rows):
        stop = min(start + rows, ds.shape[0])
        for attempt in range(VERIFY_RETRIES + 1):
            try:
                ds[start:stop]
                break
            except (OSError, RuntimeError) as exc:
                if attempt == VERIFY_RETRIES:
                    raise OutputError(_damage(ds, path, start, stop, exc)) from None
                time.sleep(0.1)


def _damage(ds: h5py.Dataset, path: str, start: int, stop: int, exc: Exception) -> str:
    reason = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
    where = f"entries {start}-{stop - 1}" if ds.ndim == 1 else f"rows {start}-{stop - 1}"
    if "filter" in reason or "checksum" in reason:
        return (f"{path}: damaged: dataset {ds.name} fails its checksum ({where}): its bytes changed after "
                "they were written")
    return f"{path}: damaged: dataset {ds.name} cannot be read ({where}: {reason})"


def lock(path: str) -> int:
    """Take an exclusive advisory lock (flock) on `path` for the life of this process, or raise
    OutputError when another process holds it (a run writing the file). Returns the descriptor."""
    problem = not_regular(path, "output file")
    if problem:
        raise OutputError(problem)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    return _lock_fd(fd, path)


def _lock_fd(fd: int, path: str) -> int:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise OutputError(f"{path} is in use: another vmc run is writing it (wait for it to end, or "
                          "choose another output file)") from None
    except OSError:
        pass   # a file system without locks: nothing to enforce
    return fd


def writer_present(path: str) -> bool | None:
    """Whether a run holds the lock on `path` (is writing it) right now; None where locks are not supported.
    Probes with a shared lock, released at once, so it never stands in a writer's way for long."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)


def claim_output(path: str, force: bool) -> int:
    """Check, before any work, that a new output file can be written at `path`: not a directory or another
    special file, its directory writable (created if missing), no existing file unless `force`, and with
    `force` no run writing the existing file. Returns the lock on the file --force will replace (-1 if none):
    held until `create_output` has put the new file in its place, so no other run can take it meanwhile.
    The final decision is `create_output`'s: this check only gives the early, friendly refusal."""
    if os.path.isdir(path):
        raise InputError(f"{path} is a directory: give a file name for the output (-o DIR/NAME.h5)")
    problem = not_regular(path, "output file")
    if problem:
        raise InputError(problem)
    fd = -1
    if os.path.lexists(path):
        if not force:
            raise InputError(_exists(path))
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


def _exists(path: str) -> str:
    return (f"{path} exists: continue it with --resume {path}, overwrite it with --force, "
            "or choose another name with -o")


def create_output(path: str, force: bool, lay_out: Callable[[h5py.File], None]) -> tuple[h5py.File, int]:
    """Create the output file at `path` so that exactly one of several racing runs gets it: `lay_out` fills a
    file under a short temporary name in the same directory (a kill meanwhile leaves no half-made output),
    this process locks it, and only then is it put in place, atomically: by a hard link, which fails when
    `path` exists (another run got there first: InputError, exit code 2, and that run's file is untouched),
    or with `force` by a rename over the file `claim_output` has locked. Returns the file open for writing and
    its lock. Raises OutputError when the file cannot be written."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".vmc-", suffix=".creating", dir=directory)
    try:
        os.close(fd)
        with h5py.File(tmp, "w", locking=False) as f:
            lay_out(f)
        fd = _lock_fd(os.open(tmp, os.O_RDONLY), tmp)
        try:
            _place(tmp, path, force)
        except BaseException:
            os.close(fd)
            raise
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return h5py.File(path, "r+", locking=False), fd


def _place(tmp: str, path: str, force: bool) -> None:
    if force:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InputError(_exists(path) + " (another run created it meanwhile)") from None
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        # no hard links on this file system: claim the name by an exclusive create, then rename over it
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            raise InputError(_exists(path) + " (another run created it meanwhile)") from None
        os.replace(tmp, path)


def describe(path: str) -> str:
    """A few lines on what an output file holds (for `vmc info`)."""
    with reading(path) as f:
        return _describe(f, path)


def _run_lines(g: h5py.Group, indent: str = "  ") -> list[str]:
    cfg = json.loads(g.attrs["config"])
    o = cfg["optimizer"]
    n_it = done(g, "optimization")
    prod = g["production"]
    energy = history(g)
    lines = [f"{indent}optimization: {n_it} of {o['iterations']} iterations ({o['kind']})"
             + (f", last E = {energy[-1]:.6f} +- {history(g, 'error')[-1]:.6f}" if n_it else ""),
             f"{indent}production: {done(g, 'production')} of {prod['local_energy'].shape[1]} steps x "
             f"{prod['local_energy'].shape[0]} chains"]
    if "dmc" in g:
        d = g["dmc"]
        n, eq = done(g, "dmc"), int(d.attrs.get("equilibration", 0))
        energy = d["energy"][:n]
        lines.append(f"{indent}dmc: {n} of {d['energy'].shape[0]} steps ({eq} equilibration), "
                     f"{int(d.attrs['walkers'])} walkers, time step {cfg['dmc']['time_step']}"
                     + (f", last E = {energy[-1]:.6f}, population {d['population'][n - 1]:.1f}" if n else ""))
    ck = g["checkpoint"]
    if int(ck.attrs.get("current", 0)) >= 0:
        phase = ck.attrs.get("phase", 0)
        phase = PHASES[int(phase)] if not isinstance(phase, str) else phase
        lines.append(f"{indent}checkpoint: iteration {int(ck.attrs.get('iteration', 0))}, phase {phase}")
    breakdown = time_breakdown(g)
    if breakdown:
        lines.append(f"{indent}time: {breakdown}")
    if attr_text(g, "summary"):
        s = json.loads(g.attrs["summary"])
        for w in s.get("warnings", []):
            lines.append(f"{indent}warning: {w}")
    return lines


def unfinished(group: h5py.Group) -> str | None:
    """None for a complete run; else one line saying that it is not, how far it got and whether a run is still
    writing it ("killed" when the status says running but no process holds the file's lock)."""
    status = attr_text(group, "status", "complete")
    if status == "complete":
        return None
    if status in ("running", "pending") and writer_present(group.file.filename) is False:
        status += " in the file, but no run holds it: killed or crashed"
    parts = [f"optimization {done(group, 'optimization')} of {group['optimization/energy'].shape[0]} iterations",
             f"production {done(group, 'production')} of {group['production/local_energy'].shape[1]} steps"]
    if "dmc" in group:
        parts.append(f"DMC {done(group, 'dmc')} of {group['dmc/energy'].shape[0]} steps")
    return (f"unfinished run (status {status}): {', '.join(parts)}; numbers are partial "
            f"(continue with vmc run --resume {group.file.filename})")


def time_breakdown(g: h5py.Group) -> str | None:
    """Where a run's time went, from its timing records: "sampling 91% · reduce 2% · update 1% · io 6%",
    plus the load imbalance (total sampling time of the slowest rank over that of the fastest) with
    several ranks; None for files without timing."""
    rows = [g[p]["timing"][...] for p in ("optimization", "production") if "timing" in g[p]]
    rows = np.concatenate(rows) if rows else np.empty((0, len(TIMING_FIELDS)))
    rows = rows[np.all(np.isfinite(rows), axis=1)]
    if not rows.size:
        return None
    total = dict(zip(TIMING_FIELDS, rows.sum(axis=0)))
    parts = ("sampling", "reduce", "update", "io")
    whole = sum(total[k] for k in parts)
    text = " · ".join(f"{k} {100 * total[k] / whole:.0f}%" for k in parts) + f" of {whole:.1f} s"
    if g.attrs.get("n_ranks", 1) > 1 and total["sampling_min"] > 0:
        text += f"; sampling slowest/fastest rank {total['sampling_max'] / total['sampling_min']:.2f}"
    return text


def _describe(f: h5py.File, path: str) -> str:
    if f.attrs.get("format") == STUDY_FORMAT:
        pts = f.get("points", {})
        lines = [f"{path}: vmc {f.attrs.get('vmc_version', '?')} parameter study, status {attr_text(f, 'status')}, "
                 f"{sum(attr_text(pts[k], 'status') == 'complete' for k in pts)} of {f.attrs.get('n_points')} "
                 f"points complete, {f.attrs.get('n_ranks')} ranks"]
        for k in sorted(pts):
            g = pts[k]
            lines.append(f"  {k} {g.attrs.get('label')}: {attr_text(g, 'status')}, "
                         f"{done(g, 'optimization')} iterations, production {done(g, 'production')} steps")
        return "\n".join(lines)
    if f.attrs.get("format") != FORMAT:
        raise OutputError(f"{path}: not a vmc output file (no format attribute '{FORMAT}')")
    cfg = json.loads(f.attrs["config"])
    s, w = cfg["system"], cfg["wavefunction"]
    note = unfinished(f)
    lines = [
        f"{path}: vmc {f.attrs.get('vmc_version', '?')} run, status {attr_text(f, 'status', '?')}"
        + (f" ({attr_text(f, 'message')})" if attr_text(f, "message") else ""),
    ] + ([f"  warning: {note}"] if note else []) + [
        f"  system: {s['particles']} particles, {s['dimensions']}D, omega = {s['omega']}, "
        f"interaction {'on' if s['interaction'] else 'off'}",
        f"  trial state: RBM ({w['hidden']} hidden units, g = {w['g']})"
        + (" x Padé-Jastrow" if w.get("jastrow", "none") != "none" else "")
        + (" x Slater determinants" if w.get("slater") else "")
        + (" (backflow)" if w.get("slater") and w.get("backflow", "none") != "none" else "")
        + f"; sampler {cfg['sampler']['kind']}, "
        f"{cfg['sampler']['walkers']} walkers on {f.attrs.get('n_ranks', '?')} ranks, seed {f.attrs.get('seed')}",
    ] + _run_lines(f) + [
        f"  started {f.attrs.get('started', '?')}, finished {attr_text(f, 'finished') or '-'}, "
        f"host {f.attrs.get('host', '?')}",
    ]
    return "\n".join(lines)
