r"""Fixed-node diffusion Monte Carlo (DMC) on top of the optimized trial state psi_T.

Reference: C. J. Umrigar, M. P. Nightingale and K. J. Runge, "A diffusion Monte Carlo algorithm with
very small time-step errors", J. Chem. Phys. 99, 2865 (1993) (UNR below). Importance-sampled DMC
propagates f(R, t) = psi_T(R) phi(R, t) with the short-time Green's function

    G(R' <- R, tau) = G_drift-diffusion(R' <- R, tau) x exp(tau_eff [S(R) + S(R')] / 2),

and f -> psi_T phi_0 (the fixed-node ground state) as t -> infinity. One *step* of a walker here:

1. Drift-diffusion, one particle at a time, with the Langevin rule of the importance sampler
   (`vmc.mc.moves.move`): x_i' = x_i + v_i tau + sqrt(tau) xi, with the drift velocity
   v = grad ln|psi_T| limited near nodes and cusps as in UNR (`vmc.mc.moves.limit_drift`), and the
   Metropolis-Hastings acceptance min(1, G(x; x') |psi(x')|^2 / (G(x'; x) |psi(x)|^2)) that makes the
   move exact for tau -> 0 and removes most of the time-step error of the diffusion.
2. Fixed node: a proposal that changes the sign of psi_T (`propose` returns the sign of
   psi(x')/psi(x); the rule's `fixed_node`) is rejected, so no walker ever crosses a node of the trial state.
3. Branching factor, with the effective time step tau_eff = tau <p dR^2> / <dR^2> (p: acceptance
   probability; cumulative over all walkers and all earlier steps, UNR eq. 23; tau at the first step)
   and UNR's modified local energy
   near nodes, S(R) = E_T - E_est + (E_est - E_L(R)) |v_bar(R)| / |v(R)| (v_bar the limited drift):

       w <- w exp(tau_eff [ E_T - E_est + ((E_est - E_L(R)) r(R) + (E_est - E_L(R')) r(R')) / 2 ]).

4. Mixed estimator per step: E_t = sum_i w_i E_L(R_i) / sum_i w_i, and the same weighted average of
   each part of E_L (kinetic, trap, interaction: mixed estimates of these operators, which do not
   commute with H; only the total is exact in the fixed-node sense) and of the mean pair distance.
5. Population control: the total weight W_t = sum_i w_i is pulled to the target population N by the
   trial energy E_T(t+1) = E_est(t) - ln(W_t / N) / (g tau_eff), g = `dmc.feedback` steps; E_est is
   a running average of E_t (window `ESTIMATE_WINDOW` steps).

**Weights and a comb, not integer branching (why).** After every step the population is resampled
by the comb of stochastic reconfiguration (systematic resampling): N equally spaced teeth
(u + k) W / N, k = 0..N-1, one uniform u per step, on the cumulative weights; walker i gets as many
copies as teeth fall on it (floor(N w_i / W) or one more), and every copy carries the weight W / N,
so the total weight -- the population the trial energy controls -- is unchanged by the comb. This
keeps the number of walkers fixed at N: every rank holds the same number of slots at every step (load
balance by construction, no walker count to negotiate), the arrays never grow, and memory is known
before the run. The comb's extra noise is the least of any unbiased resampling (each walker's number
of copies differs from its expectation by less than one), and a walker that keeps its slot is never
touched. Integer branching would make the population fluctuate, need walkers to migrate in
varying numbers, and tie random streams to walkers that are born and die.

**Random numbers.** Slots, not walkers, own the random numbers: the move of the walker in slot j at
step t draws from a SplitMix64 stream seeded by hashing (seed, j, t) (`vmc.mc.streams.stream`), and the comb's u is
drawn from the stream of a slot index N (no walker's). A counter-based rule needs no state: a
checkpoint holds no random-generator states and a resumed run draws the same numbers.

**Sums across ranks, exactly (why).** A rank keeps only its own walkers (positions, E_L and |v_bar|/|v|
of their last step), so it computes its walkers' new weights alone (they need only the population's
state after the last step) and contributes per step sums of fixed size, whatever N: W, sum w O_k,
sum w^2, sum p dR^2, sum dR^2 and the accepted, proposed and node-crossing counts, in one allreduce,
with the exclusive scan of W over the ranks below beside it (`vmc.parallel.Comm.sum_and_exscan`: one
allreduce that carries the scan too on up to 8 ranks, an allreduce and an exscan in flight at once
beyond). Every floating-point sum is *exact* (`vmc.mc.exactsum`: a fixed-point accumulator over the whole
double range, combined across ranks by an integer MPI_SUM, rounded once at the end), so the sums, the
trial energy, tau_eff and the comb are bit-identical on every rank and do not depend on how the slots
are split between ranks: a run is reproducible bit for bit from (input, seed), even across numbers of
ranks when the starting walkers are the same (a DMC started from a file's /wavefunction). Each rank
then finds the teeth of the comb that fall on its own walkers from the exactly rounded running sums of
the weights at them (start: the exscan), and sends copies only where a slot's parent lives on another
rank; the teeth are in slot order, so a rank's teeth are one run of slots and it talks only to the
ranks that run overlaps, its neighbours (`Population._take`). A copy is the parent's whole state: its
positions, E_L, |v_bar|/|v| and the factors' per-walker caches (`WALKER_CACHE` of every factor's kernel
data), so no slot rebuilds a cache after the comb (a small drift of the running weights shifts runs of
slots by one: a third of the slots change walker per step while about 1 % of the walkers die, and a
rebuild costs a few moves at N = 12 and tens at N = 56), and a copy continues bit for bit as its parent
would have on any rank. Every chunk of steps (`advance`) starts from rebuilt caches, as a resumed run
does. The largest weight of a step (a record field only) is reduced once per chunk of steps.

Why exact sums: per-rank partial sums in floating point would make the last bits depend on the number of ranks,
and summing a gathered array in slot order costs O(N) per rank per step (no weak scaling). The exact sums cost
4.6 kB per rank per step and about 5 ns per term. tau_eff comes from the earlier steps (a running ratio, moving by
O(1/t) per step), so the weights need no reduction of their own: one collective per step instead of two.

**Bias.** Besides the time-step error (extrapolated to tau -> 0 by `extrapolate`), the finite
population gives the usual population-control bias of order var(E_L) t_corr / N (UNR section III.D): at
N = 1000 below 0.1 mHa for the optimized states, about 7 mHa for a guide with var(E_L) = 4 at N = 12
(docs/results.md, "Checks"); `vmc.analysis` reports UNR's estimate of it with every DMC energy.

**Guard.** A DMC energy whose data cannot support its error bar (too short in imaginary time, too few
autocorrelation times, or below the non-interacting ground state) is reported as a failure, not as a result
(`vmc.analysis.results.dmc_verdict`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import numba
import numpy as np

from ..model.hamiltonian import N_OBSERVABLES, N_TERMS, OBSERVABLE_NAMES, measure
from ..model.wavefunction import (
    accept_all,
    add_grad_lap_all,
    factor_kernel,
    init_all,
    walker_caches,
)
from ..parallel import walker_range
from . import exactsum
from .moves import LANGEVIN, Move, move, velocity_ratio
from .streams import counter_stream, draws, stream, uniform


class Scratch(NamedTuple):
    """The scratch arrays of one DMC walker's moves and measurements."""
    xp: np.ndarray            # (D,) proposed position
    dx: np.ndarray            # (D,) displacement
    f_old: np.ndarray         # (D,) drift force at the current and the proposed position
    f_new: np.ndarray
    grad: np.ndarray          # (M,) gradient and Laplacian of ln|psi| (E_L and |v_bar| / |v|)
    lap: np.ndarray


