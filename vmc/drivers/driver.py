"""The VMC run: energy minimization, then a production evaluation at fixed parameters.

One loop per phase, top to bottom (`run` -> `optimize` -> `produce` -> `finish`):

1. `build`: the trial state, Hamiltonian, sampler and optimizer from the run's typed specification
   (`vmc.input.spec`); every random number comes from the root seed: its child 0 draws the initial parameters
   (identical on every rank), and walker w's sweep s draws from the stream (seed, w, s) (`vmc.mc.streams`);
2. `optimize`: each iteration every rank samples its walkers, the ranks allreduce one vector (the sums
   of E_L, E_L^2, O, E_L O (and O O^T for SR), plus the control flags: a stop request from a signal on
   any rank and "checkpoint due" from rank 0's clock); every rank computes the same gradient and the
   same update (no broadcast); rank 0 records the iteration's row (in batches, `Iterations`);
3. `produce`: sampling at fixed parameters in chunks of `io.PRODUCTION_CHUNK` sweeps, each stored as it
   completes (one allreduce per chunk);
4. `diffuse` (only with `dmc.steps > 0`): fixed-node diffusion Monte Carlo from the production's final
   walkers (`vmc.mc.dmc`), in chunks of `vmc.mc.dmc.CHUNK` steps, each stored as it completes;
5. `finish`: the blocked error of the production energy (`vmc.analysis.blocking`) is the number the run reports,
   with warnings (acceptance near 0 or 1) kept in the file, and the DMC energy when there is one.

With `wavefunction.from_file` the parameters start from an earlier run's `/wavefunction/params`
(`start_parameters`); with `optimizer.iterations = 0` such a run evaluates that state, by VMC and DMC.

Checkpoints (`RunState`, whose sweep count positions the walkers' streams, plus parameters, optimizer state and
walker positions) are written every `checkpoint_interval` seconds, at the end of each phase, on a stop request
and on failure. A resumed run continues exactly where the checkpoint was taken: same chunks, same streams,
same sums, so it ends on the same numbers as an uninterrupted run with the same seed and ranks,
whatever the checkpoint interval.

Sanity (`Guard`): an iteration whose energy is absurd stops the run with `NumericalError`, its checkpoint at
the last good iteration, so `--resume --set optimizer.learning_rate=<smaller>` continues from good parameters.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field, fields, replace
from typing import Callable

import numpy as np
from tqdm.auto import tqdm

from ..analysis.results import energy_lower_bound
from ..errors import Interrupted, NumericalError, RunError
from ..input.config import check_ranks
from ..input.spec import SHAPE_KEYS, Spec
from ..mc import dmc
from ..mc.estimators import Moments, sums
from ..mc.optimizers import Optimizer
from ..mc.samplers import Sampler, Walkers
from ..mc.streams import key_of
from ..model.hamiltonian import OBSERVABLE_NAMES, Hamiltonian
from ..model.wavefunction import TrialState
from ..output import io
from ..parallel import Comm, walker_range

OPTIMIZATION, PRODUCTION, DMC, DONE = 0, 1, 2, 3


@dataclass
class RunState:
    """The counters a checkpoint stores beside the arrays: the run's own, then the DMC population's
    (`vmc.mc.dmc.Counters`, stored as dmc_<name>) and the DMC times; `names` gives the stored order."""
    iteration: int = 0                 # optimization iterations completed
    phase: int = OPTIMIZATION
    production_steps: int = 0          # production sweeps completed
    sweeps: int = 0                    # sweeps every VMC walker has made (its stream's position; set by `snapshot`)
    calm: int = 0                      # consecutive iterations with |Delta E| below its error (patience)
    last_energy: float = math.nan
    last_error: float = math.nan
    best_energy: float = math.inf
    accepted: float = 0.0              # production moves accepted / proposed
    proposed: float = 0.0
    wall_seconds: float = 0.0          # production wall and CPU seconds (CPU summed over ranks)
    cpu_seconds: float = 0.0
    dmc: dmc.Counters = field(default_factory=dmc.Counters)
    dmc_wall_seconds: float = 0.0
    dmc_cpu_seconds: float = 0.0

    @staticmethod
    def _flat(cls) -> list[tuple[str, str, str | None]]:
        """(stored name, type, field of `dmc.Counters` or None) in the stored order."""
        out = []
        for f in fields(cls):
            if f.name == "dmc":
                out += [(f"dmc_{c.name}", c.type, c.name) for c in fields(dmc.Counters)]
            else:
                out.append((f.name, f.type, None))
        return out

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(name for name, _, _ in cls._flat(cls))

    def to_array(self) -> np.ndarray:
        return np.array([getattr(self.dmc, c) if c else getattr(self, name) for name, _, c in self._flat(type(self))],
                        dtype=float)

    @classmethod
    def from_dict(cls, values: dict) -> "RunState":
        """From stored names and numbers (unknown names ignored, missing ones at their defaults)."""
        own, counters = {}, {}
        for name, kind, c in cls._flat(cls):
            if name in values:
                v = values[name]
                (counters if c else own)[c or name] = int(v) if kind == "int" else float(v)
        return cls(**own, dmc=dmc.Counters(**counters))


@dataclass
class Setup:
    wf: TrialState
    hamiltonian: Hamiltonian
    sampler: Sampler
    optimizer: Optimizer
    walkers: Walkers
    walker_ids: range


def run_shape(spec: Spec) -> io.RunShape:
    """The layout of a run's output file (see `vmc.output.io.create_run`)."""
    wf, d = TrialState.from_spec(spec), spec.dmc
    on = spec.dmc_on
    return io.RunShape(n_params=wf.n_params, n_opt=wf.n_opt, n_visible=wf.n_visible,
                       walkers=spec.sampler.walkers, iterations=spec.optimizer.iterations,
                       production_steps=spec.production.steps, density_bins=spec.production.density_bins,
                       state_fields=RunState.names(), views=tuple((k, v.shape) for k, v in wf.named().items()),
                       dmc_walkers=d.walkers if on else 0, dmc_steps=d.equilibration + d.steps if on else 0,
                       dmc_equilibration=d.equilibration, dmc_time_step=d.time_step)


