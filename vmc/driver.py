"""The VMC run: energy minimization, then a production evaluation at fixed parameters.

One loop, top to bottom (`run`):

1. build the trial state, Hamiltonian, sampler and optimizer from the resolved configuration;
   every random stream comes from the root seed: stream 0 draws the initial parameters (identical on
   every rank), stream 1 is split into one stream per walker (walker w always gets stream w);
2. optimization: each iteration every rank samples its walkers, the ranks allreduce the sums of
   E_L, E_L^2, O, E_L O (and O O^T for SR), every rank computes the same gradient and the same update;
   rank 0 appends the iteration to the output and checkpoints walkers, random streams and optimizer;
3. production: sampling at fixed parameters in chunks, each chunk stored as it completes;
4. the blocked error of the production energy (`vmc.blocking`) is the number the run reports.

A run resumed from its checkpoint continues exactly where the killed run stopped: same chunks, same
streams, same sums, so it ends on the same numbers as an uninterrupted run with the same seed and ranks.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from . import io
from .estimators import Moments, sums
from .hamiltonian import Hamiltonian
from .optimizers import Optimizer
from .parallel import Comm, walker_range
from .samplers import Sampler, Walkers
from .config import check_ranks, resolved_density_rmax, resolved_sigma
from .wavefunction import TrialState



class RunError(RuntimeError):
    """A run that cannot go on."""


class NumericalError(RunError):
    """A NaN or infinite energy, gradient or parameter; the last good state is checkpointed."""


@dataclass
class Setup:
    wf: TrialState
    hamiltonian: Hamiltonian
    sampler: Sampler
    optimizer: Optimizer
    walkers: Walkers
    walker_ids: range


def trial_state(cfg: dict) -> TrialState:
    """The trial state a configuration describes, before its random initialization."""
    s, w = cfg["system"], cfg["wavefunction"]
    return TrialState(s["particles"], s["dimensions"], w["hidden"], resolved_sigma(cfg), w["g"], w["optimize_sigma"],
                      jastrow=w["jastrow"] == "pade", slater=w["slater"], fermions=s["statistics"] == "fermion",
                      omega=s["omega"], beta=w["beta"])


def build(cfg: dict, comm: Comm) -> Setup:
    """Objects of a run from the resolved configuration (nested dict, see `vmc.config`)."""
    s, w, smp, o = cfg["system"], cfg["wavefunction"], cfg["sampler"], cfg["optimizer"]
    P, D = s["particles"], s["dimensions"]
    check_ranks(cfg, comm.size)
    param_seq, walker_seq = np.random.SeedSequence(cfg["seed"]).spawn(2)
    wf = trial_state(cfg)
    wf.randomize(np.random.default_rng(param_seq), w["init_scale"])
    ham = Hamiltonian(P, D, s["omega"], s["interaction"])
    sampler = Sampler(smp["kind"], step=smp["step"], dt=smp["dt"])
    sampler.check(wf)
    opt = Optimizer(o["kind"], wf.n_opt, learning_rate=o["learning_rate"], schedule=o["schedule"],
                    decay=o["decay"], momentum=o["momentum"], beta1=o["beta1"], beta2=o["beta2"],
                    epsilon=o["epsilon"], sr_shift=o["sr_shift"], max_step=o["max_step"])
    ids = walker_range(smp["walkers"], comm.rank, comm.size)
    seeds = walker_seq.spawn(smp["walkers"])
    walkers = Walkers.start([seeds[i] for i in ids], wf.n_visible, spread=1.0 / np.sqrt(s["omega"]))
    return Setup(wf, ham, sampler, opt, walkers, ids)


def _gather_walkers(comm: Comm, walkers: Walkers):
    """All walkers' positions and stream states on rank 0 (global walker order)."""
    parts = comm.gather((walkers.positions.copy(), walkers.rng_states()))
    if parts is None:
        return None, None
    return np.concatenate([p for p, _ in parts]), [st for _, sts in parts for st in sts]


