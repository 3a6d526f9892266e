r"""Every input option and every rule between options: the tables a physicist edits.

Each `Option` carries its key, default, type, meaning and allowed values; `vmc.input.config` derives the
validation, the README's input reference and the input template from these tables, so they cannot
disagree. Upper bounds keep a run sane on a cluster node (memory and disk are estimated per
configuration before any work, `vmc.drivers.resources`); lengths and times that depend on the trap are
bounded in units of the trap length 1/sqrt(omega) and the trap period 1/omega (`RULES`), each only where the
stage that uses it runs (the Metropolis step only for Metropolis sampling, the DMC time step only with DMC on).
`on_resume = True` marks the options that `vmc run --resume FILE --set KEY=VALUE` may change (run
length and optimizer settings; `dmc.steps` also of a complete run); every other option fixes the physics or
the shape of the stored state.
"""
from __future__ import annotations

from ..model.factors.shells import closed_shell_numbers
from .schema import Option, Rule, between, ge, half_open, interval, one_of

MAX_SEED = 2**63 - 1
MAX_PARTICLES = 72   # eight filled shells in 2D (five in 3D: 70)


def closed_shells_text() -> str:
    """'2, 6, ..., 72 (2D) or 2, 8, ..., 70 (3D)': the P that determinants accept (`closed_shell_numbers`)."""
    return " or ".join(f"{', '.join(map(str, closed_shell_numbers(D, MAX_PARTICLES)))} ({D}D)" for D in (2, 3))