@numba.njit(cache=True)
def scratch(n_visible, dimensions):
    D, M = dimensions, n_visible
    return Scratch(np.empty(D), np.empty(D), np.empty(D), np.empty(D), np.empty(M), np.empty(M))


CHUNK = 100               # steps per write, per check of stop signals and checkpoint clocks; caches rebuilt
ESTIMATE_WINDOW = 100     # steps of the running energy estimate E_est (exponential window)
STEP_FIELDS = ("energy",) + OBSERVABLE_NAMES + ("trial_energy", "population", "effective_walkers",
                                                 "acceptance", "tau_eff", "max_weight")
# per-walker columns of one step (`walker_step`): E_L, |v_bar|/|v|, observables, move counts
_EL, _VR, _OBS = 0, 1, 2
_ACC, _PROP, _PDR2, _DR2, _CROSS = (N_OBSERVABLES + 2 + k for k in range(5))
N_COLUMNS = N_OBSERVABLES + 7

# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


@factor_kernel
def local_values(factors, terms, w, x, P, D, tau, s, out):
    """out[OBS] = the terms and observables at x (caches of walker w built); returns (E_L, |v_bar|/|v|)."""
    grad, lap = s.grad, s.lap
    for k in range(x.shape[0]):
        grad[k] = 0.0
        lap[k] = 0.0
    add_grad_lap_all(factors, w, x, grad, lap)
    measure(terms, x, grad, lap, out)
    e = 0.0
    for k in range(N_TERMS):
        e += out[k]
    return e, velocity_ratio(grad, P, D, tau)