def _checkpoint(comm: Comm, group, setup: Setup, attrs: dict, density_counts=None) -> None:
    positions, states = _gather_walkers(comm, setup.walkers)
    if group is not None:
        arrays = {"positions": positions, "rng_states": states, "params": setup.wf.params}
        arrays.update({f"optimizer_{k}": v for k, v in setup.optimizer.state.items()})
        if density_counts is not None:
            arrays["density_counts"] = density_counts
        io.write_checkpoint(group, arrays, attrs)


def _restore(comm: Comm, group, setup: Setup) -> dict:
    """Load the last checkpoint on rank 0 and hand every rank its share ({} if there is none)."""
    ck = None
    if group is not None:
        ck = io.read_checkpoint(group) or {}
        io.truncate_iterations(group, int(ck.get("iteration", 0)))
    ck = comm.bcast(ck)
    if not ck:
        return ck
    setup.wf.params[:] = ck["params"]
    ids = setup.walker_ids
    setup.walkers.positions[:] = ck["positions"][ids.start:ids.stop]
    setup.walkers.set_rng_states(ck["rng_states"][ids.start:ids.stop])
    for key in setup.optimizer.state:
        setup.optimizer.state[key][...] = ck[f"optimizer_{key}"]
    return ck


def _progress(total: int, initial: int, desc: str, unit: str, enabled: bool) -> tqdm:
    """A progress bar on rank 0; in a batch log (not a terminal) it writes a line every 30 s at most."""
    tty = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, desc=desc, unit=unit, disable=not enabled,
                dynamic_ncols=tty, mininterval=0.1 if tty else 30.0, ascii=not tty)


def _finite(*arrays) -> bool:
    return all(np.all(np.isfinite(a)) for a in arrays)


