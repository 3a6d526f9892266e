r"""Markov-chain samplers of |psi|^2: a walker state plus a transition rule.

A *sweep* proposes a move of every particle once, one particle at a time (P proposals), except for
Gibbs sampling, where a sweep is one full update of the hidden and then the visible units.

* Metropolis (brute force) and importance sampling (Langevin): one particle at a time, by the rule
  `vmc.mc.moves.move` (the equations are there; the Langevin rule is DMC's drift-diffusion too).
* Gibbs: h_j | x ~ Bernoulli(sigmoid(u_j)), then x | h ~ Normal(a + W h, sigma^2). This samples the
  RBM joint distribution whose x-marginal is F(x); it samples |psi|^2 = F^(2g) only for g = 1/2 and an
  RBM alone (`vmc.input.options.RULES`).

The trial state enters only through the factor contract (`vmc.model.factors.contract`, summed by
`vmc.model.wavefunction`; Gibbs asks it for the conditional draws of a factor that has them): the kernels take the
tuple of factors' kernel data and never know which factors they hold.

Walker w's sweep s draws from its own counter-based stream (`vmc.mc.streams`: keyed by the run's seed, w and s),
so a run is reproducible from (seed, number of walkers) whatever the order of work, and the walkers' streams
are known from the number of sweeps done: a checkpoint stores that number, no generator states.
After each measured sweep the kernel records the Hamiltonian's terms and observables
(`vmc.model.hamiltonian.OBSERVABLE_NAMES`), optionally d ln psi / d theta, and optionally a histogram of the
particles' radial distances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from ..model.factors.contract import REFRESH_EVERY
from ..model.hamiltonian import N_OBSERVABLES, N_TERMS, Hamiltonian, measure
from ..model.wavefunction import (
    Product,
    accept_all,
    add_dlog_all,
    add_grad_lap_all,
    factor_kernel,
    gibbs_sweep_all,
    init_all,
    refresh_all,
)
from .moves import LANGEVIN, METROPOLIS, Move, move
from .streams import CounterStream, draws, fill, key_of, owner_stream, seek, uniform

GIBBS = 2
KINDS = {"metropolis": METROPOLIS, "importance": LANGEVIN, "gibbs": GIBBS}


class Record(NamedTuple):
    """What a chain records after each measured sweep (arrays of length 0 switch a record off)."""
    observables: np.ndarray   # (n_steps, N_OBSERVABLES)
    dlog: np.ndarray          # (n_steps, n_opt) d ln psi / d theta, or (0, 0)
    histogram: np.ndarray     # (bins,) radial distances of the particles, or (0,)
    r_max: float              # outer radius of the histogram


# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


class Rule(NamedTuple):
    """A chain's transition rule: `kind` (METROPOLIS, LANGEVIN, GIBBS), its move size (the Metropolis step or
    the Langevin time step; none for Gibbs) and Gibbs's scratch: the hidden units (N,) and the random numbers of
    one sweep (N uniforms, then M normals; `vmc.model.factors.contract.gibbs_sweep`), or (0,) each."""
    kind: int
    size: float
    hidden: np.ndarray
    draws: np.ndarray


@numba.njit(cache=True, inline="always")
def radial_histogram(x, P, D, r_max, hist):
    n_bins = hist.shape[0]
    for i in range(P):
        r2 = 0.0
        for d in range(D):
            r2 += x[i * D + d] ** 2
        k = int(math.sqrt(r2) / r_max * n_bins)
        if k < n_bins:
            hist[k] += 1.0


@factor_kernel
def chain(factors, terms, w, rule, x, D, rng, n_burn, n_steps, out):
    """Advance walker w (positions x, stream rng: sweep t draws from `seek(rng, t)`) n_burn + n_steps sweeps of
    the transition rule (`Rule`, `vmc.mc.moves`), recording the terms and observables (and d ln psi / d theta,
    the histogram; see `Record`) after each of the last n_steps. Returns the moves accepted in those.

    One function on purpose: the factors' kernels are inlined into it (a `factor_kernel`: the sums and the move
    `vmc.mc.moves.move` written out in this body) and nothing in the loop crosses a call boundary (a call that
    takes the tuples of factors and arrays costs as much as a move). The error model is `run_chain`'s (why: there)."""
    M = x.shape[0]
    P = M // D
    xp, dx, f_old, f_new = np.empty(D), np.empty(D), np.empty(D), np.empty(D)
    grad, lap = np.empty(M), np.empty(M)
    particle_rule = Move(rule.kind, rule.size, False)
    init_all(factors, w, x)
    accepted = 0
    for sweep in range(n_burn + n_steps):
        seek(rng, sweep)
        if rule.kind == GIBBS:
            fill(rng, rule.draws, rule.hidden.shape[0])
            gibbs_sweep_all(factors, w, x, rule.draws, rule.hidden)
            if sweep >= n_burn:
                accepted += P
        for i in range(P if rule.kind != GIBBS else 0):
            log_ratio, crossed = move(factors, w, x, i, particle_rule, rng, xp, dx, f_old, f_new)
            if log_ratio == -np.inf:
                continue
            if log_ratio >= 0.0 or uniform(rng) < math.exp(log_ratio):
                accept_all(factors, w, x, i, xp)
                if sweep >= n_burn:
                    accepted += 1
        if (sweep + 1) % REFRESH_EVERY == 0:
            refresh_all(factors, w, x)
        if sweep >= n_burn:
            t = sweep - n_burn
            for k in range(M):
                grad[k] = 0.0
                lap[k] = 0.0
            add_grad_lap_all(factors, w, x, grad, lap)
            measure(terms, x, grad, lap, out.observables[t])
            if out.dlog.shape[0] > 0:
                row = out.dlog[t]
                for k in range(row.shape[0]):
                    row[k] = 0.0
                add_dlog_all(factors, w, x, row)
            if out.histogram.shape[0] > 0:
                radial_histogram(x, P, D, out.r_max, out.histogram)
    return accepted