@factor_kernel
def walker_step(factors, terms, w, x, P, D, tau, rng, s, row):
    """One DMC step of walker w (positions x, caches built): every particle once by the Langevin move of the
    importance sampler (`vmc.mc.moves`) with fixed-node rejection, then E_L and |v_bar|/|v| at the new positions.
    rng: the slot's CounterStream of this step. row (N_COLUMNS,) receives E_L, the ratio, the observables,
    accepted and proposed moves, sum p dR^2, sum dR^2 and the number of proposals rejected for crossing a node."""
    xp, dx, f_old, f_new = s.xp, s.dx, s.f_old, s.f_new
    rule = Move(LANGEVIN, tau, True)
    accepted = 0
    crossings = 0
    pdr2 = 0.0
    dr2 = 0.0
    for i in range(P):
        log_ratio, crossed = move(factors, w, x, i, rule, rng, xp, dx, f_old, f_new)
        u = uniform(rng)
        r2 = 0.0
        for d in range(D):
            r2 += dx[d] * dx[d]
        dr2 += r2
        crossings += crossed
        if log_ratio == -np.inf:
            continue
        p = 1.0 if log_ratio >= 0.0 else math.exp(log_ratio)
        pdr2 += p * r2
        if u < p:
            accept_all(factors, w, x, i, xp)
            accepted += 1
    e, ratio = local_values(factors, terms, w, x, P, D, tau, s, row[_OBS:_OBS + N_OBSERVABLES])
    row[_EL] = e
    row[_VR] = ratio
    row[_ACC] = accepted
    row[_PROP] = P
    row[_PDR2] = pdr2
    row[_DR2] = dr2
    row[_CROSS] = crossings


@numba.njit(cache=True, error_model="numpy")
def step_all(factors, terms, X, D, tau, key0, key1, first_slot, step, rows):
    """One step of every local walker (slot first_slot + w for row w of X); rows (n, N_COLUMNS).
    error_model="numpy" (here and in the other population kernels) for the reason given at
    `vmc.mc.samplers.run_chain`: without raise paths LLVM prunes the inlined factor kernels' reference counts."""
    s = scratch(X.shape[1], D)
    P = X.shape[1] // D
    rng = counter_stream()
    for w in range(X.shape[0]):
        stream(key0, key1, first_slot + w, step, rng)
        walker_step(factors, terms, w, X[w], P, D, tau, rng, s, rows[w])


