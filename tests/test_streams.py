"""The random streams (`vmc.mc.streams`): the ziggurat's normals and the uniforms have the right distribution, and
a VMC walker's numbers depend only on (seed, walker, sweep): not on which walkers run beside it, nor on how its
sweeps are split between calls (what a checkpoint relies on)."""
import math

import numba
import numpy as np

from vmc.mc import streams
from vmc.mc.samplers import Sampler, Walkers
from vmc.model.hamiltonian import Hamiltonian
from vmc.model.wavefunction import TrialState


@numba.njit(cache=True)
def _normal_histogram(n_streams, per_stream, edges):
    """Counts of the normals of streams (owner k, step 3 k) in the cells of `edges`, and below and above them."""
    rng = streams.counter_stream()
    counts = np.zeros(edges.size + 1)
    for k in range(n_streams):
        streams.stream(np.uint64(17), np.uint64(29), k, 3 * k, rng)
        for _ in range(per_stream):
            counts[np.searchsorted(edges, streams.standard_normal(rng))] += 1.0
    return counts


def chi2_z(counts, probabilities):
    """(chi^2 - dof) / sqrt(2 dof) over the cells expecting at least 20 counts: about N(0, 1) for a right
    distribution."""
    expected = counts.sum() * probabilities
    use = expected >= 20
    chi2 = float((((counts - expected) ** 2 / expected)[use]).sum())
    dof = int(use.sum()) - 1
    return (chi2 - dof) / math.sqrt(2 * dof)


def test_the_ziggurat_draws_standard_normals():
    """4e6 normals in 400 cells of [-5, 5] (0.025 wide: finer than the ziggurat's layers near 0, which the wedge
    test shapes), plus both tails: chi^2 within 4.5 sigma; the tail beyond R = 3.44 (its own method) holds the
    normal's mass, 2 erfc(3.44 / sqrt 2) = 5.8e-4, within 5 of its Poisson errors; mean and variance."""
    edges = np.linspace(-5.0, 5.0, 401)
    counts = _normal_histogram(4000, 1000, edges)
    cdf = np.array([0.5 * math.erfc(-e / math.sqrt(2.0)) for e in edges])
    probabilities = np.concatenate([[cdf[0]], np.diff(cdf), [1.0 - cdf[-1]]])
    assert abs(chi2_z(counts, probabilities)) < 4.5
    n = counts.sum()
    centres = np.concatenate([[-5.2], 0.5 * (edges[1:] + edges[:-1]), [5.2]])
    beyond = (np.abs(centres) > 3.5)
    tail = counts[beyond].sum()
    expected = n * probabilities[beyond].sum()
    assert abs(tail - expected) < 5.0 * math.sqrt(expected)
    mean = (centres * counts).sum() / n
    assert abs(mean) < 5.0 / math.sqrt(n) + 1e-4       # the cells' width biases the binned mean by < 1e-4


def test_uniforms_are_uniform_and_every_stream_its_own():
    u = streams.draws(np.uint64(5), np.uint64(6), 3, 7, 200_000)
    assert np.array_equal(u, streams.draws(np.uint64(5), np.uint64(6), 3, 7, 200_000))
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(chi2_z(np.histogram(u, bins=200, range=(0.0, 1.0))[0], np.full(200, 1 / 200))) < 4.5
    neighbours = [streams.draws(np.uint64(5), np.uint64(6), owner, step, 20_000)
                  for owner, step in ((3, 8), (4, 7), (2, 7), (3, 6))]
    for v in neighbours:   # the next step, the next owner: uncorrelated (5 sigma = 5 / sqrt(20000))
        assert abs(np.corrcoef(u[:20_000], v)[0, 1]) < 0.035


def test_a_walkers_numbers_depend_on_seed_walker_and_sweep_only():
    """Walkers 2 and 3 of a run end where they end in the run of walkers 0-3 (a rank holding only them); walkers
    rebuilt from positions and the sweep count alone (a checkpoint) continue bit for bit; another seed moves
    them elsewhere."""
    wf = TrialState(2, 2, 3, sigma=0.7).randomize(np.random.default_rng(1), 0.1)
    ham = Hamiltonian(2, 2, 1.0)
    sampler = Sampler("importance", dt=0.3)
    every = Walkers.start(5, 4, wf.n_visible, 1.0)
    some = Walkers.start(5, range(2, 4), wf.n_visible, 1.0)
    for w in (every, some):
        sampler.sample(wf, ham, w, 100, 200)
    saved = Walkers(some.positions.copy(), some.key, some.ids, some.sweeps)
    for w in (every, some, saved):
        sampler.sample(wf, ham, w, 0, 100)
    assert some.sweeps == every.sweeps == saved.sweeps == 400
    assert np.array_equal(some.positions, every.positions[2:])
    assert np.array_equal(saved.positions, some.positions)
    other = Walkers.start(6, range(2, 4), wf.n_visible, 1.0)
    sampler.sample(wf, ham, other, 100, 200)
    assert not np.allclose(other.positions, some.positions)
