"""Blocking error analysis (vmc.analysis.blocking) against exact AR(1) results and independent references.

AR(1): x_t = phi x_{t-1} + e_t, e_t ~ N(0, 1), stationary start x_0 ~ N(0, 1/(1-phi^2)).  The
exact variance of the mean of n samples is
    Var = (s_x^2/n) [(1+phi)/(1-phi) - 2 phi (1-phi^n) / (n (1-phi)^2)],  s_x^2 = 1/(1-phi^2).
All random numbers come from np.random.default_rng(seed) with fixed seeds.
"""
from __future__ import annotations

import doctest
import functools
import math

import numba
import numpy as np
import pytest

from vmc.analysis import blocking
from vmc.analysis.blocking import (
    CHI2_99,
    MIN_SAMPLES,
    analyze,
    block,
    blocking_levels,
    combine,
    equilibration_check,
    jonsson_level,
    split_rhat,
    wolff_lee_level,
)

N_REPLICATES = 100


@numba.njit(cache=True)
def _ar1_filter(e, phi):
    x = np.empty_like(e)
    x[0] = e[0] / np.sqrt(1.0 - phi * phi)        # stationary start
    for t in range(1, e.size):
        x[t] = phi * x[t - 1] + e[t]
    return x


def ar1(n: int, phi: float, seed: int) -> np.ndarray:
    return _ar1_filter(np.random.default_rng(seed).standard_normal(n), phi)


def exact_error(n: int, phi: float) -> float:
    sx2 = 1.0 / (1.0 - phi ** 2)
    return math.sqrt(sx2 / n * ((1 + phi) / (1 - phi) - 2 * phi * (1 - phi ** n) / (n * (1 - phi) ** 2)))


@functools.lru_cache(maxsize=None)
def replicates(phi: float, log2n: int) -> dict[str, np.ndarray]:
    """block() over N_REPLICATES seeded AR(1) series (cached: several tests use the same runs)."""
    n = 2 ** log2n
    rows = []
    for rep in range(N_REPLICATES):
        x = ar1(n, phi, seed=100_000 * log2n + 1_000 * round(100 * phi) + rep)
        r = block(x)
        plain = r.curve[jonsson_level(x)]                 # plain Jonsson, no cap, no correction
        rows.append((r.error, r.naive_error, plain, r.mean, r.level))
    a = np.array(rows)
    ex = exact_error(n, phi)
    return {"ratio": a[:, 0] / ex, "naive_ratio": a[:, 1] / ex, "jonsson_ratio": a[:, 2] / ex,
            "error_over_naive": a[:, 0] / a[:, 1], "mean": a[:, 3], "level": a[:, 4]}


# ---------------------------------------------------------------------------------------------
# Chi-squared table
# ---------------------------------------------------------------------------------------------

def chi2_cdf(q: float, k: int) -> float:
    """Regularised lower incomplete gamma P(k/2, q/2) by its power series (math.lgamma only)."""
    a, x = 0.5 * k, 0.5 * q
    term = 1.0 / a
    total = term
    m = 1
    while term > 1e-17 * total:
        term *= x / (a + m)
        total += term
        m += 1
    return math.exp(a * math.log(x) - x - math.lgamma(a)) * total


def test_chi2_table_is_the_099_quantile():
    assert len(CHI2_99) >= 64
    for k, q in enumerate(CHI2_99, start=1):
        assert chi2_cdf(q, k) == pytest.approx(0.99, abs=1e-9), k


def test_chi2_table_against_wilson_hilferty():
    z99 = 2.3263478740408408                     # standard normal 0.99 quantile
    for k, q in enumerate(CHI2_99, start=1):
        wh = k * (1 - 2 / (9 * k) + z99 * math.sqrt(2 / (9 * k))) ** 3
        assert abs(wh / q - 1) < (0.01 if k == 1 else 0.0025), k


# ---------------------------------------------------------------------------------------------
# Independent reference implementation of plain Jonsson (no shared code)
# ---------------------------------------------------------------------------------------------