@numba.njit(cache=True, error_model="numpy")
def init_walkers(factors, X, which):
    """Rebuild the caches of the walkers in `which` (local indices)."""
    for k in range(which.shape[0]):
        w = which[k]
        init_all(factors, w, X[w])


@numba.njit(cache=True, error_model="numpy")
def measure_all(factors, terms, X, P, D, tau, rows):
    """E_L, |v_bar|/|v| and the observables of every local walker (caches built), into rows."""
    s = scratch(X.shape[1], D)
    for w in range(X.shape[0]):
        e, ratio = local_values(factors, terms, w, X[w], P, D, tau, s, rows[w, _OBS:_OBS + N_OBSERVABLES])
        rows[w, _EL] = e
        rows[w, _VR] = ratio


# ----------------------------------------------------------------------------------------------
# The population
# ----------------------------------------------------------------------------------------------


@dataclass
class Counters:
    """The population's global state (identical on every rank); `vmc.drivers.driver.RunState` stores it as dmc_*."""
    steps: int = 0                 # steps done (equilibration and measured)
    trial_energy: float = math.nan
    estimate: float = math.nan     # E_est
    weight: float = 1.0            # W / N: the weight every walker carries after the comb
    pdr2: float = 0.0              # sum of p dR^2 and of dR^2 over all proposals so far (tau_eff)
    dr2: float = 0.0
    accepted: float = 0.0          # over the measured steps
    proposed: float = 0.0
    crossings: float = 0.0         # proposals rejected for crossing a node (all steps)


@numba.njit(cache=True, inline="always")
def _tooth(u, k, d):
    """Position of tooth k of the comb with offset u in [0, 1) and spacing d = W / N."""
    return (u + k) * d


@numba.njit(cache=True)
def _first_tooth_at(x, u, d, lo, n):
    """The smallest k in [lo, n] whose tooth lies at or after x (teeth are non-decreasing in k)."""
    hi = n
    while lo < hi:
        mid = (lo + hi) // 2
        if _tooth(u, mid, d) >= x:
            hi = mid
        else:
            lo = mid + 1
    return lo


@numba.njit(cache=True)
def comb_teeth(cum, before, d, u, n, last):
    """The teeth of the comb that fall on one rank's walkers. `cum`: the running sums of the population's
    weights in slot order at this rank's walkers (exactly rounded, `vmc.mc.exactsum.prefix`), `before`: the
    running sum before its first walker (0 on the first rank), d = W / N, `last`: the rank holds slot N - 1
    (it also takes the teeth at or past W, which rounding can leave there). Tooth k falls on the first
    walker i with cum[i] > (u + k) d. Returns (k_first, parents): teeth k_first, k_first + 1, ... fall on
    the local walkers parents[0], parents[1], ..."""
    k_lo = _first_tooth_at(before, u, d, 0, n)
    k_hi = n if last else _first_tooth_at(cum[cum.shape[0] - 1], u, d, k_lo, n)
    parents = np.empty(k_hi - k_lo, dtype=np.int64)
    i, m = 0, cum.shape[0]
    for k in range(k_lo, k_hi):
        t = _tooth(u, k, d)
        while i < m - 1 and not cum[i] > t:
            i += 1
        parents[k - k_lo] = i
    return k_lo, parents


def comb(weights: np.ndarray, u: float) -> np.ndarray:
    """Parents of N new walkers by the comb (systematic resampling) with offset u in [0, 1):
    new walker k is a copy of the walker on whose cumulative-weight interval the tooth (u + k) W / N falls
    (the population's comb on one rank; on several each rank finds its own teeth, `Population.step`).

    >>> comb(np.array([0.5, 2.5, 1.0]), 0.5).tolist()   # teeth at 2/3, 2, 10/3
    [1, 1, 2]
    """
    n = weights.size
    cum = exactsum.prefix(exactsum.zeros(), weights)
    return comb_teeth(cum, 0.0, cum[-1] / n, u, n, True)[1]