OPTIONS: tuple[Option, ...] = (
    # ---- top level
    Option("seed", 2026, int, "Root seed of every random stream (initial parameters, every walker's and DMC slot's); "
           "the same input and seed give the same numbers.", between(0, MAX_SEED)),
    Option("output", "", str, "HDF5 output file; empty: `runs/<input file stem>.h5` (`vmc run -o` overrides it).",
           sweepable=False),
    Option("checkpoint_interval", 60.0, float, "Seconds between checkpoints (there is always one at the end of "
           "each phase, on a stop signal and on failure); 0: after every iteration and production chunk. A "
           "killed run loses at most this much work.", between(0, 86400), on_resume=True),
    # ---- [system]
    Option("system.particles", 2, int, "Number of particles P.", between(1, MAX_PARTICLES), shape=True),
    Option("system.dimensions", 2, int, "Number of spatial dimensions D.", between(1, 3), shape=True),
    Option("system.omega", 1.0, float, "Trap frequency omega (atomic units): V_trap = omega^2 sum_i r_i^2 / 2.",
           between(1e-3, 1e3)),
    Option("system.statistics", "fermion", str, "fermion: electrons, spin up = particles 0..P/2-1, the rest "
           "spin down (two electrons form the spin singlet and need no determinant; more need "
           "`wavefunction.slater`); boson: symmetric, no determinant (also the choice for distinguishable "
           "particles). Sets the Jastrow cusp values.", one_of("fermion", "boson"), shape=True),
    Option("system.interaction", True, bool, "Coulomb repulsion `sum_{i<j} 1/r_ij` on or off (needs D >= 2 "
           "with more than one particle)."),
    # ---- [wavefunction]
    Option("wavefunction.rbm", "coordinates", str, "coordinates: the RBM's visible units are all P*D "
           "coordinates (hidden units couple coordinates by index, so psi is not symmetric under particle "
           "exchange); symmetric: one-body hidden units shared by all particles times pair hidden units fed "
           "by the distances r_ij (`vmc/model/factors/symmetric.py`), symmetric under every exchange.",
           one_of("coordinates", "symmetric"), shape=True),
    Option("wavefunction.hidden", 2, int, "Number of hidden units N of the RBM (with rbm = \"symmetric\": "
           "its one-body hidden units).", between(1, 100_000), shape=True),
    Option("wavefunction.pair_hidden", 4, int, "Number of pair hidden units of the symmetric RBM (each sees "
           "Gaussians of r_ij of width 1/2, 1 and 2 trap lengths).", between(1, 10_000), shape=True),
    Option("wavefunction.g", 0.5, float, "Trial state psi = F^g, F the RBM marginal of the visible units: 0.5 "
           "makes |psi|^2 the RBM marginal p(x) (needed for Gibbs sampling); 1.0 makes psi = F.",
           one_of(0.5, 1.0), shape=True),
    Option("wavefunction.sigma", 0.0, float, "Width sigma of the visible units; 0: sqrt(g / omega), i.e. "
           "sqrt(1/(2 omega)) for g = 0.5 and sqrt(1/omega) for g = 1, which makes the W = 0, a = 0 state the "
           "exact non-interacting Gaussian.", ge(0)),
    Option("wavefunction.init_scale", 0.1, float, "Standard deviation of the normally distributed initial "
           "a, b and W (0: all start at zero).", between(0, 10)),
    Option("wavefunction.optimize_sigma", False, bool, "Optimize sigma too (otherwise it stays fixed).", shape=True),
    Option("wavefunction.jastrow", "none", str, "none, or pade: multiply by the Padé-Jastrow factor "
           "exp(sum_{i<j} a_ij r_ij / (1 + beta r_ij)) with Kato's cusp values a_ij (1/(D-1) antiparallel "
           "spins or bosons, 1/(D+1) parallel) and beta variational.", one_of("none", "pade"), shape=True),
    Option("wavefunction.beta", 1.0, float, "Initial beta of the Padé-Jastrow factor.", interval(0, 1e3)),
    Option("wavefunction.slater", False, bool, "Multiply by det D_up det D_down of harmonic-oscillator "
           "orbitals (Hermite polynomials in sqrt(omega) x at the trap's omega; the RBM supplies the Gaussian) "
           f"filling closed shells: P = {closed_shells_text()}.", shape=True),
    Option("wavefunction.backflow", "none", str, "none, or rbm: evaluate the determinants at quasi-particle "
           "coordinates r_i' = r_i + sum_{j != i} eta(r_ij) (r_i - r_j), eta a small network in RBM form over "
           "Gaussians of r_ij^2 per spin channel (`vmc/model/factors/backflow.py`), so that the nodes are "
           "variational; starts at eta = 0 (the plain determinants). Needs `wavefunction.slater`; O(N^3) per "
           "move.", one_of("none", "rbm"), shape=True),
    Option("wavefunction.backflow_hidden", 4, int, "Hidden units of the backflow network per spin channel "
           "(parallel, antiparallel).", between(1, 1000), shape=True),
    Option("wavefunction.from_file", "", str, "Empty: random initial parameters (`init_scale`); else an "
           "earlier run's output file whose final parameters (`/wavefunction/params`) start this run (the "
           "trial state must have the same factors and sizes, or be this one without backflow: its parameters then "
           "warm-start this state with the backflow at eta = 0). With `optimizer.iterations = 0` the run "
           "evaluates that state (VMC production, then DMC)."),
    # ---- [sampler]
    Option("sampler.kind", "metropolis", str, "metropolis: brute-force moves uniform in a box of side `step`; "
           "importance: Langevin drift with time step `dt` and Metropolis-Hastings acceptance; gibbs: "
           "alternate h | x and x | h of the RBM joint distribution (needs wavefunction.g = 0.5). A sweep "
           "moves every particle once (gibbs: one update of all hidden, then all visible units).",
           one_of("metropolis", "importance", "gibbs")),
    Option("sampler.step", 1.0, float, "Metropolis step length: x' = x + step (U - 1/2), U uniform in [0, 1)^D.",
           interval(0, 1e6)),
    Option("sampler.dt", 0.05, float, "Langevin time step of importance sampling.", interval(0, 1e6)),
    Option("sampler.walkers", 16, int, "Number of walkers (Markov chains) in total, shared by the MPI ranks "
           "(every rank needs at least one); walker w always uses random stream w.", between(1, 10_000_000)),
    Option("sampler.burn_in", 1000, int, "Sweeps per walker discarded before the first optimization "
           "iteration.", between(0, 10**9), on_resume=True),
    Option("sampler.steps", 1000, int, "Measured sweeps per walker per optimization iteration.",
           between(1, 10**9), on_resume=True),
    Option("sampler.thermalize", 10, int, "Sweeps per walker discarded after each parameter update.",
           between(0, 10**9), on_resume=True),
    # ---- [optimizer]
    Option("optimizer.kind", "adam", str, "sgd: plain gradient descent; momentum: gradient descent with "
           "momentum; adam: Adam; sr: stochastic reconfiguration (natural gradient, solves "
           "(S + sr_shift I) delta = -eta_t G).", one_of("sgd", "momentum", "adam", "sr"), on_resume=True),
    Option("optimizer.learning_rate", 0.01, float, "Learning rate eta.", interval(0, 10), on_resume=True),
    Option("optimizer.iterations", 200, int, "Number of optimization iterations (0: evaluate the initial "
           "parameters).", between(0, 10_000_000), on_resume=True),
    Option("optimizer.schedule", "constant", str, "Learning rate of iteration t: constant: eta_t = eta; "
           "inverse: eta_t = eta / (1 + decay t).", one_of("constant", "inverse"), on_resume=True),
    Option("optimizer.decay", 0.0, float, "Decay rate of the inverse schedule.", between(0, 1e6), on_resume=True),
    Option("optimizer.momentum", 0.9, float, "Momentum coefficient mu (kind = momentum).", half_open(0, 1),
           on_resume=True),
    Option("optimizer.beta1", 0.9, float, "Adam: decay rate of the gradient average.", half_open(0, 1),
           on_resume=True),
    Option("optimizer.beta2", 0.999, float, "Adam: decay rate of the squared-gradient average.", half_open(0, 1),
           on_resume=True),
    Option("optimizer.epsilon", 1e-8, float, "Adam: added to sqrt(v) in the denominator.", interval(0, 1),
           on_resume=True),
    Option("optimizer.sr_shift", 1e-3, float, "Stochastic reconfiguration: diagonal shift added to the "
           "matrix S.", interval(0, 1e3), on_resume=True),
    Option("optimizer.patience", 0, int, "0: off; else stop early when |Delta E| between successive "
           "iterations is below its error bar for this many consecutive iterations.", between(0, 10_000_000),
           on_resume=True),
    Option("optimizer.max_step", 0.0, float, "0: off; else scale each parameter update down to at most "
           "this norm.", between(0, 1e6), on_resume=True),
    # ---- [production]
    Option("production.steps", 10000, int, "Measured sweeps per walker in the final evaluation at fixed "
           "parameters (the reported energy); at least 16, what the blocking analysis needs.",
           between(16, 10**12), on_resume=True),
    Option("production.burn_in", 200, int, "Sweeps per walker discarded before the production "
           "measurements.", between(0, 10**9), on_resume=True),
    Option("production.density_bins", 100, int, "Number of bins of the radial one-body density.",
           between(1, 1_000_000)),
    Option("production.density_rmax", 0.0, float, "Outer radius of the density histogram; 0: 5/sqrt(omega).",
           ge(0)),
    # ---- [dmc]
    Option("dmc.steps", 0, int, "Measured steps of fixed-node diffusion Monte Carlo after the VMC production "
           "(`vmc/mc/dmc.py`); 0: no DMC. At least 16 when on. A resume may raise it, also of a complete or "
           "failed run: the DMC continues from its last population, bit for bit as one longer run when the measured "
           "steps done are a multiple of 100 (a chunk of `vmc.mc.dmc.CHUNK` steps starts by rebuilding the factors' "
           "caches).",
           between(0, 10**9), on_resume=True),
    Option("dmc.equilibration", 1000, int, "DMC steps before the measured ones (recorded, discarded by the "
           "analysis together with any further equilibration it detects).", between(0, 10**9)),
    Option("dmc.time_step", 0.01, float, "DMC time step tau (drift-diffusion move of every particle, then "
           "branching with tau_eff).", interval(0, 10)),
    Option("dmc.walkers", 1000, int, "Target population: walkers in total over all MPI ranks (kept fixed by "
           "the comb, every rank holds the same number of slots; at least one per rank).",
           between(1, 10_000_000)),
    Option("dmc.feedback", 10.0, float, "Population control: the trial energy E_T = E_est - ln(W / N) / "
           "(feedback tau_eff) pulls the total weight W back to the target N within about this many steps.",
           between(1, 1e6)),
)