def run(cfg: dict, group, comm: Comm, resume: bool = False, progress: bool = True) -> dict:
    """Optimize, then evaluate; rank 0 writes into `group` (None on other ranks).

    Returns (on every rank) a summary dict: energy and blocked error (rank 0 only), variance,
    acceptance, iterations done, wall time, samples per second.
    """
    t0 = time.time()
    setup = build(cfg, comm)
    wf, ham, sampler, opt, walkers = setup.wf, setup.hamiltonian, setup.sampler, setup.optimizer, setup.walkers
    smp, o, prod = cfg["sampler"], cfg["optimizer"], cfg["production"]
    n_walkers = smp["walkers"]
    r_max = resolved_density_rmax(cfg)

    start_it, phase, prod_done, calm = 0, "optimization", 0, 0
    last, ck = None, {}
    if resume:
        ck = _restore(comm, group, setup)
        start_it, prod_done, calm = ck.get("iteration", 0), ck.get("production_steps_done", 0), ck.get("calm", 0)
        phase = ck.get("phase", "optimization")
        if "last_energy" in ck:
            last = (ck["last_energy"], ck["last_error"])
    else:
        _checkpoint(comm, group, setup, dict(iteration=0, phase=phase, production_steps_done=0, calm=0))

    # ---- optimization ------------------------------------------------------------------------------
    bar = _progress(o["iterations"], start_it, "optimizing", "it", progress and comm.is_root)
    it = start_it
    while phase == "optimization" and it < o["iterations"]:
        n_burn = smp["burn_in"] if it == 0 else smp["thermalize"]
        samples = sampler.sample(wf, ham, walkers, n_burn, smp["steps"], record_grad=True)
        total = comm.allreduce_sum(sums(samples, wf.n_opt, opt.needs_s_matrix))
        m = Moments.from_sums(total, wf.n_opt, opt.needs_s_matrix)
        if not _finite(m.energy, m.gradient, m.s_matrix if m.s_matrix is not None else 0.0):
            # the checkpoint holds the parameters that gave this energy: step back to the previous
            # one, whose parameters gave a finite energy, so a resume can retry with a smaller step
            if group is not None:
                io.rollback_checkpoint(group)
            raise NumericalError(f"iteration {it}: energy or gradient is not finite (E = {m.energy}); "
                                 "the last parameters with a finite energy are checkpointed in the output file")
        lr = opt.learning_rate()
        used = wf.params.copy()
        try:
            delta = opt.step(m.gradient, m.s_matrix)
        except np.linalg.LinAlgError as exc:
            raise NumericalError(f"iteration {it}: stochastic reconfiguration failed ({exc}); raise "
                                 "optimizer.sr_shift") from None
        wf.theta[:] += delta
        wf.constrain()
        if not _finite(wf.params):
            wf.params[:] = used
            raise NumericalError(f"iteration {it}: parameter update is not finite; "
                                 "the last good parameters are checkpointed in the output file")
        it += 1
        if last is not None and abs(m.energy - last[0]) < np.hypot(m.error, last[1]):
            calm += 1
        else:
            calm = 0
        last = (m.energy, m.error)
        done = it >= o["iterations"] or (o["patience"] > 0 and calm >= o["patience"])
        if group is not None:
            row = dict(energy=m.energy, error=m.error, variance=m.variance, acceptance=m.acceptance,
                       grad_norm=float(np.linalg.norm(m.gradient)), learning_rate=lr,
                       kinetic=m.observables[0], trap=m.observables[1], interaction=m.observables[2],
                       pair_distance=m.observables[3], wall_time=time.time() - t0)
            io.append_iteration(group, row, used)
        if done:
            phase = "production"
        _checkpoint(comm, group, setup, dict(iteration=it, phase=phase, production_steps_done=0, calm=calm,
                                             last_energy=m.energy, last_error=m.error))
        bar.update(1)
        bar.set_postfix_str(f"E = {m.energy:.5f} +- {m.error:.5f}, acc = {m.acceptance:.2f}", refresh=False)
    bar.close()
    phase = "production"
    if group is not None:
        io.write_wavefunction(group, wf)

    # ---- production --------------------------------------------------------------------------------
    steps = prod["steps"]
    bar = _progress(steps, prod_done, "production", "step", progress and comm.is_root)
    counts = np.zeros(prod["density_bins"])
    accepted = np.zeros(2)
    seconds = np.zeros(2)   # production wall and CPU seconds (CPU summed over ranks), over resumed segments
    if resume and prod_done:
        counts[:] = ck["density_counts"]
        accepted[:] = ck["accepted"], ck["proposed"]
        seconds[:] = ck.get("wall_seconds", 0.0), ck.get("cpu_seconds", 0.0)
    while prod_done < steps:
        t_chunk, cpu_chunk = time.time(), time.process_time()
        n = min(io.PRODUCTION_CHUNK, steps - prod_done)
        n_burn = prod["burn_in"] if prod_done == 0 else 0
        s = sampler.sample(wf, ham, walkers, n_burn, n, density_bins=prod["density_bins"], density_rmax=r_max)
        counts += comm.allreduce_sum(s.density_counts)
        accepted += comm.allreduce_sum(np.array([s.accepted, s.proposed], dtype=float))
        observables = comm.gather(s.observables)
        if group is not None:
            io.write_production_chunk(group, prod_done, np.concatenate(observables))
            io.write_density(group, counts, r_max, wf.particles, wf.dimensions)
            group["production"].attrs.update(accepted=accepted[0], proposed=accepted[1],
                                             acceptance=accepted[0] / accepted[1])
        prod_done += n
        seconds += [time.time() - t_chunk, comm.allreduce_sum(np.array([time.process_time() - cpu_chunk]))[0]]
        _checkpoint(comm, group, setup, dict(iteration=it, phase="production" if prod_done < steps else "done",
                                             production_steps_done=prod_done, calm=calm, accepted=accepted[0],
                                             proposed=accepted[1], wall_seconds=seconds[0], cpu_seconds=seconds[1]),
                    density_counts=counts)
        bar.update(n)
    bar.close()

    if not comm.all_equal(wf.params):
        raise RunError("parameters differ between MPI ranks: the run is inconsistent")

    summary = {"iterations": it, "wall_time": time.time() - t0}
    if group is not None:
        from .analysis import analyze_group
        pg = group["production"]
        pg.attrs["walkers"] = n_walkers
        pg.attrs["sampler"] = sampler.kind
        pg.attrs["wall_seconds"], pg.attrs["cpu_seconds"] = seconds
        result = analyze_group(group)
        summary.update(result)
        summary["samples_per_s"] = n_walkers * steps / max(pg.attrs["wall_seconds"], 1e-12)
        group.attrs["summary"] = json.dumps({k: v for k, v in summary.items() if np.isscalar(v)})
        group.file.flush()
    return summary
