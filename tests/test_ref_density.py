"""The production output of a whole run (driver, sampler kernel, HDF5 layout) against exact answers.

Input: six non-interacting-state electrons in 2D, W = 0 RBM x determinants (the exact closed-shell
ground state of the trap), no optimization. Coulomb is switched on in H: that changes E_L, not the
state, so the one-body density is still that of the filled oscillator shells,

    rho(r) = 2 sum_{n_x + n_y <= 1} |phi_{n_x}(x) phi_{n_y}(y)|^2,   int rho d^2r = 6,

computed below from normalised Hermite functions (numpy) and integrated over each histogram bin.

Error bars of the histogram: bin counts are multinomial only up to a factor phi (correlation between
successive sweeps and between the six electrons of a configuration): Var(c) = phi n p (1 - p). phi is
measured here from independent chains of the same sampler and state (`inflation_factor`).
"""
import math

import numpy as np
import pytest
from conftest import run_in_memory

from vmc.input import config
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma
from vmc.output import io

P, D, OMEGA = 6, 2, 1.0
R_MAX, BINS = 4.0, 32

TEXT = """
seed = {seed}
[system]
particles = 6
dimensions = 2
omega = 1.0
interaction = true
[wavefunction]
slater = true
init_scale = 0.0
[sampler]
kind = "{kind}"
step = 1.2
dt = 0.3
walkers = 16
burn_in = 300
steps = 100
[optimizer]
iterations = 0
[production]
steps = 4000
burn_in = 300
density_bins = 32
density_rmax = 4.0
"""


def hermite_function(n, x, omega):
    """Normalised 1D oscillator eigenfunction (omega/pi)^(1/4) H_n(sqrt(omega) x) e^(-omega x^2/2) / sqrt(2^n n!)."""
    y = math.sqrt(omega) * x
    coef = np.zeros(n + 1)
    coef[n] = 1.0
    norm = (omega / math.pi) ** 0.25 / math.sqrt(2.0 ** n * math.factorial(n))
    return norm * np.polynomial.hermite.hermval(y, coef) * np.exp(-0.5 * y * y)


def shell_density(points, omega, shells=2):
    """rho at points (n, 2): two spins times the filled orbitals of shells 0..shells-1."""
    rho = np.zeros(len(points))
    for nx in range(shells):
        for ny in range(shells - nx):
            rho += 2 * (hermite_function(nx, points[:, 0], omega) * hermite_function(ny, points[:, 1], omega)) ** 2
    return rho


def radial_density(r, omega):
    """rho(r) along a few directions: closed shells are isotropic, so all agree."""
    angles = np.array([0.0, 0.7, 2.0])
    values = [shell_density(np.c_[r * math.cos(t), r * math.sin(t)], omega) for t in angles]
    for v in values[1:]:
        np.testing.assert_allclose(v, values[0], rtol=1e-12, atol=1e-300)
    return values[0]


def bin_masses(edges, omega):
    """int over each annulus of rho d^2r (Gauss-Legendre, 16 nodes per bin)."""
    nodes, weights = np.polynomial.legendre.leggauss(16)
    lo, hi = edges[:-1, None], edges[1:, None]
    r = 0.5 * (hi - lo) * nodes + 0.5 * (hi + lo)
    rho = radial_density(r.ravel(), omega).reshape(r.shape)
    return np.sum(0.5 * (hi - lo) * weights * rho * 2 * math.pi * r, axis=1)


def test_own_density_is_normalised():
    edges = np.linspace(0.0, 12.0, 97)
    assert bin_masses(edges, OMEGA).sum() == pytest.approx(P, rel=1e-12)
    r = np.linspace(0.0, 3.0, 7)       # and it is the closed form 2 (omega/pi) e^(-omega r^2) (1 + 2 omega r^2)
    np.testing.assert_allclose(radial_density(r, OMEGA), 2 / math.pi * np.exp(-r * r) * (1 + 2 * r * r), rtol=1e-12)


_runs = {}


def run(kind, seed):
    if (kind, seed) not in _runs:
        _runs[kind, seed] = run_in_memory(config.from_text(TEXT.format(kind=kind, seed=seed)).spec())
    return _runs[kind, seed]