# the exact sums of a step (rows of `weigh`'s acc): W, sum w O_k, sum w^2, sum p dR^2, sum dR^2
_W, _WO, _W2, _SUM_PDR2, _SUM_DR2 = 0, 1, N_OBSERVABLES + 1, N_OBSERVABLES + 2, N_OBSERVABLES + 3
_SUMS = N_OBSERVABLES + 4


@numba.njit(cache=True, error_model="numpy")
def weigh(rows, el, vr, weight, tau_eff, trial_energy, e_est, w, acc):
    """The walkers' new weights w_i = weight exp(tau_eff [E_T - E_est + (S(R) + S(R')) / 2]) (module docstring;
    `el`, `vr`: E_L and |v_bar|/|v| before the step, `rows` after it), and the step's exact sums into acc
    (_SUMS, WIDTH): W, sum w O_k, sum w^2, sum p dR^2, sum dR^2."""
    for i in range(w.shape[0]):
        s_sum = (e_est - el[i]) * vr[i] + (e_est - rows[i, _EL]) * rows[i, _VR]
        wi = weight * math.exp(tau_eff * (trial_energy - e_est + 0.5 * s_sum))
        w[i] = wi
        exactsum.add(acc[_W], wi)
        for k in range(N_OBSERVABLES):
            exactsum.add(acc[_WO + k], wi * rows[i, _OBS + k])
        exactsum.add(acc[_W2], wi * wi)
        exactsum.add(acc[_SUM_PDR2], rows[i, _PDR2])
        exactsum.add(acc[_SUM_DR2], rows[i, _DR2])


_COUNTS = [_ACC, _PROP, _CROSS]
_TAG = 1 << 12             # message tags of the walker exchange: _TAG + step % _TAG