_BACKFLOW = ("wavefunction.backflow", "wavefunction.backflow_hidden")


def warm_start(spec: Spec, params: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """The parameters of this backflow trial state from `params` of the same state without backflow: the
    stored factors that have parameters are a prefix of this state's factors (the determinants, which have
    none, become the backflow factor); each of their blocks is copied by name, the backflow's keep their
    values in `initial` (v = 0: the same psi as the stored state)."""
    plain = TrialState.from_spec(spec.with_section("wavefunction", backflow="none"))
    if params.shape != (plain.n_params,):
        raise ValueError(f"holds {params.size} parameters, the state without backflow has {plain.n_params}")
    plain.params[:] = params
    wf = TrialState.from_spec(spec)
    wf.params[:] = initial
    for k, (f, views) in enumerate(zip(plain.factors, plain.views)):
        if not views:
            continue
        if wf.factors[k].name != f.name:
            raise ValueError(f"its factor {k} is {f.name}, this trial state's {wf.factors[k].name}")
        for name, block in views.items():
            wf.views[k][name][:] = block
    return wf.params.copy()


def start_parameters(spec: Spec, initial: np.ndarray | None = None) -> np.ndarray:
    """The parameters of `wavefunction.from_file` (an earlier run's final `/wavefunction/params`); raises
    ValueError with one line when the file cannot give them to this trial state. A file of the same state
    without backflow warm-starts a backflow state (`warm_start`; the backflow parameters from `initial`,
    this run's fresh parameters)."""
    import json
    path = spec.wavefunction.from_file
    where = f"wavefunction.from_file = \"{path}\""
    try:
        with io.open_for_reading(path) as f:
            if f.attrs.get("format") != io.FORMAT or "config" not in f.attrs:
                raise ValueError(f"{where}: not a vmc run file (a study's points cannot be used)")
            io.verify(f, path)
            stored = Spec.from_dict(json.loads(f.attrs["config"]))
            params = f["wavefunction/params"][...]
    except io.OutputError as exc:
        raise ValueError(f"{where}: {exc}") from None
    except (KeyError, OSError, RuntimeError) as exc:
        raise ValueError(f"{where}: damaged or incomplete run file ({str(exc).splitlines()[0]})") from None
    warm = spec.wavefunction.backflow != "none" and stored.wavefunction.backflow == "none"
    for key in SHAPE_KEYS:
        mine, theirs = spec.value(key), stored.value(key)
        if mine != theirs and not (warm and key in _BACKFLOW):
            raise ValueError(f"{where}: its trial state has {key} = {theirs!r}, this input {mine!r}")
    fresh = TrialState.from_spec(spec)
    if warm and np.all(np.isfinite(params)):
        try:
            return warm_start(spec, params, fresh.params if initial is None else initial)
        except ValueError as exc:
            raise ValueError(f"{where}: cannot warm-start the backflow state ({exc})") from None
    if params.shape != (fresh.n_params,) or not np.all(np.isfinite(params)):
        raise ValueError(f"{where}: holds no final parameters of this shape (did its optimization finish?)")
    return params


def build(spec: Spec, comm: Comm) -> Setup:
    """Objects of a run from its specification (`vmc.input.spec`)."""
    s, smp, o = spec.system, spec.sampler, spec.optimizer
    check_ranks(spec, comm.size)
    param_seq = np.random.SeedSequence(spec.seed, spawn_key=(0,))   # child 0 (`vmc.mc.streams.key_of`)
    wf = TrialState.from_spec(spec)
    wf.randomize(np.random.default_rng(param_seq), spec.wavefunction.init_scale)
    ham = Hamiltonian(s.particles, s.dimensions, s.omega, s.interaction)
    sampler = Sampler(smp.kind, step=smp.step, dt=smp.dt)
    opt = Optimizer(o.kind, wf.n_opt, learning_rate=o.learning_rate, schedule=o.schedule, decay=o.decay,
                    momentum=o.momentum, beta1=o.beta1, beta2=o.beta2, epsilon=o.epsilon, sr_shift=o.sr_shift,
                    max_step=o.max_step)
    ids = walker_range(smp.walkers, comm.rank, comm.size)
    walkers = Walkers.start(spec.seed, ids, wf.n_visible, spread=1.0 / np.sqrt(s.omega))
    return Setup(wf, ham, sampler, opt, walkers, ids)


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    """Everything a checkpoint holds, for this rank's walkers (taken in memory, written on demand)."""
    state: RunState
    params: np.ndarray
    optimizer: dict
    positions: np.ndarray
    density_counts: np.ndarray
    dmc: tuple | None = None      # (this rank's DMC positions, and E_L and ratio of its DMC walkers)


def restore(comm: Comm, group, setup: Setup) -> tuple[RunState, np.ndarray, dict] | None:
    """The last checkpoint, read on rank 0 and shared: every rank takes its walkers (None if there is none);
    returns the state, the density counts and the checkpoint's arrays."""
    ck = io.read_checkpoint(group) if group is not None else None
    ck = comm.bcast(ck)
    if ck is None:
        return None
    a = ck.arrays
    setup.wf.params[:] = a["params"]
    ids = setup.walker_ids
    setup.walkers.positions[:] = a["positions"][ids.start:ids.stop]
    for key in setup.optimizer.state:
        setup.optimizer.state[key][...] = a[f"optimizer_{key}"]
    state = RunState.from_dict(ck.state)
    setup.walkers.sweeps = state.sweeps
    return state, a["density_counts"], a


class PhaseTimer:
    """Seconds spent in each phase of one iteration or production chunk (`vmc.output.io.TIMING_FIELDS`). Every rank
    puts its own sampling time into the allreduce (`own_sampling`), so the slowest and the fastest rank
    are known without another collective."""

    def __init__(self, comm: Comm):
        self.comm = comm
        self.seconds = dict.fromkeys(io.TIMING_FIELDS, 0.0)
        self.last = time.perf_counter()

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.seconds[phase] += now - self.last
        self.last = now

    def own_sampling(self) -> np.ndarray:
        own = np.zeros(self.comm.size)
        own[self.comm.rank] = self.seconds["sampling"]
        return own

    def ranks_sampling(self, per_rank: np.ndarray) -> None:
        self.seconds["sampling_max"], self.seconds["sampling_min"] = float(per_rank.max()), float(per_rank.min())

    def write(self, writer, phase: str, row: int) -> None:
        if writer is not None:
            writer.timings(phase, row, np.array([[self.seconds[k] for k in io.TIMING_FIELDS]]))


class Iterations:
    """Rank 0's optimization records (the iteration rows and their timing rows), written in batches: when the
    time since the last write is at least 1 / `ROW_SHARE` times what that write took (the output then takes
    at most ~2 % of rank 0's time: a batch every ~15 ms at 0.3 ms per write), before every checkpoint and
    at the end of the phase.

    Why: the update is computed by every rank alike from the allreduced sums (no broadcast), so the one
    serial step left on the critical path of an iteration is rank 0's output -- every other rank waits for
    it at the next allreduce. One row costs about 0.3 ms (a write to each of 13 datasets, the attribute
    iterations_done, a flush), a batch of k rows the same one write per dataset; at 2-3 ms per iteration
    (256 walkers on 64 ranks) a row each time would cost 10-15 % of the run, batches cost 2 % at most.
    Nothing a resume needs is delayed: rows are flushed before every checkpoint (so the file holds every
    iteration its checkpoint has done), and a row lost with a killed run lies after the last checkpoint,
    which the resumed run repeats."""

    def __init__(self, writer: io.RunWriter | None):
        self.writer = writer
        self.rows: list[tuple[int, dict, np.ndarray]] = []
        self.timing: list[tuple[int, list[float]]] = []
        self.last = time.monotonic()
        self.cost = 0.0           # seconds the last write took

    def add(self, t: int, m: Moments, learning_rate: float, params: np.ndarray, wall_time: float) -> None:
        """Iteration t's row (its moments, learning rate and the parameters it sampled), written when due."""
        row = dict(energy=m.energy, error=m.error, variance=m.variance, acceptance=m.acceptance,
                   grad_norm=float(np.linalg.norm(m.gradient)), learning_rate=learning_rate, wall_time=wall_time,
                   **dict(zip(OBSERVABLE_NAMES, m.observables)))
        self.rows.append((t, row, params))
        if time.monotonic() - self.last >= self.cost / ROW_SHARE:
            self.flush()

    def add_timing(self, timer: "PhaseTimer", t: int) -> None:
        if self.writer is not None:
            self.timing.append((t, [timer.seconds[k] for k in io.TIMING_FIELDS]))

    def flush(self) -> None:
        """Write what is pending (consecutive iterations, one batch)."""
        t0 = time.monotonic()
        if self.rows:
            rows, self.rows = self.rows, []
            self.writer.iterations(rows[0][0], [r for _, r, _ in rows], np.stack([p for _, _, p in rows]))
        if self.timing:
            timing, self.timing = self.timing, []
            self.writer.timings("optimization", timing[0][0], np.array([t for _, t in timing]))
        self.last = time.monotonic()
        self.cost = self.last - t0


ROW_SHARE = 0.02       # the largest share of rank 0's time the optimization record's writes take (`Iterations`)


# ----------------------------------------------------------------------------------------------
# Sanity
# ----------------------------------------------------------------------------------------------


class Guard:
    """Decides whether an optimization iteration is good, and when the optimization has diverged.

    E_0 = the lowest energy H allows. An iteration diverged when its energy or gradient is not
    finite, when E < E_0 - 10 err (impossible: the sampling or the state broke down numerically), or
    when E - E_0 > 100 max(E_best - E_0, E_0 / 100) (the excess energy grew by two orders of
    magnitude). An iteration is good when its energy is finite and
    E <= E_best + max(E_best - E_0, 5 err): its starting state is what a failure rolls back to.
    """

    def __init__(self, lower_bound: float):
        self.floor = lower_bound

    def diverged(self, it: int, m: Moments, best: float) -> str | None:
        e, err = m.energy, m.error if math.isfinite(m.error) else 0.0
        if not (math.isfinite(e) and np.all(np.isfinite(m.gradient))
                and (m.s_matrix is None or np.all(np.isfinite(m.s_matrix)))):
            return f"iteration {it}: energy or gradient is not finite (E = {e})"
        if e < self.floor - 10.0 * err - 1e-9 * abs(self.floor):
            return (f"iteration {it}: E = {e:.6g} is below {self.floor:.6g}, the lowest energy this Hamiltonian "
                    "allows: the trial state or the sampling has broken down numerically")
        if math.isfinite(best) and e - self.floor > 100.0 * max(best - self.floor, 0.01 * abs(self.floor)):
            return (f"iteration {it}: the optimization diverged (E = {e:.6g}, best so far {best:.6g})")
        return None

    def good(self, m: Moments, best: float) -> bool:
        if not math.isfinite(best):
            return True
        err = m.error if math.isfinite(m.error) else 0.0
        return m.energy <= best + max(best - self.floor, 5.0 * err)


# ----------------------------------------------------------------------------------------------
# The run
# ----------------------------------------------------------------------------------------------


def pack(**parts) -> tuple[np.ndarray, dict[str, slice]]:
    """One flat vector of named parts (the payload of one allreduce) and where each part lives in it.

    >>> total, where = pack(counts=np.ones(3), flags=[0.0, 1.0])
    >>> total[where["flags"]].tolist()
    [0.0, 1.0]
    """
    arrays = {k: np.atleast_1d(np.asarray(v, dtype=float)) for k, v in parts.items()}
    where, start = {}, 0
    for k, v in arrays.items():
        where[k] = slice(start, start + v.size)
        start += v.size
    return np.concatenate(list(arrays.values())), where


class Run:
    """One run's context, shared by its phases: configuration, objects, counters, output, ranks, the checkpoint
    clock and the stop requests; `end_chunk` is what every iteration, production chunk and DMC chunk ends with."""

    def __init__(self, spec: Spec, writer: io.RunWriter | None, comm: Comm, progress: bool, stop):
        self.t0 = time.time()
        self.spec, self.writer, self.comm, self.stop = spec, writer, comm, stop
        self.progress = progress and comm.is_root
        self.setup = build(spec, comm)
        self.state, self.counts = RunState(), np.zeros(spec.production.density_bins)
        self.last_checkpoint = time.monotonic()     # rank 0's clock decides for all ranks when one is due
        self.pop: dmc.Population | None = None
        self.iterations = Iterations(writer)

    def control(self) -> np.ndarray:
        """This rank's part of the control flags: a pending stop request, and rank 0's "checkpoint due"."""
        due = self.comm.is_root and time.monotonic() - self.last_checkpoint >= self.spec.checkpoint_interval
        return np.array([1.0 if self.stop() else 0.0, 1.0 if due else 0.0])

    def snapshot(self) -> Snapshot:
        setup, pop = self.setup, self.pop
        return Snapshot(replace(self.state, sweeps=setup.walkers.sweeps, dmc=replace(self.state.dmc)),
                        setup.wf.params.copy(), {k: v.copy() for k, v in setup.optimizer.state.items()},
                        setup.walkers.positions.copy(), self.counts.copy(),
                        (pop.X.copy(), np.stack([pop.el, pop.vr], axis=1)) if pop is not None else None)

    def checkpoint(self, snap: Snapshot | None = None) -> None:
        """Gather the walkers of `snap` (default: now) on rank 0 and write them with the rest (collective)."""
        snap = snap or self.snapshot()
        self.iterations.flush()      # the file holds every iteration before the checkpoint's
        parts = self.comm.gather((snap.positions, snap.dmc))
        if self.writer is None:
            return
        arrays = {"params": snap.params, "positions": np.concatenate([p[0] for p in parts]),
                  "density_counts": snap.density_counts}
        if snap.dmc is not None:
            arrays["dmc_positions"] = np.concatenate([p[1][0] for p in parts])
            arrays["dmc_walkers"] = np.concatenate([p[1][1] for p in parts])
        arrays.update({f"optimizer_{k}": v for k, v in snap.optimizer.items()})
        self.writer.checkpoint(arrays, snap.state.to_array(), snap.state.iteration, snap.state.phase)

    def end_chunk(self, control: np.ndarray, phase: int, bar, where: str) -> None:
        """A stop request on any rank (summed `control`) checkpoints and stops while `phase` has work left; a
        checkpoint is also written when rank 0's clock says it is due and when the phase is over."""
        in_phase = self.state.phase == phase
        if control[0] > 0 and in_phase:
            bar.close()
            self.checkpoint()
            raise Interrupted(f"stopped by {self.stop() or 'a signal on another rank'} {where}")
        if control[1] > 0 or not in_phase:
            self.checkpoint()
            self.last_checkpoint = time.monotonic()

    def bar(self, total: int, initial: int, desc: str, unit: str) -> tqdm:
        """A progress bar on rank 0; in a batch log (not a terminal) it writes a line every 30 s at most."""
        tty = sys.stderr.isatty()
        return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not self.progress,
                    dynamic_ncols=tty, mininterval=0.1 if tty else 30.0, ascii=not tty)