@numba.njit(cache=True, error_model="numpy")
def run_chain(factors, terms, w, rule, x, D, rng, n_burn, n_steps, out):
    """`chain`, compiled for this tuple of factors (the entry point from Python).

    error_model="numpy" on purpose (`chain` inherits it; a float division by zero gives inf or nan instead of
    raising ZeroDivisionError; nothing else changes, the results are bit-identical): every inlined contract call
    binds the factor's arrays to new variables, whose reference counts numba increments and decrements (an atomic
    add each, 13 per call), and LLVM prunes those pairs only where no raise path leaves the loop between them.
    With the Python error model every division had one, and the atomics took half the time of a move
    (benchmarks/README.md). Kernels inlined into `chain` keep every array argument alive to their end on all
    branches for the same reason (`vmc.model.factors.rbm.rbm_add_dlog`);
    tests/test_samplers.py::test_the_chain_kernel_counts_no_references_in_its_loops checks it."""
    return chain(factors, terms, w, rule, x, D, rng, n_burn, n_steps, out)


# ----------------------------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------------------------


class Walkers:
    """The Markov-chain state: positions (n_walkers, M) of the walkers `ids` (their indices in the whole run) and
    the sweeps every walker has made, which position the walkers' streams (key `key`, `vmc.mc.streams`)."""

    def __init__(self, positions: np.ndarray, key: np.ndarray, ids, sweeps: int = 0):
        self.positions = np.ascontiguousarray(positions, dtype=np.float64)
        self.key, self.ids, self.sweeps = np.asarray(key, dtype=np.uint64), np.asarray(ids, dtype=np.int64), sweeps
        if self.ids.shape != (self.positions.shape[0],):
            raise ValueError("one walker index per walker is required")

    @classmethod
    def start(cls, seed, ids, n_visible: int, spread: float) -> "Walkers":
        """Walkers `ids` (a range, or a count for range(count)) of the run with root seed `seed` (an int or a list
        of ints) at Gaussian random positions of width `spread`: walker w's from its stream at sweep 0."""
        ids = range(ids) if isinstance(ids, int) else ids
        key = key_of(seed, 1)
        positions = [spread * draws(key[0], key[1], w, 0, n_visible, True) for w in ids]
        return cls(np.array(positions).reshape(len(ids), n_visible), key, ids)

    @property
    def n_walkers(self) -> int:
        return self.positions.shape[0]

    def stream(self, w: int) -> CounterStream:
        """Local walker w's stream, `seek(rng, t)` going to its next sweep plus t."""
        return owner_stream(self.key, int(self.ids[w]), self.sweeps + 1)


@dataclass
class Samples:
    """What a sampling pass produced for this process's walkers.

    observables: (n_walkers, n_steps, N_OBSERVABLES), columns `vmc.model.hamiltonian.OBSERVABLE_NAMES`;
    grad_log_psi: (n_walkers, n_steps, n_opt) or None; density_counts: radial histogram or None.
    """
    observables: np.ndarray
    grad_log_psi: np.ndarray | None
    accepted: int
    proposed: int
    density_counts: np.ndarray | None = None

    @property
    def local_energy(self) -> np.ndarray:
        """E_L per walker and step, shape (n_walkers, n_steps): the sum of the Hamiltonian's terms."""
        return self.observables[..., :N_TERMS].sum(axis=-1)

    @property
    def acceptance(self) -> float:
        return self.accepted / self.proposed if self.proposed else float("nan")


class Sampler:
    """A transition rule for |psi|^2: kind ('metropolis', 'importance', 'gibbs') and its move size."""

    def __init__(self, kind: str, step: float = 1.0, dt: float = 0.05):
        self.kind = kind
        self.move = {"metropolis": step, "importance": dt, "gibbs": 0.0}[kind]

    def sample(self, wf: Product, hamiltonian: Hamiltonian, walkers: Walkers, n_burn: int, n_steps: int,
               record_grad: bool = False, density_bins: int = 0, density_rmax: float = 1.0) -> Samples:
        """Advance every walker n_burn + n_steps sweeps and return the measurements (see `Samples`)."""
        n_w, P, D = walkers.n_walkers, wf.particles, wf.dimensions
        obs = np.empty((n_w, n_steps, N_OBSERVABLES))
        grads = np.empty((n_w, n_steps, wf.n_opt)) if record_grad else None
        no_grad = np.empty((0, 0))
        hist = np.zeros(density_bins)
        factors = wf.kernel_data(n_w)
        terms = hamiltonian.kernel_terms()
        accepted = 0
        n_hidden = wf.hidden if self.kind == "gibbs" else 0
        draws = np.empty(n_hidden + wf.n_visible if n_hidden else 0)
        rule = Rule(KINDS[self.kind], self.move, np.empty(n_hidden), draws)
        for w in range(n_w):
            out = Record(obs[w], grads[w] if record_grad else no_grad, hist, float(density_rmax))
            accepted += run_chain(factors, terms, w, rule, walkers.positions[w], D, walkers.stream(w), n_burn,
                                  n_steps, out)
        walkers.sweeps += n_burn + n_steps
        return Samples(obs, grads, accepted, n_w * n_steps * P, hist if density_bins else None)