class Population:
    """N DMC walkers in slots 0..N-1, this rank holding slots `walker_range(N, rank, size)`.

    `wf`, `hamiltonian`: the trial state and H; `positions`: (N, M) starting positions of all walkers
    (every rank passes the same array) or None when `restore` follows; `key`: two uint64 words of the
    random streams; `tau`, `feedback`: the time step and the population-control relaxation in steps.
    Per walker a rank holds only its own: positions X, E_L and |v_bar|/|v| of the last step (`el`, `vr`).
    """

    def __init__(self, wf, hamiltonian, comm, n_walkers: int, tau: float, feedback: float, key,
                 positions: np.ndarray | None = None):
        self.wf, self.comm = wf, comm
        self.P, self.D, self.M = wf.particles, wf.dimensions, wf.n_visible
        self.n, self.tau, self.feedback = n_walkers, float(tau), float(feedback)
        self.key0, self.key1 = (np.uint64(k) for k in key)
        self.ranges = [walker_range(n_walkers, r, comm.size) for r in range(comm.size)]
        self.mine = self.ranges[comm.rank]
        self.starts = np.array([r.start for r in self.ranges])
        self.factors = wf.kernel_data(len(self.mine))
        self.caches = walker_caches(self.factors)
        self.terms = hamiltonian.kernel_terms()
        self.X = np.zeros((len(self.mine), self.M))
        self.el = np.zeros(len(self.mine))      # E_L and |v_bar|/|v| of this rank's walkers
        self.vr = np.ones(len(self.mine))
        self.state = [self.X, self.el, self.vr] + self.caches   # a walker's whole state: what a copy takes
        self.c = Counters()
        self.last_parents = np.arange(self.mine.start, self.mine.stop)   # the comb's choice for this rank's slots
        self.received = 0                        # walkers this rank received from other ranks at the last step
        if positions is not None:
            self.start(positions)

    # ---- state
    def start(self, positions: np.ndarray) -> None:
        """Walkers at `positions` (N, M); E_est = E_T = their mean local energy, W = N."""
        self.X[:] = positions[self.mine.start:self.mine.stop]
        self._init(np.arange(len(self.mine)))
        rows = np.zeros((len(self.mine), N_COLUMNS))
        measure_all(self.factors, self.terms, self.X, self.P, self.D, self.tau, rows)
        self.el[:], self.vr[:] = rows[:, _EL], rows[:, _VR]
        e = exactsum.value(self.comm.allreduce_sum(exactsum.accumulate(self.el))) / self.n
        self.c = Counters(estimate=e, trial_energy=e)

    def restore(self, positions: np.ndarray, el: np.ndarray, vr: np.ndarray, counters: Counters) -> None:
        """The population of a checkpoint: positions, E_L and ratios of all N walkers (every rank passes them)."""
        lo, hi = self.mine.start, self.mine.stop
        self.X[:] = positions[lo:hi]
        self.el[:], self.vr[:] = el[lo:hi], vr[lo:hi]
        self.c = counters
        self._init(np.arange(len(self.mine)))

    def _init(self, which: np.ndarray) -> None:
        if which.size:
            init_walkers(self.factors, self.X, np.ascontiguousarray(which, dtype=np.int64))

    # ---- stepping
    def tau_eff(self) -> float:
        return self.tau * self.c.pdr2 / self.c.dr2 if self.c.dr2 > 0 else self.tau

    def advance(self, n_steps: int, measured: bool = True) -> np.ndarray:
        """n_steps steps; returns their records (n_steps, len(STEP_FIELDS)). The caches are rebuilt first."""
        self._init(np.arange(len(self.mine)))
        out = np.empty((n_steps, len(STEP_FIELDS)))
        rows = np.zeros((len(self.mine), N_COLUMNS))
        for k in range(n_steps):
            out[k] = self.step(rows, measured)
        if self.comm.size > 1:      # the largest weight of each step: one reduction per chunk, not per step
            out[:, -1] = self.comm.allreduce_max(out[:, -1])
        return out

    def step(self, rows: np.ndarray, measured: bool = True) -> np.ndarray:
        """One step of the whole population (collective); returns its record (`STEP_FIELDS`; its max_weight is
        this rank's, `advance` takes the maximum over the ranks). One reduction of fixed size whatever N: the
        weights' and the moves' sums with the exclusive scan of the weights (the comb). The weights need only
        this rank's walkers and the population's state after the last step (tau_eff from the moves of the
        steps before this one); every sum is exact (`vmc.mc.exactsum`), so every rank sees the same bits and they
        do not depend on the number of ranks."""
        c, n, comm = self.c, self.n, self.comm
        step_all(self.factors, self.terms, self.X, self.D, self.tau, self.key0, self.key1,
                 self.mine.start, c.steps, rows)
        tau_eff = self.tau_eff()
        e_est = c.estimate
        w = np.empty(len(self.mine))
        acc = exactsum.zeros(_SUMS)
        weigh(rows, self.el, self.vr, c.weight, tau_eff, c.trial_energy, e_est, w, acc)
        self.el[:], self.vr[:] = rows[:, _EL], rows[:, _VR]
        counts = np.rint(rows[:, _COUNTS].sum(axis=0)).astype(np.int64)     # small integers: exact
        summed, below = comm.sum_and_exscan(np.concatenate([acc.ravel(), counts]), acc[_W])
        s = exactsum.values(summed[:acc.size].reshape(acc.shape))
        accepted, proposed, crossings = (float(v) for v in summed[acc.size:])
        total = float(s[_W])
        obs = s[_WO:_WO + N_OBSERVABLES] / total
        energy = float(obs[:N_TERMS].sum())
        w_max = float(w.max()) if w.size else 0.0
        record = np.concatenate([[energy], obs, [c.trial_energy, total, total * total / float(s[_W2]),
                                                 accepted / proposed, tau_eff, w_max / c.weight]])
        c.pdr2 += float(s[_SUM_PDR2])
        c.dr2 += float(s[_SUM_DR2])
        c.crossings += crossings
        if measured:
            c.accepted += accepted
            c.proposed += proposed
        # population control for the next step
        c.steps += 1
        c.estimate = e_est + (energy - e_est) / min(c.steps, ESTIMATE_WINDOW)
        c.weight = total / n
        c.trial_energy = c.estimate - math.log(c.weight) / (self.feedback * tau_eff)
        # the comb: this rank's teeth, from the running weight sums at its walkers
        u = float(draws(self.key0, self.key1, n, c.steps - 1, 1)[0])
        if np.isfinite(total):
            cum = exactsum.prefix(below, w)
            first, parents = comb_teeth(cum, exactsum.value(below), total / n, u, n, comm.rank == comm.size - 1)
        else:
            first, parents = self.mine.start, np.arange(len(self.mine))
        self._take(first, parents, _TAG + c.steps % _TAG)
        return record

    def _owner(self, slot: int) -> int:
        return int(np.searchsorted(self.starts, slot, side="right")) - 1

    def _take(self, first: int, parents: np.ndarray, tag: int) -> None:
        """Slots first, first + 1, ... receive copies of this rank's walkers parents[0], parents[1], ...
        (local indices). The comb's teeth are in slot order, so a rank's teeth are one run of slots: those
        among its own slots are copied in place, the others are sent to their ranks (one message per rank,
        each parent once); a rank receives until its slots are full. A copy is the parent's whole state
        (`state`: positions, E_L and ratio of the step, the factors' caches), so it needs no rebuild and
        continues bit for bit as the parent would, whichever rank it lands on."""
        lo, hi = self.mine.start, self.mine.stop
        stop = first + parents.size
        source = np.arange(lo, hi)                          # every slot's parent slot
        a, b = max(first, lo), min(stop, hi)
        if a < b:
            source[a - lo:b - lo] = parents[a - first:b - first] + lo
        requests = []
        if parents.size and (first < lo or stop > hi):
            for q in range(self._owner(first), self._owner(stop - 1) + 1):
                s, e = max(first, self.ranges[q].start), min(stop, self.ranges[q].stop)
                if q == self.comm.rank or s >= e:
                    continue
                p = parents[s - first:e - first]
                unique = np.unique(p)
                message = np.concatenate([[s, e - s, unique.size], p + lo] + [v[unique].ravel() for v in self.state])
                requests.append(self.comm.send(message, q, tag))
        local = np.flatnonzero(source != np.arange(lo, hi))    # slots with a copy of one of this rank's walkers
        for v in self.state:
            v[local] = v[source[local] - lo]
        missing = (hi - lo) - max(0, b - a)
        self.received = missing
        while missing > 0:
            m = self.comm.receive_any(tag)
            s, count, k = int(m[0]), int(m[1]), int(m[2])
            p = m[3:3 + count].astype(np.int64)
            which = np.searchsorted(np.unique(p), p)
            rows = slice(s - lo, s - lo + count)
            source[rows] = p
            at = 3 + count
            for v in self.state:
                size = v[0].size
                v[rows] = m[at:at + k * size].reshape((k,) + v.shape[1:])[which]
                at += k * size
            missing -= count
        self.comm.wait(requests)
        self.last_parents = source