def run(spec: Spec, writer: io.RunWriter | None, comm: Comm, resume: bool = False, progress: bool = True,
        stop: Callable[[], str | None] = lambda: None) -> dict:
    """Optimize, then evaluate (and DMC); rank 0 writes through `writer` (None on other ranks).

    `stop()` returns the name of a pending stop request (a signal) or None. Returns (on every rank) a
    summary dict: energy and blocked error (rank 0 only), variance, acceptance, iterations done,
    wall time, samples per second, warnings.
    """
    r = Run(spec, writer, comm, progress, stop)
    restored = restore(comm, writer.group if writer else None, r.setup) if resume else None
    saved = None
    if restored is not None:
        r.state, r.counts[:], arrays = restored
        if r.state.phase == DONE and spec.dmc_on and r.state.dmc.steps < spec.dmc.equilibration + spec.dmc.steps:
            r.state.phase = DMC     # a complete run asked for more DMC steps (`--set dmc.steps`)
        if r.state.phase == DMC and r.state.dmc.steps > 0:
            saved = arrays
        if writer is not None:
            writer.set_iterations_done(r.state.iteration)
    else:
        if spec.wavefunction.from_file:
            params = comm.bcast(start_parameters(spec, r.setup.wf.params) if comm.is_root else None)
            r.setup.wf.params[:] = params
        r.checkpoint()
    optimize(r)
    produce(r)
    diffuse(r, saved)
    return finish(spec, r.setup, r.state, writer, comm, time.time() - r.t0)