# Options that no longer exist: key -> (its old default, why it went). `vmc.input.config` drops a removed key at
# its old default (stored configurations of older output files, read by `--resume`, stay readable) and
# refuses any other value with this reason.
REMOVED: dict[str, tuple[object, str]] = {
    "wavefunction.orbital_omega": (0.0, "the closed-shell determinant does not depend on the orbitals' "
                                   "frequency (only a constant factor); the orbitals use the trap's omega"),
}


def _closed_shell(c) -> bool:
    D = c["system.dimensions"]
    return D >= 2 and c["system.particles"] in closed_shell_numbers(D, MAX_PARTICLES)


def _in_trap_units(value: float, omega: float, power: float, lo: float, hi: float) -> bool:
    """lo <= value * omega^power <= hi: a length (power 1/2) or a time (power 1) in trap units."""
    return lo <= value * omega**power <= hi


RULES: tuple[Rule, ...] = (
    Rule(("system.statistics", "system.particles", "wavefunction.slater"),
         lambda c: c["system.statistics"] != "fermion" or c["system.particles"] <= 2 or c["wavefunction.slater"],
         "more than two fermions need wavefunction.slater = true (an RBM alone is symmetric)",
         "More than two fermions (`system.statistics = \"fermion\"`, `system.particles > 2`) need "
         "`wavefunction.slater = true`: the RBM and Jastrow factors are symmetric under exchange."),
    Rule(("wavefunction.slater", "system.statistics"),
         lambda c: not c["wavefunction.slater"] or c["system.statistics"] == "fermion",
         "Slater determinants are for fermions (system.statistics = \"fermion\")",
         "`wavefunction.slater = true` needs `system.statistics = \"fermion\"`."),
    Rule(("wavefunction.slater", "system.particles", "system.dimensions"),
         lambda c: not c["wavefunction.slater"] or _closed_shell(c),
         f"Slater determinants need closed shells: system.particles in {closed_shells_text()}",
         f"`wavefunction.slater = true` needs a closed shell: P = {closed_shells_text()}."),
    Rule(("wavefunction.backflow", "wavefunction.slater"),
         lambda c: c["wavefunction.backflow"] == "none" or c["wavefunction.slater"],
         "backflow moves the nodes of the determinants: wavefunction.backflow needs wavefunction.slater = true",
         "`wavefunction.backflow = \"rbm\"` needs `wavefunction.slater = true` (it replaces the determinants by "
         "determinants at quasi-particle coordinates)."),
    Rule(("sampler.kind", "wavefunction.backflow"),
         lambda c: c["sampler.kind"] != "gibbs" or c["wavefunction.backflow"] == "none",
         "Gibbs sampling draws from the RBM alone: not with backflow",
         "`sampler.kind = \"gibbs\"` needs `wavefunction.backflow = \"none\"`."),
    Rule(("wavefunction.jastrow", "system.dimensions"),
         lambda c: c["wavefunction.jastrow"] == "none" or c["system.dimensions"] >= 2,
         "the Padé-Jastrow cusp needs system.dimensions >= 2",
         "`wavefunction.jastrow = \"pade\"` needs `system.dimensions >= 2` (Kato's cusp a = 1/(D-1))."),
    Rule(("system.interaction", "system.particles", "system.dimensions"),
         lambda c: not c["system.interaction"] or c["system.particles"] == 1 or c["system.dimensions"] >= 2,
         "in 1D the Coulomb energy of these trial states is infinite (they do not vanish where two particles "
         "meet, and <1/|x|> diverges logarithmically): set system.interaction = false or use D >= 2",
         "`system.interaction = true` with more than one particle needs `system.dimensions >= 2`: in 1D the "
         "trial states here do not vanish where particles meet, so <1/|x_i - x_j|> is infinite."),
    Rule(("sampler.kind", "wavefunction.jastrow", "wavefunction.slater"),
         lambda c: c["sampler.kind"] != "gibbs"
         or (c["wavefunction.jastrow"] == "none" and not c["wavefunction.slater"]),
         "Gibbs sampling draws from the RBM alone: not with a Jastrow factor or determinants",
         "`sampler.kind = \"gibbs\"` needs `wavefunction.jastrow = \"none\"` and `wavefunction.slater = false`: "
         "it samples the RBM's own distribution, which is not |psi|^2 once other factors multiply it."),
    Rule(("sampler.kind", "wavefunction.rbm"),
         lambda c: c["sampler.kind"] != "gibbs" or c["wavefunction.rbm"] == "coordinates",
         "Gibbs sampling needs the coordinate RBM (wavefunction.rbm = \"coordinates\")",
         "`sampler.kind = \"gibbs\"` needs `wavefunction.rbm = \"coordinates\"`: it samples that RBM's joint "
         "distribution."),
    Rule(("sampler.kind", "wavefunction.g"),
         lambda c: c["sampler.kind"] != "gibbs" or c["wavefunction.g"] == 0.5,
         "Gibbs sampling needs wavefunction.g = 0.5 (only then is |psi|^2 the x-marginal of the RBM "
         "joint distribution it samples)",
         "`sampler.kind = \"gibbs\"` needs `wavefunction.g = 0.5`: Gibbs sampling draws from the RBM joint "
         "distribution, whose x-marginal is |psi|^2 only for g = 1/2."),
    Rule(("wavefunction.sigma", "system.omega"),
         lambda c: c["wavefunction.sigma"] == 0 or _in_trap_units(c["wavefunction.sigma"], c["system.omega"],
                                                                   0.5, 1e-2, 1e2),
         "sigma must be 0 (the default width) or between 0.01 and 100 trap lengths 1/sqrt(omega)",
         "`wavefunction.sigma` is 0 or between 0.01 and 100 trap lengths 1/sqrt(omega) (a narrower or wider "
         "Gaussian makes psi numerically degenerate)."),
    Rule(("sampler.kind", "sampler.step", "system.omega"),
         lambda c: c["sampler.kind"] != "metropolis"
         or _in_trap_units(c["sampler.step"], c["system.omega"], 0.5, 1e-6, 1e3),
         "the Metropolis step must be between 1e-6 and 1000 trap lengths 1/sqrt(omega)",
         "With `sampler.kind = \"metropolis\"`, `sampler.step` is between 1e-6 and 1000 trap lengths "
         "1/sqrt(omega) (outside, no move is ever rejected or none is ever accepted)."),
    Rule(("sampler.kind", "sampler.dt", "system.omega"),
         lambda c: c["sampler.kind"] != "importance"
         or _in_trap_units(c["sampler.dt"], c["system.omega"], 1.0, 1e-8, 1e3),
         "the Langevin time step must be between 1e-8 and 1000 trap periods 1/omega",
         "With `sampler.kind = \"importance\"`, `sampler.dt` is between 1e-8 and 1000 trap periods 1/omega."),
    Rule(("dmc.steps", "dmc.time_step", "system.omega"),
         lambda c: c["dmc.steps"] == 0 or _in_trap_units(c["dmc.time_step"], c["system.omega"], 1.0, 1e-6, 1.0),
         "the DMC time step must be between 1e-6 and 1 trap period 1/omega",
         "With DMC on (`dmc.steps > 0`), `dmc.time_step` is between 1e-6 and 1 trap period 1/omega."),
    Rule(("dmc.steps",), lambda c: c["dmc.steps"] == 0 or c["dmc.steps"] >= 16,
         "DMC needs at least 16 measured steps (what the blocking analysis needs), or 0 for no DMC",
         "`dmc.steps` is 0 (no DMC) or at least 16."),
    Rule(("production.density_rmax", "system.omega"),
         lambda c: c["production.density_rmax"] == 0 or _in_trap_units(c["production.density_rmax"],
                                                                       c["system.omega"], 0.5, 1e-3, 1e3),
         "the density radius must be 0 (the default 5/sqrt(omega)) or between 0.001 and 1000 trap lengths",
         "`production.density_rmax` is 0 or between 0.001 and 1000 trap lengths 1/sqrt(omega)."),
)
