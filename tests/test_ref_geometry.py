"""Potential energy and pair distances on hand-built geometries, and their sampled values against a
numpy recomputation from the walkers' positions and against closed-form Gaussian averages.

Most earlier checks of the interaction used two particles, where "sum over pairs" and "mean over pairs"
coincide; here P = 3 to 6 in 1D, 2D and 3D.
"""
import math

import numpy as np
import pytest

from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import OBSERVABLE_NAMES, Hamiltonian
from vmc.model.wavefunction import TrialState, default_sigma

SQ2, SQ3 = math.sqrt(2.0), math.sqrt(3.0)
KINETIC, TRAP, INTERACTION, PAIR = (OBSERVABLE_NAMES.index(n) for n in ("kinetic", "trap", "interaction",
                                                                       "pair_distance"))


def rotation_2d(angle):
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def rotation_3d(seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q


# name -> (positions (P, D), sum_{i<j} 1/r_ij, mean r_ij), worked out by hand
GEOMETRIES = {
    # equilateral triangle of side 1: three pairs at distance 1
    "triangle": ((np.array([[0.0, 0.0], [1.0, 0.0], [0.5, SQ3 / 2]]) @ rotation_2d(0.4).T + [0.3, -1.1]),
                 3.0, 1.0),
    # square of side 2: four sides 2, two diagonals 2 sqrt 2
    "square": ((np.array([[1.0, 1.0], [-1.0, 1.0], [-1.0, -1.0], [1.0, -1.0]]) @ rotation_2d(1.0).T + [0.5, 0.2]),
               4 / 2 + 2 / (2 * SQ2), (4 * 2 + 2 * 2 * SQ2) / 6),
    # regular tetrahedron with edge 2 sqrt 2 (alternate corners of a cube of side 2)
    "tetrahedron": ((np.array([[1.0, 1.0, 1.0], [1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
                     @ rotation_3d(2).T + [0.1, 0.2, -0.3]), 6 / (2 * SQ2), 2 * SQ2),
    # regular octahedron (+-e_x, +-e_y, +-e_z) scaled by 1.5: 12 edges 1.5 sqrt 2, 3 diagonals 3
    "octahedron": (1.5 * np.vstack([np.eye(3), -np.eye(3)]) @ rotation_3d(5).T,
                   12 / (1.5 * SQ2) + 3 / 3.0, (12 * 1.5 * SQ2 + 3 * 3.0) / 15),
    # four points on a line at -1, 0.5, 2, 4.5: distances 1.5, 3, 5.5, 1.5, 4, 2.5
    "collinear_1d": (np.array([[-1.0], [0.5], [2.0], [4.5]]),
                     1 / 1.5 + 1 / 3 + 1 / 5.5 + 1 / 1.5 + 1 / 4 + 1 / 2.5, 18.0 / 6),
    # the same points on a tilted line in 3D
    "collinear_3d": (np.array([-1.0, 0.5, 2.0, 4.5])[:, None] * (np.array([1.0, -2.0, 2.0]) / 3.0) + [0.2, 0.4, -0.6],
                     1 / 1.5 + 1 / 3 + 1 / 5.5 + 1 / 1.5 + 1 / 4 + 1 / 2.5, 18.0 / 6),
    # three points on a line in 2D at 0, 1, 3 along (3, 4)/5: distances 1, 3, 2
    "collinear_2d": (np.array([0.0, 1.0, 3.0])[:, None] * np.array([0.6, 0.8]), 1 + 1 / 3 + 1 / 2, 2.0),
    "pair": (np.array([[0.0, 0.0, 0.0], [0.0, 2.0, 0.0]]), 0.5, 2.0),
}


def own_pair_sums(positions):
    """(sum_{i<j} 1/r_ij, mean r_ij) with numpy, from positions (P, D)."""
    diff = positions[:, None, :] - positions[None, :, :]
    r = np.sqrt(np.sum(diff ** 2, axis=-1))[np.triu_indices(len(positions), 1)]
    return np.sum(1.0 / r), np.mean(r)


@pytest.mark.parametrize("name", GEOMETRIES)
def test_pair_sums_on_hand_built_geometries(name):
    positions, inv, mean = GEOMETRIES[name]
    P, D = positions.shape
    assert own_pair_sums(positions) == pytest.approx((inv, mean), rel=1e-12)     # the hand values are right
    x = np.ascontiguousarray(positions.ravel())
    # the terms every sampler measures (the kernels' code path): interaction, pair distance, trap energy
    omega = 0.7
    zeros = np.zeros(P * D)
    for interaction in (True, False):
        out = Hamiltonian(P, D, omega, interaction).local_values(x, zeros, zeros)
        assert out[INTERACTION] == (pytest.approx(inv, rel=1e-12) if interaction else 0.0)
        assert out[PAIR] == pytest.approx(mean, rel=1e-12)
        assert out[TRAP] == pytest.approx(0.5 * omega ** 2 * np.sum(positions ** 2), rel=1e-12)
        assert out[KINETIC] == 0.0

def test_kinetic_energy_of_a_hand_differentiated_state():
    """T_L = -(1/2) nabla^2 psi / psi for psi = exp(-alpha |x|^2) prod_k (1 + c_k x_k): derivatives of
    ln psi by hand, T_L from the definition (psi''/psi of each factor, no log-derivative identity)."""
    alpha = 0.8
    x = np.array([0.4, -1.2, 0.7, 0.3])
    c = np.array([0.5, -0.3, 0.2, 1.1])
    lin = 1 + c * x
    grad = -2 * alpha * x + c / lin
    lap = -2 * alpha - (c / lin) ** 2
    # psi''/psi per coordinate: (e^{-alpha x^2} (1 + c x))'' / (e^{-alpha x^2} (1 + c x))
    second = (4 * alpha ** 2 * x ** 2 - 2 * alpha) + 2 * (-2 * alpha * x) * c / lin
    out = Hamiltonian(2, 2, 1.0, interaction=False).local_values(x, grad, lap)
    assert out[KINETIC] == pytest.approx(-0.5 * np.sum(second), rel=1e-12)


@pytest.mark.parametrize("P,D,jastrow,slater,kind", [(3, 2, False, False, "metropolis"),
                                                     (4, 3, True, False, "importance"),
                                                     (6, 2, True, True, "importance"),
                                                     (5, 1, False, False, "gibbs")])
def test_sampled_observables_match_recomputation_from_positions(P, D, jastrow, slater, kind):
    """After each one-step pass the kernel's recorded V_trap, sum 1/r_ij and mean r_ij belong to the
    walker's current positions: recomputed here with numpy."""
    omega = 0.8
    wf = TrialState(P, D, 3, default_sigma(omega, 0.5), jastrow=jastrow, slater=slater, omega=omega, beta=0.5,
                    fermions=slater)
    wf.randomize(np.random.default_rng(P * D), 0.05 if slater else 0.3)
    ham = Hamiltonian(P, D, omega, interaction=True)
    walkers = Walkers.start(P + D, 4, P * D, 1.0)
    opts = {"metropolis": {"step": 1.0}, "importance": {"dt": 0.1}, "gibbs": {}}[kind]
    sampler = Sampler(kind, **opts)
    for rep in range(6):
        s = sampler.sample(wf, ham, walkers, 3 + rep, 1)
        for w in range(walkers.n_walkers):
            pos = walkers.positions[w].reshape(P, D)
            inv, mean = own_pair_sums(pos)
            trap, interaction, pair = s.observables[w, 0, [TRAP, INTERACTION, PAIR]]
            assert trap == pytest.approx(0.5 * omega ** 2 * np.sum(pos ** 2), rel=1e-12)
            assert interaction == pytest.approx(inv, rel=1e-12)
            assert pair == pytest.approx(mean, rel=1e-12)


def gaussian_norm_mean(D, s):
    """<|y|> for y ~ N(0, s^2 I_D): s sqrt 2 Gamma((D + 1)/2) / Gamma(D/2) (half-normal, Rayleigh, Maxwell)."""
    return s * SQ2 * math.gamma((D + 1) / 2) / math.gamma(D / 2)


def gaussian_inverse_norm_mean(D, s):
    """<1/|y|> for y ~ N(0, s^2 I_D), D >= 2: Gamma((D - 1)/2) / (s sqrt 2 Gamma(D/2))."""
    return math.gamma((D - 1) / 2) / (s * SQ2 * math.gamma(D / 2))


@pytest.mark.parametrize("P,D,kind", [(2, 1, "importance"), (2, 2, "metropolis"), (2, 3, "gibbs"),
                                      (3, 2, "importance"), (4, 3, "metropolis")])
def test_sampled_pair_distance_and_coulomb_of_the_gaussian(P, D, kind):
    """P particles in the exact non-interacting Gaussian |psi|^2 ~ exp(-omega sum_i r_i^2): every
    r_i - r_j is N(0, I / omega), so <mean r_ij> = <r_12> = sqrt(2/omega) Gamma((D+1)/2) / Gamma(D/2) and
    <sum_{i<j} 1/r_ij> = P (P - 1) / 2 <1/r_12> (D >= 2). Coulomb on in H, which does not change |psi|^2."""
    omega = 0.6
    wf = TrialState(P, D, 2, default_sigma(omega, 0.5))
    ham = Hamiltonian(P, D, omega, interaction=True)
    walkers = Walkers.start([P, D], 64, P * D, 1.0)
    opts = {"metropolis": {"step": 2.0}, "importance": {"dt": 0.4}, "gibbs": {}}[kind]
    s = Sampler(kind, **opts).sample(wf, ham, walkers, 200, 3000)
    spread = 1.0 / math.sqrt(omega)
    checks = [(s.observables[..., PAIR], gaussian_norm_mean(D, spread))]
    if D >= 2:
        checks.append((s.observables[..., INTERACTION], P * (P - 1) / 2 * gaussian_inverse_norm_mean(D, spread)))
    for series, exact in checks:
        means = series.mean(axis=1)
        err = means.std(ddof=1) / math.sqrt(means.size)
        assert err < 0.01 * exact                       # teeth
        assert abs(means.mean() - exact) < 4 * err, (means.mean(), exact, err)