def optimize(r: Run) -> None:
    smp, o = r.spec.sampler, r.spec.optimizer
    setup, state, comm = r.setup, r.state, r.comm
    wf, opt = setup.wf, setup.optimizer
    guard = Guard(energy_lower_bound(r.spec))
    last_good = r.snapshot()
    bar = r.bar(o.iterations, state.iteration, "optimizing", "it")
    while state.phase == OPTIMIZATION and state.iteration < o.iterations:
        it = state.iteration
        timer = PhaseTimer(comm)
        start = r.snapshot()
        n_burn = smp.burn_in if it == 0 else smp.thermalize
        samples = setup.sampler.sample(wf, setup.hamiltonian, setup.walkers, n_burn, smp.steps, record_grad=True)
        timer.lap("sampling")
        local, where = pack(sums=sums(samples, wf.n_opt, opt.needs_s_matrix), sampling=timer.own_sampling(),
                            control=r.control())
        total = comm.allreduce_sum(local)
        timer.lap("reduce")
        timer.ranks_sampling(total[where["sampling"]])
        m = Moments.from_sums(total[where["sums"]], wf.n_opt, opt.needs_s_matrix)
        reason = guard.diverged(it, m, state.best_energy)
        if reason is None and m.acceptance == 0.0:
            reason = f"iteration {it}: no proposed move was accepted (sampler step or time step far too large?)"
        if reason is not None:
            r.checkpoint(last_good)
            raise NumericalError(f"{reason}; the checkpoint holds the state before iteration "
                                 f"{last_good.state.iteration}")
        if guard.good(m, state.best_energy):
            last_good = start
        lr, used = opt.learning_rate(), wf.params.copy()
        update(r, m, start)
        close = math.isfinite(state.last_energy) and abs(m.energy - state.last_energy) < np.hypot(m.error,
                                                                                                  state.last_error)
        state.calm = state.calm + 1 if close else 0     # |Delta E| below its error bar: the patience criterion
        state.iteration += 1
        state.last_energy, state.last_error = m.energy, m.error
        state.best_energy = min(state.best_energy, m.energy)
        if state.iteration >= o.iterations or (o.patience > 0 and state.calm >= o.patience):
            state.phase = PRODUCTION
        timer.lap("update")
        if r.writer is not None:
            r.iterations.add(it, m, lr, used, time.time() - r.t0)
        bar.update(1)
        bar.set_postfix_str(f"E = {m.energy:.5f} +- {m.error:.5f}, acc = {m.acceptance:.2f}", refresh=False)
        r.end_chunk(total[where["control"]], OPTIMIZATION, bar, f"after iteration {it}")
        timer.lap("io")
        r.iterations.add_timing(timer, it)
    r.iterations.flush()
    bar.close()
    state.phase = max(state.phase, PRODUCTION)
    if r.writer is not None:
        r.writer.wavefunction(wf.params, wf.named(), {k: v for k, v in wf.attrs().items() if k in ("sigma", "beta")})