def reference_jonsson(x):
    """Jonsson (2018) written from the paper: (level, error).  Any length: an odd level loses its
    first (oldest) element before the pairs are averaged, and the error of level j, which covers
    the newest m_j samples, is scaled to all N samples by sqrt(m_j / N)."""
    x = np.array(x, dtype=float)
    size = x.size
    d = int(math.floor(math.log2(size)))
    n_k, s2, g = [], [], []
    for _ in range(d):
        n = x.size
        mu = x.mean()
        n_k.append(n)
        s2.append(np.sum((x - mu) ** 2) / n)
        g.append(np.sum((x[:-1] - mu) * (x[1:] - mu)) / n)
        if n % 2 == 1:
            x = x[1:]
        x = np.array([(x[2 * i] + x[2 * i + 1]) / 2 for i in range(x.size // 2)])
    n_k, s2, g = map(np.array, (n_k, s2, g))
    terms = n_k * ((n_k - 1) * s2 / n_k ** 2 + g) ** 2 / s2 ** 2
    for j in range(d):
        m_j = terms[j:].sum()
        if m_j < CHI2_99[d - j - 1]:        # d - j degrees of freedom
            break
    covered = n_k[j] * 2 ** j
    return j, math.sqrt(s2[j] / (n_k[j] - 1) * covered / size)


@pytest.mark.parametrize("phi,n,seed", [(0.0, 2 ** 12, 1), (0.5, 2 ** 14, 2), (0.9, 2 ** 16, 3),
                                        (0.99, 2 ** 16, 4), (0.95, 2 ** 10, 5), (-0.6, 2 ** 13, 6),
                                        (0.9, 100_000, 7), (0.5, 12_345, 8), (0.99, 20_000, 9),
                                        (0.0, 1000, 10)])
def test_plain_jonsson_matches_reference(phi, n, seed):
    x = ar1(n, phi, seed)
    ref_level, ref_error = reference_jonsson(x)
    assert jonsson_level(x) == ref_level
    assert blocking_levels(x).error[ref_level] == pytest.approx(ref_error, rel=1e-10)
    r = block(x)
    assert r.curve[ref_level] == pytest.approx(ref_error, rel=1e-10)
    assert r.level == min(ref_level, wolff_lee_level(x))
    assert r.error == pytest.approx(r.curve[r.level] * math.sqrt(r.correction))


def test_blocking_levels_by_hand():
    x = np.array([1.0, 3.0, 2.0, 6.0, 5.0, 5.0, 0.0, 2.0] * 2)
    lv = blocking_levels(x)
    assert lv.n.tolist() == [16, 8, 4, 2]
    level1 = np.array([2.0, 4.0, 5.0, 1.0] * 2)
    assert lv.variance[1] == pytest.approx(np.var(level1))
    z = level1 - level1.mean()
    assert lv.gamma[1] == pytest.approx(np.dot(z[:-1], z[1:]) / 8)
    assert lv.error[1] == pytest.approx(math.sqrt(np.var(level1) / 7))
    assert lv.mean == pytest.approx(3.0)
    lv = blocking_levels(np.arange(20.0))                # 20 -> 10 -> 5 -> (drop oldest) 2
    assert lv.n.tolist() == [20, 10, 5, 2] and lv.covered.tolist() == [20, 20, 20, 16]
    assert lv.variance[2] == pytest.approx(np.var(np.arange(1.5, 20, 4)))
    assert lv.error[3] == pytest.approx(math.sqrt(np.var([7.5, 15.5]) / 1 * 16 / 20))


# ---------------------------------------------------------------------------------------------
# Accuracy on AR(1)
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("log2n", [16, 18])
@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_blocked_error_matches_exact_ar1(phi, log2n, record_property):
    rep = replicates(phi, log2n)
    ratio = rep["ratio"]
    record_property("mean_ratio", float(ratio.mean()))
    print(f"phi={phi} n=2^{log2n}: blocked/exact = {ratio.mean():.4f} +- {ratio.std():.4f}, "
          f"plain Jonsson {rep['jonsson_ratio'].mean():.4f}")
    assert abs(ratio.mean() - 1) < 0.05
    assert np.all(np.abs(ratio - 1) < 0.20), ratio[np.abs(ratio - 1) >= 0.20]


@pytest.mark.parametrize("log2n", [16, 18])
def test_blocked_error_strongly_correlated_ar1(log2n, record_property):
    rep = replicates(0.99, log2n)
    ratio = rep["ratio"]
    record_property("mean_ratio", float(ratio.mean()))
    print(f"phi=0.99 n=2^{log2n}: blocked/exact = {ratio.mean():.4f} +- {ratio.std():.4f}, "
          f"plain Jonsson {rep['jonsson_ratio'].mean():.4f}")
    assert abs(ratio.mean() - 1) < 0.15


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_correction_beats_plain_jonsson_bias(phi):
    rep = replicates(phi, 16)
    # plain Jonsson is biased low on AR(1); the corrected error is closer to 1 and not noisier
    assert abs(rep["ratio"].mean() - 1) < abs(rep["jonsson_ratio"].mean() - 1)
    assert rep["ratio"].std() < 1.1 * rep["jonsson_ratio"].std()


@pytest.mark.parametrize("phi", [0.5, 0.9])
def test_naive_error_is_off_by_the_ar1_factor(phi):
    rep = replicates(phi, 18)
    factor = math.sqrt((1 + phi) / (1 - phi))
    assert rep["naive_ratio"].mean() * factor == pytest.approx(1.0, rel=0.01)
    assert rep["error_over_naive"].mean() == pytest.approx(factor, rel=0.03)


def test_tau_convention():
    rep = replicates(0.9, 18)
    r = block(ar1(2 ** 16, 0.9, seed=11))
    assert r.tau == pytest.approx((r.error / r.naive_error) ** 2)
    assert r.tau == pytest.approx(19.0, rel=0.2)                    # (1+phi)/(1-phi)
    assert np.mean(rep["error_over_naive"] ** 2) == pytest.approx(19.0, rel=0.06)


def test_coverage_at_phi_05():
    hits = 0
    for rep in range(400):
        r = block(ar1(2 ** 14, 0.5, seed=7_000 + rep))
        hits += abs(r.mean) < r.error                                 # true mean is 0
    assert 0.60 <= hits / 400 <= 0.76, hits / 400


@pytest.mark.parametrize("seed", range(5))
def test_uncorrelated_blocked_equals_naive(seed):
    r = block(np.random.default_rng(seed).normal(3.0, 2.0, size=2 ** 14))
    assert r.error / r.naive_error == pytest.approx(1.0, abs=0.05)
    assert r.naive_error == pytest.approx(math.sqrt(r.variance / (r.n_samples - 1)))
    assert r.variance == pytest.approx(4.0, rel=0.05)


# ---------------------------------------------------------------------------------------------
# Lengths, input checks, constant series
# ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(3))
def test_non_power_of_two_uses_all_samples(seed):
    n = 2 ** 12 + 5
    x = ar1(n, 0.7, seed=21 + seed)
    r, newest = block(x), block(x[5:])
    assert r.n_samples == n and not r.notes
    assert r.mean == pytest.approx(np.mean(x), rel=1e-12, abs=1e-15)
    assert r.variance == pytest.approx(np.var(x))
    assert r.naive_error == pytest.approx(np.std(x) / math.sqrt(n - 1))
    assert r.error == pytest.approx(newest.error, rel=0.03)
    # 4101 -> (drop 1) 2050 -> 1025 -> (drop 1) 512: from level 3 on, the blocks are those of x[5:]
    lv, lv5 = blocking_levels(x), blocking_levels(x[5:])
    assert lv.n.tolist()[:4] == [4101, 2050, 1025, 512]
    assert lv.covered.tolist()[:4] == [4101, 4100, 4100, 4096]
    assert np.allclose(lv.variance[3:], lv5.variance[3:], rtol=1e-10)
    assert np.allclose(lv.gamma[3:], lv5.gamma[3:], rtol=1e-10, atol=1e-14)
    assert np.allclose(lv.error[3:], lv5.error[3:] * math.sqrt(4096 / 4101), rtol=1e-10)


def test_odd_level_leaves_out_the_oldest_block():
    x = ar1(2 ** 10 + 1, 0.5, seed=22)
    y = x.copy()
    y[0] = 1e4                                           # outlier in the very first sample
    lx, ly = blocking_levels(x), blocking_levels(y)
    assert ly.variance[0] > 1e4 * lx.variance[0]         # level 0 is all samples ...
    assert np.allclose(ly.variance[1:], lx.variance[1:], rtol=1e-9, atol=0)   # ... level 1 not
    assert np.allclose(ly.gamma[1:], lx.gamma[1:], rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("n", [1000, 12345, 20_000, MIN_SAMPLES, MIN_SAMPLES + 1, 2 ** 11 - 1])
def test_odd_lengths_work(n):
    x = ar1(n, 0.3, seed=n)
    r = block(x)
    assert r.n_samples == n
    assert r.mean == pytest.approx(x.mean())
    assert r.variance == pytest.approx(x.var())
    d = int(math.floor(math.log2(n)))
    assert len(r.curve) == d
    assert blocking_levels(x).n.tolist() == [n // 2 ** k for k in range(d)]
    assert np.isfinite(r.error) and r.error > 0


def test_non_power_of_two_ar1_accuracy():
    n, phi = 100_000, 0.9                     # 100000 -> 65536 kept before: 34 % of the data lost
    ratio = np.array([block(ar1(n, phi, seed=900 + s)).error for s in range(50)]) / exact_error(n, phi)
    print(f"phi={phi} n={n}: blocked/exact = {ratio.mean():.4f} +- {ratio.std():.4f}")
    assert abs(ratio.mean() - 1) < 0.05
    assert np.all(np.abs(ratio - 1) < 0.20)


def test_empty_series():
    with pytest.raises(ValueError, match="empty"):
        block([])


def test_non_finite_values():
    x = np.ones(100)
    x[3], x[50] = np.nan, np.inf
    with pytest.raises(ValueError, match="series contains 2 non-finite values"):
        block(x)
    with pytest.raises(ValueError, match="contains 1 non-finite"):
        analyze(np.where(np.arange(400).reshape(4, 100) == 7, np.nan, 1.0))


def test_too_short_says_how_many():
    with pytest.raises(ValueError, match=f"10 samples, blocking needs at least {MIN_SAMPLES}"):
        block(np.arange(10.0))
    with pytest.raises(ValueError, match="per chain"):
        analyze(np.zeros((100, 8)))


def test_block_rejects_2d():
    with pytest.raises(ValueError, match="1D"):
        block(np.zeros((2, 64)))


@pytest.mark.parametrize("value", [0.0, 0.1, -3.7e5])
def test_constant_series(value):
    r = block(np.full(1000, value))
    assert r.error == 0.0 and r.naive_error == 0.0 and r.constant
    assert r.mean == pytest.approx(value)
    assert r.tau == 1.0
    assert any("constant" in note for note in r.notes)
    s = analyze(np.full((3, 64), value))
    assert s.error == 0.0 and s.constant and s.r_hat == 1.0


# ---------------------------------------------------------------------------------------------
# Multiple chains
# ---------------------------------------------------------------------------------------------

def chains(n_chains, n_steps, phi, seed, shift=None):
    c = np.stack([ar1(n_steps, phi, seed=seed * 10_000 + i) for i in range(n_chains)])
    if shift is not None:
        c[0] += shift
    return c


@pytest.mark.parametrize("n_chains,n_steps,phi,reps", [(16, 2 ** 14, 0.9, 20), (256, 256, 0.5, 20),
                                                       (64, 1024, 0.9, 20), (40, 3000, 0.9, 20)])
def test_chains_error_matches_exact(n_chains, n_steps, phi, reps):
    ex = exact_error(n_steps, phi) / math.sqrt(n_chains)      # grand mean of C independent chains
    ratio = np.array([analyze(chains(n_chains, n_steps, phi, seed=s)).error / ex for s in range(reps)])
    print(f"{n_chains} x {n_steps}, phi={phi}: {ratio.mean():.4f} +- {ratio.std():.4f}")
    assert abs(ratio.mean() - 1) < 0.05
    assert np.all(np.abs(ratio - 1) < 0.20)


@pytest.mark.parametrize("n_chains,n_steps,phi", [(256, 300, 0.5), (64, 1000, 0.9)])
def test_short_chains_non_power_of_two_unbiased(n_chains, n_steps, phi):
    # few blocks per chain at the selected level (~15 here): without the covered-fraction factor
    # m_j / n the error bar was 3-4 % too high (it estimated the error of the newest m_j steps)
    ex = exact_error(n_steps, phi) / math.sqrt(n_chains)
    ratio = np.array([analyze(chains(n_chains, n_steps, phi, seed=50 + s)).error / ex for s in range(40)])
    print(f"{n_chains} x {n_steps}, phi={phi}: {ratio.mean():.4f} +- {ratio.std():.4f}")
    assert abs(ratio.mean() - 1) < 0.02


def test_chains_bookkeeping():
    c = chains(5, 3000, 0.6, seed=1)
    s = analyze(c)
    assert s.n_chains == 5 and s.n_steps == 3000 and s.n_samples == 5 * 3000
    assert s.mean == pytest.approx(c.mean())
    assert np.allclose(s.chain_means, c.mean(axis=1))
    assert s.error == pytest.approx(math.sqrt(np.sum(s.chain_errors ** 2)) / 5)
    assert s.variance == pytest.approx(c.var())
    assert s.naive_error == pytest.approx(math.sqrt(c.var() / (c.size - 1)))
    assert s.r_hat == split_rhat(c)
    for i in range(5):                               # pooled levels = chain averages, same rule
        lv = blocking_levels(c[i])
        assert np.allclose(blocking_levels(c).chain_variance[i], lv.variance)
    assert s.tau == pytest.approx((s.error / s.naive_error) ** 2)


def test_single_chain_analyze_equals_block():
    x = ar1(2 ** 13, 0.8, seed=3)
    s, r = analyze(x[None, :]), block(x)
    assert (s.mean, s.error, s.level) == (r.mean, r.error, r.level)
    assert s.n_chains == 1 and math.isfinite(s.r_hat)
    assert analyze(x).error == r.error                         # 1D input: one chain


def test_rhat_identical_chains_near_one():
    s = analyze(chains(4, 4096, 0.5, seed=5))
    assert abs(s.r_hat - 1) < 0.01
    assert not any("R-hat" in w for w in s.warnings)


def test_rhat_flags_shifted_chain():
    s = analyze(chains(4, 4096, 0.5, seed=5, shift=1.0))
    assert s.r_hat > 1.01
    assert any("R-hat" in w for w in s.warnings)


def test_split_rhat_formula_and_single_chain():
    rng = np.random.default_rng(9)
    c = rng.normal(size=(3, 10))
    seqs = np.concatenate([c[:, :5], c[:, 5:]])
    w = np.mean(np.var(seqs, axis=1, ddof=1))
    b = 5 * np.var(seqs.mean(axis=1), ddof=1)
    assert split_rhat(c) == pytest.approx(math.sqrt((4 / 5 * w + b / 5) / w))
    x = rng.normal(size=2000)
    assert abs(split_rhat(x) - 1) < 0.01                       # one chain: split in halves
    x[1000:] += 1.0
    assert split_rhat(x) > 1.1


# ---------------------------------------------------------------------------------------------
# Equilibration
# ---------------------------------------------------------------------------------------------

def transient(n, seed, amplitude=3.0, decay=200.0):
    x = ar1(n, 0.5, seed)
    return x + amplitude / math.sqrt(1 - 0.25) * np.exp(-np.arange(n) / decay)


@pytest.mark.parametrize("seed", range(8))
def test_equilibration_quiet_on_stationary(seed):
    x = ar1(2 ** 14, 0.5, seed=300 + seed)
    assert equilibration_check(x) is None
    assert not any("equilibration" in w for w in block(x).warnings)


@pytest.mark.parametrize("seed", range(4))
def test_equilibration_flags_transient(seed):
    x = transient(2 ** 14, seed=400 + seed)
    msg = equilibration_check(x)
    assert msg is not None and msg.startswith("equilibration")
    assert any(w.startswith("equilibration") for w in block(x).warnings)


def test_equilibration_chains():
    c = np.stack([transient(2048, seed=500 + i, amplitude=1.0, decay=30.0) for i in range(16)])
    assert any(w.startswith("equilibration") for w in analyze(c).warnings)
    assert not any(w.startswith("equilibration") for w in analyze(c[:, 1024:]).warnings)


def test_equilibration_too_short():
    with pytest.raises(ValueError, match="needs 160"):
        equilibration_check(np.zeros(100))


# ---------------------------------------------------------------------------------------------
# Misc
# ---------------------------------------------------------------------------------------------

def test_wolff_lee_white_noise_level():
    # 2^(3k) > 2 n (err_k/err_0)^4 with err_k ~ err_0 and n = 4096: first k with 2^(3k) > 8192
    assert wolff_lee_level(np.random.default_rng(0).normal(size=4096)) == 5


def test_combine():
    r1, r2 = block(ar1(2 ** 12, 0.5, 1)), block(ar1(2 ** 13, 0.5, 2))
    c = combine([r1, r2])
    assert c.n_samples == 3 * 2 ** 12
    assert c.mean == pytest.approx((r1.mean + 2 * r2.mean) / 3)
    assert c.error == pytest.approx(math.sqrt(r1.error ** 2 + 4 * r2.error ** 2) / 3)
    with pytest.raises(ValueError):
        combine([])


def test_docstring_examples():
    result = doctest.testmod(blocking)
    assert result.attempted > 10 and result.failed == 0
