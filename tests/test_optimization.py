"""Energy minimization: every optimizer finds the exact non-interacting state; the interacting
two-electron energy obeys the variational principle; optimizers and estimators in isolation."""
import numpy as np
import pytest
from conftest import run_in_memory

from vmc.input import config
from vmc.mc.optimizers import Optimizer, learning_rate
from vmc.model.wavefunction import TrialState

NONINTERACTING = """
seed = 4
[system]
particles = 2
dimensions = 2
interaction = false
[wavefunction]
hidden = 2
init_scale = 0.1
[sampler]
kind = "metropolis"
step = 1.5
walkers = 8
burn_in = 200
steps = 400
[optimizer]
kind = "{kind}"
learning_rate = {lr}
iterations = {iterations}
[production]
steps = 2000
"""


@pytest.mark.parametrize("kind,lr,iterations", [("sgd", 0.3, 150), ("momentum", 0.05, 150),
                                               ("adam", 0.03, 150), ("sr", 0.2, 100)])
def test_every_optimizer_reaches_exact_noninteracting_energy(kind, lr, iterations):
    cfg = config.from_text(NONINTERACTING.format(kind=kind, lr=lr, iterations=iterations)).spec()
    summary, f = run_in_memory(cfg)
    start = f["optimization/energy"][0]
    assert start > 2.0 + 1e-3            # it did start away from the optimum
    assert abs(summary["mean"] - 2.0) < 1e-3
    assert summary["variance"] < 1e-4


def test_interacting_two_electrons_variational():
    text = """
seed = 12
[system]
particles = 2
dimensions = 2
[wavefunction]
hidden = 2
[sampler]
kind = "importance"
dt = 0.5
walkers = 16
steps = 1000
[optimizer]
kind = "adam"
learning_rate = 0.02
iterations = 150
[production]
steps = 10000
"""
    summary, f = run_in_memory(config.from_text(text).spec())
    assert summary["mean"] < 3.10
    assert summary["mean"] > 3.0 - 3 * summary["error"]
    assert 0 < summary["error"] < 0.005
    assert summary["interaction"]["mean"] > 0.5


def test_optimize_sigma_recovers_from_a_poor_start():
    cfg = config.from_text(NONINTERACTING.format(kind="adam", lr=0.03, iterations=200)).with_overrides(
        {"wavefunction.sigma": 1.0, "wavefunction.optimize_sigma": True}).spec()
    summary, f = run_in_memory(cfg)
    assert abs(summary["mean"] - 2.0) < 1e-3
    assert f["wavefunction"].attrs["sigma"] == pytest.approx(np.sqrt(0.5), abs=0.02)


def test_sigma_derivative_matches_finite_difference():
    rng = np.random.default_rng(2)
    wf = TrialState(2, 2, 3, sigma=0.8, optimize_sigma=True).randomize(rng, 0.4)
    x = rng.normal(size=4)
    h = 1e-6
    plus, minus = wf.copy(), wf.copy()
    plus.params[-1] += h
    minus.params[-1] -= h
    fd = (plus.log_psi(x) - minus.log_psi(x)) / (2 * h)
    assert wf.log_psi_grad_params(x)[-1] == pytest.approx(fd, rel=1e-6)


def test_optimizer_rules():
    g = np.array([1.0, -2.0])
    assert np.allclose(Optimizer("sgd", 2, learning_rate=0.1).step(g), [-0.1, 0.2])
    mom = Optimizer("momentum", 2, learning_rate=0.1, momentum=0.5)
    mom.step(g)
    assert np.allclose(mom.step(g), -(0.5 * 0.1 + 0.1) * g)
    adam = Optimizer("adam", 2, learning_rate=0.1)
    assert np.allclose(adam.step(g), -0.1 * np.sign(g), rtol=1e-6)  # first Adam step is eta * sign
    sr = Optimizer("sr", 2, learning_rate=0.1, sr_shift=0.0)
    S = np.array([[2.0, 0.0], [0.0, 4.0]])
    assert np.allclose(sr.step(g, S), [-0.05, 0.05])
    assert learning_rate(1.0, "inverse", 0.5, 2) == pytest.approx(0.5)
    clip = Optimizer("sgd", 2, learning_rate=10.0, max_step=1.0)
    assert np.linalg.norm(clip.step(g)) == pytest.approx(1.0)