def inflation_factor(kind, p):
    """phi = Var(bin count) / (n p (1 - p)) for this sampler and state, from 16 independent single-walker
    chains with the run's settings (16 x 4000 sweeps): per bin the variance over the chains, pooled over
    the bins (about 15 x 25 degrees of freedom, so phi is known to ~8 %)."""
    wf = TrialState(P, D, 2, default_sigma(OMEGA, 0.5), slater=True, omega=OMEGA)
    ham = Hamiltonian(P, D, OMEGA, interaction=True)
    sampler = Sampler(kind, step=1.2, dt=0.3)
    hists = np.array([sampler.sample(wf, ham, Walkers.start(99, range(k, k + 1), P * D, 1.0), 300, 4000,
                                     density_bins=BINS, density_rmax=R_MAX).density_counts for k in range(16)])
    n = hists.sum(axis=1).mean()
    used = n * p > 100
    return np.mean(hists.var(axis=0, ddof=1)[used] / (n * p * (1 - p))[used])


@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_radial_density_of_the_closed_shell(kind):
    f = run(kind, 11)[1]
    dens = f["production/density"]
    edges = dens["r_edges"][...]
    np.testing.assert_allclose(edges, np.linspace(0.0, R_MAX, BINS + 1), rtol=1e-14)
    np.testing.assert_allclose(dens["r"][...], 0.5 * (edges[1:] + edges[:-1]), rtol=1e-14)
    annulus = math.pi * (edges[1:] ** 2 - edges[:-1] ** 2)
    density, counts = dens["density"][...], dens["counts"][...]

    # normalisation: the stored density integrates to the number of particles
    assert np.sum(density * annulus) == pytest.approx(P, rel=1e-12)

    n = counts.sum()
    assert n == pytest.approx(16 * 4000 * P, rel=1e-4)          # every electron of every sweep, ~none beyond R_MAX
    mass = bin_masses(edges, OMEGA)
    p = mass / mass.sum()
    used = n * p > 100
    assert used.sum() >= 25
    phi = inflation_factor(kind, p)
    assert 0.5 < phi < 8.0, phi                                  # a moderate inflation: the check has teeth

    # bin by bin against the bin averages of rho(r)
    expected = mass / annulus * P / mass.sum()
    err = expected * np.sqrt(phi * (1 - p) / (n * p))
    assert np.median((err / expected)[used]) < 0.02            # per-bin resolution of the bulk: ~1 %
    z = ((density - expected) / err)[used]
    assert np.max(np.abs(z)) < 5.0, np.round(z, 1)
    assert np.mean(z ** 2) < 2.0, np.round(z, 1)


@pytest.mark.parametrize("kind", ["metropolis", "importance"])
def test_production_series_match_final_positions_and_virial(kind):
    """The production datasets hold the right observable under each name: the last column against the
    walkers' final positions (checkpoint), E_L = T + V_trap + V_int, and the non-interacting part of E_L
    exactly the closed-shell energy 10 with <V_trap> = 5 (virial theorem) within 4 standard errors."""
    summary, f = run(kind, 11)
    prod = f["production"]
    done = int(prod.attrs["steps_done"])
    assert done == 4000
    series = {name: prod[name][:, :done] for name in ("local_energy", "kinetic", "trap", "interaction",
                                                      "pair_distance")}
    np.testing.assert_allclose(series["local_energy"],
                               series["kinetic"] + series["trap"] + series["interaction"], rtol=1e-12)
    np.testing.assert_allclose(series["kinetic"] + series["trap"], 10.0 * OMEGA, rtol=1e-9)

    ck = io.read_checkpoint(f)
    assert ck.state["production_steps"] == done
    positions = ck.arrays["positions"].reshape(-1, P, D)
    diff = positions[:, :, None, :] - positions[:, None, :, :]
    iu = np.triu_indices(P, 1)
    r = np.sqrt(np.sum(diff ** 2, axis=-1))[:, iu[0], iu[1]]
    np.testing.assert_allclose(series["trap"][:, -1], 0.5 * OMEGA ** 2 * np.sum(positions ** 2, axis=(1, 2)),
                               rtol=1e-12)
    np.testing.assert_allclose(series["interaction"][:, -1], np.sum(1.0 / r, axis=1), rtol=1e-12)
    np.testing.assert_allclose(series["pair_distance"][:, -1], np.mean(r, axis=1), rtol=1e-12)

    means = series["trap"].mean(axis=1)
    err = means.std(ddof=1) / math.sqrt(means.size)
    assert err < 0.05
    assert abs(means.mean() - 5.0 * OMEGA) < 4 * err
    assert summary["mean"] == pytest.approx(series["local_energy"].mean(), rel=1e-12)