# ----------------------------------------------------------------------------------------------
# Analysis
# ----------------------------------------------------------------------------------------------


def mser(series: np.ndarray, batch: int = 0) -> int:
    """Steps to discard as equilibration by the MSER rule (White 1997): the truncation d (a multiple of
    `batch`, at most half the series) that minimizes the squared standard error of the remaining batch
    means, sum_{i>=d} (y_i - mean_d)^2 / (n - d)^2. `batch` 0: about n / 200 steps, at least 5.

    >>> x = np.concatenate([np.linspace(5.0, 1.0, 200), np.random.default_rng(1).normal(1.0, 0.1, 2000)])
    >>> 150 <= mser(x) <= 260
    True
    """
    x = np.asarray(series, dtype=float)
    b = batch or max(5, x.size // 200)
    nb = x.size // b
    if nb < 4:
        return 0
    y = x[x.size - nb * b:].reshape(nb, b).mean(axis=1)   # batches aligned at the end of the series
    offset = x.size - nb * b
    rs = np.cumsum(y[::-1])[::-1]
    rs2 = np.cumsum((y * y)[::-1])[::-1]
    m = nb - np.arange(nb)
    stat = (rs2 - rs * rs / m) / (m * m)
    d = int(np.argmin(stat[:nb // 2 + 1]))
    return offset + d * b if d > 0 else 0


def population_control_weights(trial_energy, population, tau_eff, span: int) -> np.ndarray:
    """Weights Pi_t W_t that remove the population-control bias from the mixed estimator (UNR eq. 29):
    E = sum_t Pi_t W_t E_t / sum_t Pi_t W_t, where W_t is the total weight after step t and Pi_t undoes the
    trial-energy factors exp(tau_eff E_T) that population control applied during the last `span` steps,
    Pi_t = exp(-sum_{k=t-span+1}^{t} tau_eff(k) [E_T(k) - <E_T>]). span = 0 gives the plain weights W_t.
    The difference between the corrected and the plain estimate measures the bias (of order 1/N).

    >>> w = population_control_weights(np.array([1.0, 1.1, 0.9]), np.ones(3), np.full(3, 0.5), 1)
    >>> np.round(np.log(w / w[0]), 6).tolist()    # -0.5 (E_T(k) - 1) relative to step 0
    [0.0, -0.05, 0.05]
    """
    a = np.asarray(tau_eff, dtype=float) * (np.asarray(trial_energy, dtype=float) - np.mean(trial_energy))
    c = np.concatenate([[0.0], np.cumsum(a)])
    t = np.arange(a.size)
    log_pi = -(c[t + 1] - c[np.maximum(t - span + 1, 0)]) if span > 0 else np.zeros(a.size)
    return np.exp(log_pi - log_pi.max()) * np.asarray(population, dtype=float)


def extrapolate(tau, energy, error) -> dict:
    """Weighted least-squares fit of E(tau) = E_0 + a tau (+ b tau^2 where the data need it: the linear
    fit's chi^2 has a p-value below 0.05 and there are at least 4 points) -> E_0 with its error.
    Returns {"order", "e0", "error", "coefficients", "chi2", "dof"}."""
    t, e, s = (np.asarray(v, dtype=float) for v in (tau, energy, error))
    fits = []
    for order in (1, 2):
        if np.unique(t).size < order + 1:
            break
        A = np.vander(t, order + 1, increasing=True) / s[:, None]
        cov = np.linalg.inv(A.T @ A)
        coef = cov @ (A.T @ (e / s))
        chi2 = float(np.sum(((np.vander(t, order + 1, increasing=True) @ coef - e) / s) ** 2))
        dof = t.size - order - 1
        fits.append({"order": order, "e0": float(coef[0]), "error": float(math.sqrt(cov[0, 0])),
                     "coefficients": coef.tolist(), "chi2": chi2, "dof": dof})
    if not fits:
        raise ValueError("a time-step extrapolation needs at least two different time steps")
    best = fits[0]
    if len(fits) > 1 and best["dof"] > 0 and _chi2_sf(best["chi2"], best["dof"]) < 0.05 and t.size >= 4:
        best = fits[1]
    return best


def _chi2_sf(x: float, k: int) -> float:
    """P(chi^2_k > x) (Wilson-Hilferty approximation; enough to decide between a line and a parabola)."""
    z = ((x / k) ** (1.0 / 3.0) - (1.0 - 2.0 / (9.0 * k))) / math.sqrt(2.0 / (9.0 * k))
    return 0.5 * math.erfc(z / math.sqrt(2.0))
