r"""Markov-chain samplers of |psi|^2: a walker state plus a transition rule.

A *sweep* proposes a move of every particle once, one particle at a time (P proposals), except for
Gibbs sampling, where a sweep is one full update of the hidden and then the visible units.

* Metropolis (brute force): x_i' = x_i + step * (U - 1/2), U uniform in [0, 1)^D, accepted with
  probability min(1, |psi(x')|^2 / |psi(x)|^2).
* Importance sampling (Langevin / Fokker-Planck): x_i' = x_i + D F_i(x) dt + sqrt(dt) xi, D = 1/2,
  F = 2 grad ln psi, xi ~ N(0, 1); accepted with min(1, G(x; x') |psi(x')|^2 / (G(x'; x) |psi(x)|^2)),
  G(y; x) = exp(-(y - x - D dt F(x))^2 / (4 D dt)). The drift is limited where it diverges (nodes of
  determinants, cusps; see `limit_drift`), which keeps the sampling exact.
* Gibbs: h_j | x ~ Bernoulli(sigmoid(u_j)), then x | h ~ Normal(a + W h, sigma^2). This samples the
  RBM joint distribution whose x-marginal is F(x); it samples |psi|^2 = F^(2g) only for g = 1/2.

Every walker has its own `numpy.random.Generator` (spawned from one `SeedSequence`) passed into the
kernel, so a run is reproducible from (seed, number of walkers) whatever the order of work.
After each measured sweep the kernel records the local observables (T_L, V_trap, V_int, mean r_ij),
optionally d ln psi / d theta, and optionally a histogram of the particles' radial distances.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np

from .hamiltonian import N_OBSERVABLES, Hamiltonian, local_observables
from .jastrow import add_drift_jastrow, add_grad_lap_jastrow, delta_log_jastrow, dlog_jastrow_dbeta
from .slater import drift_log_det, grad_lap_log_det, orbitals, ratio, sherman_morrison, slater_inverse
from .wavefunction import (TrialState, drift_particle, grad_lap_log_psi, hidden_preactivation,
                           log_psi_grad_params, log_psi_sq_ratio, shift_hidden, sigmoid, softplus_all)

METROPOLIS, IMPORTANCE, GIBBS = 0, 1, 2
KINDS = {"metropolis": METROPOLIS, "importance": IMPORTANCE, "gibbs": GIBBS}


# ----------------------------------------------------------------------------------------------
# Kernels
# ----------------------------------------------------------------------------------------------


@numba.njit(cache=True)
def factors_log_ratio(x, i, xp, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, val_new, g_orb, l_orb):
    """ln |psi(x')/psi(x)|^2 from the Jastrow and determinant factors when particle i moves to xp.

    Returns (log ratio, R) with R = det ratio of i's spin block (1 without determinants); val_new then
    holds the orbitals at xp (for the Sherman-Morrison update). R = 0 gives -inf (never accepted).
    """
    log_ratio = 0.0
    R = 1.0
    if jastrow:
        log_ratio += 2.0 * delta_log_jastrow(x, P, D, cusp, beta, i, xp)
    if slater:
        n = P // 2
        orbitals(xp, omega, qn, val_new, g_orb, l_orb)
        R = ratio(dinv_up if i < n else dinv_dn, i % n, val_new)
        if R == 0.0:
            return -np.inf, R
        log_ratio += 2.0 * math.log(abs(R))
    return log_ratio, R


@numba.njit(cache=True)
def add_factors_drift(x, i, xp, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, R,
                      val, g_orb, l_orb, tmp, force):
    """force += 2 grad_{x_i} ln |J det| with particle i at xp (R: det ratio of that position, 1 if current)."""
    if jastrow:
        for d in range(D):
            tmp[d] = 0.0
        add_drift_jastrow(x, P, D, cusp, beta, i, xp, tmp)
        for d in range(D):
            force[d] += 2.0 * tmp[d]
    if slater:
        n = P // 2
        drift_log_det(xp, i % n, omega, qn, dinv_up if i < n else dinv_dn, R, val, g_orb, l_orb, tmp)
        for d in range(D):
            force[d] += 2.0 * tmp[d]


@numba.njit(cache=True)
def refresh_determinants(x, P, D, omega, qn, dinv_up, dinv_dn, dmat, g_orb, l_orb):
    """Inverse Slater matrices from scratch (O(n^3)); bounds the drift of the Sherman-Morrison updates."""
    n = P // 2
    slater_inverse(x, 0, n, D, omega, qn, dinv_up, dmat, g_orb, l_orb)
    slater_inverse(x, n, n, D, omega, qn, dinv_dn, dmat, g_orb, l_orb)


@numba.njit(cache=True, inline="always")
def limit_drift(force, dt):
    """Scale the quantum force F = 2 v so that the drift step v dt stays below ~sqrt(2 dt) near nodes
    and cusps (Umrigar, Nightingale, Runge, J. Chem. Phys. 99, 2865 (1993), with a = 1):
        v -> v (-1 + sqrt(1 + 2 v^2 dt)) / (v^2 dt).
    Unchanged to first order for small v dt; the Green's function uses the same limited drift both
    ways, so detailed balance stays exact. Without it a walker next to a node of the determinants is
    thrown far away by the ~1/d drift, the reverse move is never accepted and the walker freezes."""
    v2 = 0.0
    for d in range(force.shape[0]):
        v2 += 0.25 * force[d] * force[d]
    c = v2 * dt
    if c > 1e-12:
        scale = (-1.0 + math.sqrt(1.0 + 2.0 * c)) / c
        for d in range(force.shape[0]):
            force[d] *= scale


@numba.njit(cache=True, inline="always")
def accept_move(x, i, D, xp, u, sp, u_new, sp_new, slater, P, dinv_up, dinv_dn, val, R, scratch):
    """Move particle i to xp: positions, hidden units and (Sherman-Morrison) the inverse Slater matrix."""
    for d in range(D):
        x[i * D + d] = xp[d]
    for j in range(u.shape[0]):
        u[j] = u_new[j]
        sp[j] = sp_new[j]
    if slater:
        n = P // 2
        sherman_morrison(dinv_up if i < n else dinv_dn, i % n, val, R, scratch)


@numba.njit(cache=True)
def metropolis_sweep(x, u, sp, a, W, sigma, g, P, D, step, rng, xp, dx, u_new, sp_new,
                     jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, val, g_orb, l_orb, scratch):
    """One brute-force Metropolis sweep; returns the number of accepted particle moves.

    (u, sp) are the walker's hidden pre-activations and their softplus, kept up to date; dinv_up and
    dinv_dn the inverse Slater matrices (Sherman-Morrison update on acceptance).
    """
    accepted = 0
    for i in range(P):
        first = i * D
        for d in range(D):
            dx[d] = step * (rng.random() - 0.5)
            xp[d] = x[first + d] + dx[d]
        shift_hidden(u, W, sigma, first, dx, u_new, sp_new)
        log_ratio = log_psi_sq_ratio(x, a, sigma, g, first, xp, sp, sp_new)
        extra, R = factors_log_ratio(x, i, xp, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn,
                                     val, g_orb, l_orb)
        log_ratio += extra
        if log_ratio >= 0.0 or rng.random() < math.exp(log_ratio):
            accept_move(x, i, D, xp, u, sp, u_new, sp_new, slater, P, dinv_up, dinv_dn, val, R, scratch)
            accepted += 1
    return accepted


@numba.njit(cache=True)
def importance_sweep(x, u, sp, a, W, sigma, g, P, D, dt, rng, xp, dx, u_new, sp_new, f_old, f_new,
                     jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, val, g_orb, l_orb, scratch, tmp):
    """One Langevin (importance-sampling) sweep; returns the number of accepted particle moves."""
    accepted = 0
    sqrt_dt = math.sqrt(dt)
    for i in range(P):
        first = i * D
        xi = x[first:first + D]
        drift_particle(x, u, a, W, sigma, g, first, xi, f_old)
        add_factors_drift(x, i, xi, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, 1.0,
                          val, g_orb, l_orb, tmp, f_old)
        limit_drift(f_old, dt)
        for d in range(D):
            dx[d] = 0.5 * f_old[d] * dt + sqrt_dt * rng.standard_normal()
            xp[d] = x[first + d] + dx[d]
        shift_hidden(u, W, sigma, first, dx, u_new, sp_new)
        log_ratio = log_psi_sq_ratio(x, a, sigma, g, first, xp, sp, sp_new)
        extra, R = factors_log_ratio(x, i, xp, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn,
                                     val, g_orb, l_orb)
        if extra == -np.inf:
            continue
        log_ratio += extra
        drift_particle(x, u_new, a, W, sigma, g, first, xp, f_new)
        add_factors_drift(x, i, xp, P, D, jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, R,
                          scratch, g_orb, l_orb, tmp, f_new)
        limit_drift(f_new, dt)
        # ln G(x; x') - ln G(x'; x), with 4 D dt = 2 dt
        log_green = 0.0
        for d in range(D):
            back = x[first + d] - xp[d] - 0.5 * dt * f_new[d]
            forth = xp[d] - x[first + d] - 0.5 * dt * f_old[d]
            log_green += forth * forth - back * back
        log_ratio += log_green / (2.0 * dt)
        if log_ratio >= 0.0 or rng.random() < math.exp(log_ratio):
            accept_move(x, i, D, xp, u, sp, u_new, sp_new, slater, P, dinv_up, dinv_dn, val, R, scratch)
            accepted += 1
    return accepted


@numba.njit(cache=True)
def gibbs_sweep(x, u, sp, a, b, W, sigma, rng, h):
    """One Gibbs update h | x, then x | h; u and sp = softplus(u) are recomputed for the new x."""
    M, N = W.shape
    for j in range(N):
        h[j] = 1.0 if rng.random() < sigmoid(u[j]) else 0.0
    for k in range(M):
        mean = a[k]
        for j in range(N):
            mean += W[k, j] * h[j]
        x[k] = mean + sigma * rng.standard_normal()
    hidden_preactivation(x, b, W, sigma, u)
    softplus_all(u, sp)


@numba.njit(cache=True)
def radial_histogram(x, P, D, r_max, hist):
    n_bins = hist.shape[0]
    for i in range(P):
        r2 = 0.0
        for d in range(D):
            r2 += x[i * D + d] ** 2
        k = int(math.sqrt(r2) / r_max * n_bins)
        if k < n_bins:
            hist[k] += 1.0


REFRESH_EVERY = 100   # sweeps between recomputations of the inverse Slater matrices from scratch


@numba.njit(cache=True)
def run_chain(kind, move, x, a, b, W, sigma, g, omega, P, D, interaction, rng, n_burn, n_steps,
              obs_out, grad_out, hist, r_max, sigma_index, jastrow, cusp, beta, beta_index, slater, qn):
    """Advance one walker n_burn + n_steps sweeps, measuring after each of the last n_steps.

    kind: METROPOLIS (move = step), IMPORTANCE (move = dt) or GIBBS (move unused; plain RBM only).
    obs_out: (n_steps, N_OBSERVABLES) local observables; grad_out: (n_steps, n_opt) d ln psi/d theta,
    or (0, 0) to skip (RBM part, then sigma at sigma_index and beta at beta_index when >= 0);
    hist: radial histogram counts (length 0 to skip). jastrow/slater switch the Padé-Jastrow factor
    (cusp matrix, beta) and the determinants (orbital quantum numbers qn; orbitals scaled by omega).
    Returns the number of accepted moves during the measured sweeps.
    """
    M, N = W.shape
    u = np.empty(N)
    u_new = np.empty(N)
    sp = np.empty(N)
    sp_new = np.empty(N)
    sig = np.empty(N)
    dsig = np.empty(N)
    xp = np.empty(D)
    dx = np.empty(D)
    f_old = np.empty(D)
    f_new = np.empty(D)
    tmp = np.empty(D)
    h = np.empty(N)
    grad = np.empty(M)
    lap = np.empty(M)
    n_orb = qn.shape[0]
    dinv_up = np.empty((n_orb, n_orb))
    dinv_dn = np.empty((n_orb, n_orb))
    dmat = np.empty((n_orb, n_orb))
    val = np.empty(n_orb)
    scratch = np.empty(n_orb)
    g_orb = np.empty((n_orb, D))
    l_orb = np.empty((n_orb, D))
    hidden_preactivation(x, b, W, sigma, u)
    softplus_all(u, sp)
    if slater:
        refresh_determinants(x, P, D, omega, qn, dinv_up, dinv_dn, dmat, g_orb, l_orb)
    accepted = 0
    for s in range(n_burn + n_steps):
        if kind == METROPOLIS:
            acc = metropolis_sweep(x, u, sp, a, W, sigma, g, P, D, move, rng, xp, dx, u_new, sp_new,
                                   jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, val, g_orb, l_orb, scratch)
        elif kind == IMPORTANCE:
            acc = importance_sweep(x, u, sp, a, W, sigma, g, P, D, move, rng, xp, dx, u_new, sp_new, f_old, f_new,
                                   jastrow, cusp, beta, slater, qn, omega, dinv_up, dinv_dn, val, g_orb, l_orb,
                                   scratch, tmp)
        else:
            gibbs_sweep(x, u, sp, a, b, W, sigma, rng, h)
            acc = P
        if slater and (s + 1) % REFRESH_EVERY == 0:
            refresh_determinants(x, P, D, omega, qn, dinv_up, dinv_dn, dmat, g_orb, l_orb)
        if s < n_burn:
            continue
        t = s - n_burn
        accepted += acc
        grad_lap_log_psi(x, u, a, W, sigma, g, grad, lap, sig, dsig)
        if jastrow:
            add_grad_lap_jastrow(x, P, D, cusp, beta, grad, lap)
        if slater:
            n = P // 2
            grad_lap_log_det(x, 0, n, D, omega, qn, dinv_up, grad, lap, val, g_orb, l_orb)
            grad_lap_log_det(x, n, n, D, omega, qn, dinv_dn, grad, lap, val, g_orb, l_orb)
        local_observables(x, grad, lap, omega, P, D, interaction, obs_out[t])
        if grad_out.shape[0] > 0:
            log_psi_grad_params(x, u, a, W, sigma, g, grad_out[t], sigma_index)
            if jastrow and beta_index >= 0:
                grad_out[t, beta_index] = dlog_jastrow_dbeta(x, P, D, cusp, beta)
        if hist.shape[0] > 0:
            radial_histogram(x, P, D, r_max, hist)
    return accepted


# ----------------------------------------------------------------------------------------------
# Orchestration
# ----------------------------------------------------------------------------------------------


class Walkers:
    """The Markov-chain state: positions (n_walkers, M) and one random stream per walker."""

    def __init__(self, positions: np.ndarray, rngs: list[np.random.Generator]):
        self.positions = np.ascontiguousarray(positions, dtype=np.float64)
        self.rngs = rngs
        if len(rngs) != self.positions.shape[0]:
            raise ValueError("one random generator per walker is required")

    @classmethod
    def start(cls, seeds: list[np.random.SeedSequence], n_visible: int, spread: float) -> "Walkers":
        """Walkers at Gaussian random positions of width `spread`, each with its own stream."""
        rngs = [np.random.Generator(np.random.PCG64(s)) for s in seeds]
        positions = np.array([rng.normal(0.0, spread, n_visible) for rng in rngs]).reshape(len(rngs), n_visible)
        return cls(positions, rngs)

    @property
    def n_walkers(self) -> int:
        return self.positions.shape[0]

    def rng_states(self) -> list[dict]:
        return [r.bit_generator.state for r in self.rngs]

    def rng_state_array(self) -> np.ndarray:
        return rng_words(self.rng_states())

    def set_rng_state_array(self, words: np.ndarray) -> None:
        for r, row in zip(self.rngs, np.asarray(words, dtype=np.uint64)):
            r.bit_generator.state = rng_state(row)


_MASK64 = (1 << 64) - 1


def rng_words(states: list[dict]) -> np.ndarray:
    """PCG64 states as uint64 words (n, 6): state and increment (128 bits each, high word first),
    has_uint32, uinteger; `rng_state` inverts it.

    >>> g = np.random.Generator(np.random.PCG64(7))
    >>> rng_state(rng_words([g.bit_generator.state])[0]) == g.bit_generator.state
    True
    """
    out = np.empty((len(states), 6), dtype=np.uint64)
    for w, st in enumerate(states):
        s, inc = st["state"]["state"], st["state"]["inc"]
        out[w] = (s >> 64, s & _MASK64, inc >> 64, inc & _MASK64, st["has_uint32"], st["uinteger"])
    return out


def rng_state(words) -> dict:
    hi, lo, ihi, ilo, has, uint = (int(v) for v in words)
    return {"bit_generator": "PCG64", "state": {"state": (hi << 64) | lo, "inc": (ihi << 64) | ilo},
            "has_uint32": has, "uinteger": uint}


@dataclass
class Samples:
    """What a sampling pass produced for this process's walkers.

    observables: (n_walkers, n_steps, 4) = T_L, V_trap, V_int, mean r_ij per measured sweep;
    grad_log_psi: (n_walkers, n_steps, n_opt) or None; density_counts: radial histogram or None.
    """
    observables: np.ndarray
    grad_log_psi: np.ndarray | None
    accepted: int
    proposed: int
    density_counts: np.ndarray | None = None

    @property
    def local_energy(self) -> np.ndarray:
        """E_L per walker and step, shape (n_walkers, n_steps)."""
        return self.observables[..., :3].sum(axis=-1)

    @property
    def acceptance(self) -> float:
        return self.accepted / self.proposed if self.proposed else float("nan")


class Sampler:
    """A transition rule for |psi|^2: kind ('metropolis', 'importance', 'gibbs') and its move size."""

    def __init__(self, kind: str, step: float = 1.0, dt: float = 0.05):
        if kind not in KINDS:
            raise ValueError(f"sampler kind must be one of {sorted(KINDS)}, got {kind!r}")
        self.kind = kind
        self.move = {"metropolis": step, "importance": dt, "gibbs": 0.0}[kind]
        if kind != "gibbs" and not self.move > 0:
            raise ValueError(f"{kind} move size must be > 0, got {self.move}")

    def check(self, wf: TrialState) -> None:
        if self.kind == "gibbs" and wf.g != 0.5:
            raise ValueError("Gibbs sampling draws from the RBM marginal F(x), which is |psi|^2 only "
                             f"for g = 1/2; got g = {wf.g}")
        if self.kind == "gibbs" and (wf.jastrow or wf.slater):
            raise ValueError("Gibbs sampling draws from the RBM alone; it cannot sample a trial state with "
                             "a Jastrow factor or determinants")

    def sample(self, wf: TrialState, hamiltonian: Hamiltonian, walkers: Walkers, n_burn: int, n_steps: int,
               record_grad: bool = False, density_bins: int = 0, density_rmax: float = 1.0) -> Samples:
        """Advance every walker n_burn + n_steps sweeps and return the measurements (see `Samples`)."""
        self.check(wf)
        n_w, P, D = walkers.n_walkers, wf.particles, wf.dimensions
        obs = np.empty((n_w, n_steps, N_OBSERVABLES))
        grads = np.empty((n_w, n_steps, wf.n_opt)) if record_grad else None
        no_grad = np.empty((0, 0))
        hist = np.zeros(density_bins)
        accepted = 0
        for w in range(n_w):
            accepted += run_chain(KINDS[self.kind], self.move, walkers.positions[w], wf.a, wf.b, wf.W,
                                  wf.sigma, wf.g, hamiltonian.omega, P, D, hamiltonian.interaction,
                                  walkers.rngs[w], n_burn, n_steps, obs[w],
                                  grads[w] if record_grad else no_grad, hist, density_rmax, wf.sigma_index,
                                  wf.jastrow, wf.cusp, wf.beta, wf.beta_index, wf.slater, wf.qn)
        return Samples(obs, grads, accepted, n_w * n_steps * P, hist if density_bins else None)