def update(r: Run, m: Moments, start: Snapshot) -> None:
    """theta += the optimizer's step from the iteration's moments; a failed SR solve checkpoints `start` and stops."""
    wf = r.setup.wf
    try:
        delta = r.setup.optimizer.step(m.gradient, m.s_matrix)
    except np.linalg.LinAlgError as exc:
        r.checkpoint(start)
        raise NumericalError(f"iteration {r.state.iteration}: stochastic reconfiguration failed ({exc}); raise "
                             "optimizer.sr_shift") from None
    wf.theta[:] += delta
    wf.constrain()


def produce(r: Run) -> None:
    prod = r.spec.production
    steps, r_max = prod.steps, r.spec.density_rmax
    setup, state, comm = r.setup, r.state, r.comm
    wf = setup.wf
    bar = r.bar(steps, state.production_steps, "production", "step")
    while state.production_steps < steps:
        timer = PhaseTimer(comm)
        t_chunk, cpu_chunk = time.time(), time.process_time()
        n = min(io.PRODUCTION_CHUNK, steps - state.production_steps)
        n_burn = prod.burn_in if state.production_steps == 0 else 0
        s = setup.sampler.sample(wf, setup.hamiltonian, setup.walkers, n_burn, n, density_bins=prod.density_bins,
                                 density_rmax=r_max)
        timer.lap("sampling")
        local, where = pack(counts=s.density_counts, accepted=s.accepted, proposed=s.proposed,
                            cpu=time.process_time() - cpu_chunk, sampling=timer.own_sampling(),
                            not_finite=0.0 if np.all(np.isfinite(s.observables)) else 1.0, control=r.control())
        total = comm.allreduce_sum(local)
        observables = comm.gather(s.observables)
        timer.lap("reduce")
        timer.ranks_sampling(total[where["sampling"]])
        start = state.production_steps
        if total[where["not_finite"]][0] > 0:
            raise NumericalError(f"production steps {start}-{start + n}: a local energy is not finite")
        r.counts += total[where["counts"]]
        state.accepted += total[where["accepted"]][0]
        state.proposed += total[where["proposed"]][0]
        state.cpu_seconds += total[where["cpu"]][0]
        state.production_steps += n
        state.wall_seconds += time.time() - t_chunk
        if state.production_steps >= steps:
            state.phase = DMC if r.spec.dmc_on else DONE
        timer.lap("update")
        if r.writer is not None:
            r.writer.production(start, np.concatenate(observables), r.counts, r_max, wf.particles, wf.dimensions,
                                state.accepted, state.proposed)
        bar.update(n)
        r.end_chunk(total[where["control"]], PRODUCTION, bar, f"after production step {state.production_steps}")
        timer.lap("io")
        timer.write(r.writer, "production", start // io.PRODUCTION_CHUNK)
    bar.close()


def diffuse(r: Run, saved: dict | None) -> None:
    """Fixed-node DMC (`vmc.mc.dmc`) from the production's final walkers (walker j % W starts DMC walker j),
    or from the checkpoint's population (`saved`); chunks of `dmc.CHUNK` steps, each written as it ends."""
    d, setup, state, comm = r.spec.dmc, r.setup, r.state, r.comm
    if not r.spec.dmc_on or state.phase != DMC:
        return
    n_eq, total = d.equilibration, d.equilibration + d.steps
    pop = r.pop = dmc.Population(setup.wf, setup.hamiltonian, comm, d.walkers, d.time_step, d.feedback,
                                 key_of(r.spec.seed, 2))
    if saved is not None:
        pop.restore(saved["dmc_positions"], saved["dmc_walkers"][:, 0], saved["dmc_walkers"][:, 1],
                    replace(state.dmc))
    else:
        parts = comm.gather(setup.walkers.positions)
        vmc_walkers = comm.bcast(np.concatenate(parts) if comm.is_root else None)
        pop.start(vmc_walkers[np.arange(d.walkers) % vmc_walkers.shape[0]])
        state.dmc = replace(pop.c)
    bar = r.bar(total, pop.c.steps, "dmc", "step")
    while pop.c.steps < total:
        t_chunk, cpu_chunk = time.time(), time.process_time()
        start = pop.c.steps
        n = min(dmc.CHUNK, (n_eq if start < n_eq else total) - start)
        records = pop.advance(n, measured=start >= n_eq)
        local, where = pack(cpu=time.process_time() - cpu_chunk, control=r.control())
        flags = comm.allreduce_sum(local)
        if not np.all(np.isfinite(records)):
            raise NumericalError(f"DMC steps {start}-{start + n}: the energy or the population weight is not finite "
                                 "(a smaller dmc.time_step?)")
        state.dmc = replace(pop.c)
        state.dmc_cpu_seconds += flags[where["cpu"]][0]
        state.dmc_wall_seconds += time.time() - t_chunk
        if pop.c.steps >= total:
            state.phase = DONE
        if r.writer is not None:
            c = pop.c
            r.writer.dmc(start, records, dict(accepted=c.accepted, proposed=c.proposed, node_crossings=c.crossings,
                                              acceptance=c.accepted / c.proposed if c.proposed else math.nan,
                                              wall_seconds=state.dmc_wall_seconds, cpu_seconds=state.dmc_cpu_seconds))
        bar.update(n)
        population = records[-1, dmc.STEP_FIELDS.index("population")]
        bar.set_postfix_str(f"E = {records[-1, 0]:.5f}, E_T = {pop.c.trial_energy:.5f}, W = {population:.0f}",
                            refresh=False)
        r.end_chunk(flags[where["control"]], DMC, bar, f"after DMC step {pop.c.steps}")
    bar.close()


def finish(spec: Spec, setup: Setup, state: RunState, writer, comm: Comm, wall: float) -> dict:
    """Check the run's consistency and plausibility; on rank 0 analyse the production series."""
    if not comm.all_equal(setup.wf.params):
        raise RunError("parameters differ between MPI ranks: the run is inconsistent")
    acceptance = state.accepted / state.proposed if state.proposed else math.nan
    if setup.sampler.kind != "gibbs" and acceptance in (0.0, 1.0):
        raise RunError(f"production acceptance is {acceptance:.0f}: the walkers did not "
                       f"{'move' if acceptance == 0.0 else 'sample (every move accepted)'}; the energy is meaningless "
                       "(change sampler.step or sampler.dt)")
    summary = {"iterations": state.iteration, "wall_time": wall}
    if writer is None:
        return summary
    from ..analysis.results import analyze_group
    writer.production_times(state.wall_seconds, state.cpu_seconds)
    result = analyze_group(writer.group)
    summary.update(result)
    summary["timing"] = io.time_breakdown(writer.group)
    if "dmc" in result and "mean" in result["dmc"]:
        summary["dmc_energy"], summary["dmc_error"] = result["dmc"]["mean"], result["dmc"]["error"]
    summary["samples_per_s"] = spec.sampler.walkers * spec.production.steps / max(state.wall_seconds, 1e-12)
    return summary
