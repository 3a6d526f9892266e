r"""Blocking error analysis for correlated Monte Carlo series (numpy only).

Method (details, justification and measurements in ``docs/blocking.md``):

1. Flyvbjerg-Petersen blocking: the series is averaged pairwise, x'_i = (x_{2i} + x_{2i+1}) / 2,
   again and again.  The mean is unchanged; the naive error sqrt(s_k^2 / (n_k - 1)) at level k
   grows with k and reaches a plateau (the true error) once the blocks are longer than the
   correlation time.  `blocking_levels` returns that curve.
2. Level selection by M. Jonsson, Phys. Rev. E 98, 043304 (2018): the first level j at which the
   lag-1 autocorrelations of all levels k >= j are jointly compatible with zero (chi-squared test at
   the 0.99 quantile with d - j degrees of freedom), `jonsson_level`, capped at the Wolff / Lee
   et al. optimal block size, `select_level`.  The cap only matters when a chance fluctuation at
   a level with few blocks drags Jonsson's cumulative test to the top levels.
3. Residual-correlation correction (our addition, measured in the docs): at Jonsson's level the
   neighbouring block means are still correlated, rho_j ~ c / B_j, which biases plain Jonsson low
   (blocked/true error ~0.93 at AR(1) phi = 0.9, n = 2^16).  We multiply the blocked variance by
   1 + 2 rho_j with rho_j extrapolated from two levels below, rho_j = rho_{j-2} / 4 (see
   `residual_correction`).  This removes the bias without increasing the replicate spread.
4. Several independent chains: blocking statistics are pooled over chains at a common level
   (`analyze`), which uses n_chains times more blocks than blocking the per-step average.

For series only a few tens of correlation times long (DMC energies: n / tau ~ 30-50), where blocking has
no plateau to find, `gamma_method` estimates the error from the autocorrelation function instead
(U. Wolff, Comput. Phys. Commun. 156, 143 (2004)).

Any length n >= MIN_SAMPLES is used in full: the mean, variance and naive error are those of
all samples.  Level 0 of the blocking is all n samples; when level k has an odd number of blocks
n_k, its OLDEST block (the first, at the equilibration end of the series) is left out before the
pairs are averaged, so n_{k+1} = floor(n_k / 2) = floor(n / 2^k) and at most one block per level
is lost.  Level k then covers the newest m_k = n_k 2^k samples (m_k > n - 2^k), and its naive
error, which estimates the error of the mean of those m_k samples, is scaled to all n samples by
sqrt(m_k / n) (Var(mean) ~ 1/length once the length is >> the correlation time).  The factor is
1 for power-of-two lengths; without it, many short chains (64 x 1000 steps, n_j ~ 15 blocks per
chain) were measured 3-5 % too high.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "CHI2_99", "MIN_SAMPLES", "BlockingLevels", "BlockingResult", "ChainStats", "Combined",
    "blocking_levels", "jonsson_statistic", "jonsson_level", "wolff_lee_level", "select_level",
    "residual_correction", "block", "analyze", "split_rhat", "equilibration_check", "combine",
    "GammaResult", "gamma_method",
]

#: Fewest samples (per chain) that `block` and `analyze` accept: 2^4, i.e. four blocking levels.
MIN_SAMPLES = 16

#: 0.99 quantiles of the chi-squared distribution, CHI2_99[k - 1] for k = 1..64 degrees of freedom.
#: Computed once with scipy 1.17.1 (``scipy.stats.chi2.ppf(0.99, k)``) in a scratch environment;
#: scipy is not a dependency.  Checked independently in tests/test_blocking.py.
CHI2_99 = (
    6.6348966010, 9.2103403720, 11.3448667301, 13.2767041360,
    15.0862724694, 16.8118938298, 18.4753069066, 20.0902350297,
    21.6659943335, 23.2092511590, 24.7249703113, 26.2169673055,
    27.6882496105, 29.1412377407, 30.5779141669, 31.9999269088,
    33.4086636050, 34.8053057347, 36.1908691293, 37.5662347866,
    38.9321726835, 40.2893604376, 41.6383981189, 42.9798201394,
    44.3141048962, 45.6416826663, 46.9629421248, 48.2782357703,
    49.5878844729, 50.8921813115, 52.1913948332, 53.4857718362,
    54.7755397601, 56.0609087478, 57.3420734339, 58.6192145017,
    59.8925000451, 61.1620867637, 62.4281210162, 63.6907397516,
    64.9500713352, 66.2062362840, 67.4593479223, 68.7095129693,
    69.9568320658, 71.2014002483, 72.4433073765, 73.6826385201,
    74.9194743085, 76.1538912490, 77.3859620161, 78.6157557150,
    79.8433381223, 81.0687719063, 82.2921168292, 83.5134299320,
    84.7327657051, 85.9501762451, 87.1657113998, 88.3794189014,
    89.5913444907, 90.8015320308, 92.0100236141, 93.2168596602,
)

#: The correction extrapolates the residual correlation from this many levels below Jonsson's.
EXTRAPOLATION_LEVELS = 2
#: |rho_{j-2}| <= 1 bounds the extrapolated rho_j by 1/4 for j >= 2; the same bound is imposed
#: for j < 2, so the correction factor on the variance is always within [1/2, 3/2].
MAX_RESIDUAL_RHO = 0.25
#: Fewer blocks than this at the selected level triggers a "collect more data" warning.
MIN_BLOCKS = 32
#: Split-R-hat above this triggers a convergence warning (Vehtari et al. 2021).
RHAT_LIMIT = 1.01


# --------------------------------------------------------------------------------------------
# Input handling
# --------------------------------------------------------------------------------------------

def _as_chains(x, what: str = "series") -> np.ndarray:
    """Validate and return a float array of shape (n_chains, n_steps)."""
    a = np.asarray(x, dtype=float)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2:
        raise ValueError(f"expected a 1D {what} or a 2D array (n_chains, n_steps), got shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"empty {what}: no samples to analyse")
    bad = int(np.count_nonzero(~np.isfinite(a)))
    if bad:
        raise ValueError(f"{what} contains {bad} non-finite values (NaN or inf)")
    if a.shape[1] < MIN_SAMPLES:
        per = " per chain" if a.shape[0] > 1 else ""
        raise ValueError(f"{what} too short: {a.shape[1]} samples{per}, blocking needs at least {MIN_SAMPLES}")
    return a


# --------------------------------------------------------------------------------------------
# Blocking levels and level selection
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockingLevels:
    """Statistics of every blocking level k = 0..d-1 (pooled over chains for 2D input).

    n[k] = floor(n / 2^k) blocks per chain of size 2^k, covering the newest covered[k] = n[k] 2^k
    steps of every chain (see `blocking_levels`); variance[k] = s_k^2 (1/n_k normalisation,
    averaged over chains); gamma[k] lag-1 autocovariance (1/n_k normalisation, averaged over
    chains); error[k] = sqrt(s_k^2 / (n_chains (n_k - 1)) covered[k] / n), the naive error of the
    grand mean at level k (the blocking curve; covered[k] / n = 1 for power-of-two n).
    chain_variance[c, k] and chain_gamma[c, k] are the per-chain values; chain_means and mean are
    over all steps.
    """
    n: np.ndarray
    covered: np.ndarray
    variance: np.ndarray
    gamma: np.ndarray
    error: np.ndarray
    chain_variance: np.ndarray
    chain_gamma: np.ndarray
    chain_means: np.ndarray
    mean: float
    n_chains: int

    @property
    def d(self) -> int:
        """Number of levels, d = floor(log2(n_0)); the top level has 2 or 3 blocks."""
        return len(self.n)

    @property
    def rho(self) -> np.ndarray:
        r"""Lag-1 autocorrelation per level, corrected for the bias of the sample mean.

        rho_k = gamma_k / s_k^2 + (n_k - 1) / n_k^2   (0 where s_k^2 = 0).
        For uncorrelated data E[gamma_k / s_k^2] = -1/n_k ~ -(n_k - 1)/n_k^2, so E[rho_k] ~ 0;
        this is the combination in Jonsson's statistic, n_k ((n_k - 1) s_k^2/n_k^2 + gamma_k)^2/s_k^4.
        For chains, gamma_k and s_k^2 are chain averages (variance-weighted pooling).
        """
        s2, n = self.variance, self.n.astype(float)
        ratio = np.divide(self.gamma, s2, out=np.zeros_like(s2), where=s2 > 0)
        return np.where(s2 > 0, ratio + (n - 1) / n ** 2, 0.0)


def _levels(a: np.ndarray) -> BlockingLevels:
    """Blocking statistics of validated chains a (n_chains, n_steps), all steps used."""
    n_chains = a.shape[0]
    chain_means = a.mean(axis=1)
    y = a - chain_means[:, None]
    d = a.shape[1].bit_length() - 1
    n = np.empty(d, dtype=np.int64)
    chain_var = np.empty((n_chains, d))
    chain_gamma = np.empty((n_chains, d))
    for k in range(d):
        nk = y.shape[1]
        z = y - y.mean(axis=1, keepdims=True)   # the level's own mean (differs if a block was left out)
        n[k] = nk
        chain_var[:, k] = np.einsum("ij,ij->i", z, z) / nk
        chain_gamma[:, k] = np.einsum("ij,ij->i", z[:, :-1], z[:, 1:]) / nk
        if nk % 2:
            y = y[:, 1:]                        # odd: leave out the oldest block of this level
        y = 0.5 * (y[:, 0::2] + y[:, 1::2])
    variance = chain_var.mean(axis=0)
    gamma = chain_gamma.mean(axis=0)
    covered = n << np.arange(d, dtype=np.int64)           # n_k 2^k newest steps per chain
    error = np.sqrt(variance / (n_chains * (n - 1.0)) * (covered / a.shape[1]))
    for arr in (n, covered, variance, gamma, error, chain_var, chain_gamma, chain_means):
        arr.setflags(write=False)
    return BlockingLevels(n=n, covered=covered, variance=variance, gamma=gamma, error=error,
                          chain_variance=chain_var, chain_gamma=chain_gamma,
                          chain_means=chain_means, mean=float(chain_means.mean()),
                          n_chains=n_chains)


def blocking_levels(x) -> BlockingLevels:
    r"""Flyvbjerg-Petersen blocking curve of a series (1D) or of independent chains (2D).

    Level 0 is all n samples; level k+1 averages neighbours of level k, x^{(k+1)}_i =
    (x^{(k)}_{o+2i} + x^{(k)}_{o+2i+1}) / 2 with o = n_k mod 2: if n_k is odd, the OLDEST block of
    level k (its first element, at the equilibration end) is left out.  So n_k = floor(n / 2^k),
    level k covers the newest m_k = n_k 2^k samples (``covered``; at most 2^k - 1 fewer than n) and
    there are d = floor(log2 n) levels (n_{d-1} = 2 or 3).  Per level, with xbar_k the mean of its
    blocks: s_k^2 = (1/n_k) sum_i (x_i - xbar_k)^2,
    gamma_k = (1/n_k) sum_{i<n_k-1} (x_i - xbar_k)(x_{i+1} - xbar_k), and the naive error of the
    mean of all n samples, sqrt(s_k^2 / (n_k - 1) m_k / n) (sqrt(s_k^2 / (n_k - 1)) estimates the
    error of the mean of the m_k covered samples; Var(mean) ~ 1/length for lengths >> the
    correlation time).  It rises to a plateau (the true error) once blocks are longer than the
    correlation time.  ``mean`` is that of all samples.

    >>> lv = blocking_levels(np.arange(16.0))
    >>> lv.n.tolist(), float(lv.variance[0]), lv.error.round(2).tolist()
    ([16, 8, 4, 2], 21.25, [1.19, 1.73, 2.58, 4.0])
    >>> lv = blocking_levels(np.arange(20.0))          # 20 -> 10 -> 5 -> (drop oldest) 2
    >>> lv.n.tolist(), lv.covered.tolist(), float(lv.mean), float(lv.variance[3])
    ([20, 10, 5, 2], [20, 20, 20, 16], 9.5, 16.0)
    """
    return _levels(_as_chains(x))


def _get_levels(x) -> BlockingLevels:
    return x if isinstance(x, BlockingLevels) else blocking_levels(x)


def _jonsson_terms(lv: BlockingLevels) -> tuple[np.ndarray, np.ndarray]:
    """Per-level chi-squared terms and their degrees of freedom (0 or 1)."""
    n = lv.n.astype(float)
    if lv.n_chains == 1:                       # the paper, exactly
        return n * lv.rho ** 2, np.ones(lv.d, dtype=np.int64)
    # Pooled chains: r_ck = gamma_ck / s_ck^2 has, for uncorrelated Gaussian data, exactly
    # E r = -1/n and Var r = (n-2)^2 / (n^2 (n-1)) (Moran 1948).  Jonsson's -(n-1)/n^2 and 1/n
    # differ by O(1/n^2), which the factor C would turn into a spurious signal at the top levels.
    s2, g = lv.chain_variance, lv.chain_gamma
    ok = s2 > 0
    count = ok.sum(axis=0)
    r = np.divide(g, s2, out=np.zeros_like(s2), where=ok)
    rbar = np.divide(r.sum(axis=0), count, out=np.zeros(lv.d), where=count > 0)
    var0 = (n - 2) ** 2 / (n ** 2 * (n - 1))
    usable = (count > 0) & (var0 > 0)          # n_k = 2 is degenerate: r = -1/2 always
    terms = np.where(usable, count * (rbar + 1 / n) ** 2 / np.where(usable, var0, 1.0), 0.0)
    return terms, usable.astype(np.int64)


def jonsson_statistic(x) -> np.ndarray:
    r"""Jonsson's test statistic M_j for every level j (array or `BlockingLevels`).

    One series: M_j = sum_{k=j}^{d-1} n_k ((n_k - 1) s_k^2 / n_k^2 + gamma_k)^2 / s_k^4
                    = sum_{k=j}^{d-1} n_k rho_k^2,
    asymptotically chi-squared with d - j degrees of freedom if no level k >= j is correlated.
    C pooled chains (2D input): M_j = sum_{k=j}^{d-1} C (rbar_k + 1/n_k)^2 / V(n_k), rbar_k the
    chain average of gamma_k / s_k^2 and V(n) = (n-2)^2 / (n^2 (n-1)) its exact null variance
    for one chain; the degenerate top level n_k = 2 is left out (one degree of freedom fewer).

    >>> m = jonsson_statistic(np.random.default_rng(0).normal(size=1024))
    >>> len(m), bool(m[0] < CHI2_99[10 - 1])
    (10, True)
    """
    terms, _ = _jonsson_terms(_get_levels(x))
    return np.cumsum(terms[::-1])[::-1]


def jonsson_level(x) -> int:
    r"""Plain Jonsson (2018) level: the first j with M_j < chi2_{0.99}(d - j).

    The degrees of freedom are d - j, the number of terms in M_j, as in the paper and its R/C++
    code (the widely copied Python version compares M_j with the quantile for j + 1 degrees of
    freedom).  Returns d - 1 if no level passes (only possible with few data).  For 2D input
    (chains) the pooled statistic of `jonsson_statistic` is used.

    >>> jonsson_level(np.random.default_rng(0).normal(size=4096))
    0
    """
    lv = _get_levels(x)
    terms, dof = _jonsson_terms(lv)
    m = np.cumsum(terms[::-1])[::-1]
    df = np.cumsum(dof[::-1])[::-1]
    if lv.d > len(CHI2_99):
        raise ValueError(f"series too long for the chi-squared table: {lv.d} levels > {len(CHI2_99)}")
    for j in range(lv.d):
        if df[j] == 0 or m[j] < CHI2_99[df[j] - 1]:
            return j
    return lv.d - 1


def wolff_lee_level(x) -> int:
    r"""Level chosen by the Wolff / Lee et al. criterion as implemented in pyblock.

    First level k with B^3 > 2 n (err_k / err_0)^4, B = 2^k, n the number of samples
    (pyblock ``find_optimal_block``; for chains n is the total number of samples).  Returns d - 1
    if none qualifies (pyblock: NaN).  `select_level` uses a variant of it as a cap.

    >>> wolff_lee_level(np.random.default_rng(0).normal(size=4096))
    5
    """
    lv = _get_levels(x)
    n = lv.n[0] * lv.n_chains
    if lv.error[0] == 0:
        return 0
    for k in range(lv.d):
        if 2.0 ** (3 * k) > 2 * n * (lv.error[k] / lv.error[0]) ** 4:
            return k
    return lv.d - 1


def select_level(x) -> int:
    r"""The level `block` and `analyze` use: Jonsson's level, capped at a Wolff / Lee block size.

        j = min(jonsson_level, first k with B_k^3 > 2 n max(t_k, 1/t_k)^2),  t_k = (err_k/err_0)^2,

    n the total number of samples.  Jonsson's M_j sums the squared correlations of all levels
    k >= j, so one chance fluctuation at a high level, where few blocks make rho_k noisy, can
    reject every lower level and push j to a level with ~8 blocks (seen in ~1 of 1000 AR(1)
    series: error bar 50% too large).  Wolff (2004) and Lee et al. (2011) put the block size that
    minimises the mean squared error of the blocked error bar at B^3 = 2 n tau^2 (pyblock's
    criterion, `wolff_lee_level`); beyond it the noise of the error bar outweighs the bias it
    removes, and the residual correction makes the bias smaller still.  For anticorrelated data
    tau < 1 but the bias scale is not small (AR(1) with -phi has the same residual-correlation
    length as with +phi and tau(-phi) = 1/tau(phi)), hence max(t, 1/t).  The cap does not bind in
    the AR(1) tables of docs/blocking.md apart from those rare outliers.

    >>> select_level(np.random.default_rng(0).normal(size=4096))
    0
    """
    lv = _get_levels(x)
    j = jonsson_level(lv)
    if lv.error[0] == 0:
        return j
    ratio = lv.error / lv.error[0]
    scale = np.maximum(ratio, 1.0 / np.where(ratio > 0, ratio, np.inf)) ** 4
    n = lv.n[0] * lv.n_chains
    for k in range(j):
        if 2.0 ** (3 * k) > 2 * n * scale[k]:
            return k
    return j


def residual_correction(x, level: int | None = None) -> float:
    r"""Factor f on the blocked variance at `level` (default `select_level`) for residual correlation.

    At level j the block means y_i (block length B_j = 2^j) are still correlated with their
    neighbours, rho_j = corr(y_i, y_{i+1}); for B_j >> the correlation time, longer lags are
    negligible and rho_j = c / B_j with c = sum_t t C(t) / sum_t C(t) (any process with
    summable correlations).  Then Var(mean) = (Var(y) / n_j) (1 + 2 rho_j), while the blocked
    estimate s_j^2 / (n_j - 1) estimates Var(y) / n_j.  rho_j itself is noisy (~1/sqrt(n_j)), so
    it is extrapolated from level i = max(j - 2, 0), where it is 4 times larger and measured on 4
    times more blocks (8 times better relative precision):

        f = 1 + 2 r,  r = rho_i 2^{-(j - i)} clipped to [-1/4, 1/4],  error = err_j sqrt(f),

    with rho_i = gamma_i / s_i^2 + 1/n_i (unbiased for uncorrelated data; chain averages for 2D).

    Two levels balance the two failure modes measured on AR(1) data: from j - 1 the extrapolation
    is noisier, from j - 3 the 1/B law does not yet hold at phi = 0.99 (docs/blocking.md).

    >>> x = np.random.default_rng(1).normal(size=4096)
    >>> bool(abs(residual_correction(x) - 1) < 0.05)
    True
    """
    lv = _get_levels(x)
    j = select_level(lv) if level is None else int(level)
    i = max(j - EXTRAPOLATION_LEVELS, 0)
    if lv.variance[i] <= 0:
        return 1.0
    rho_i = lv.gamma[i] / lv.variance[i] + 1.0 / lv.n[i]     # E[gamma/s^2] = -1/n if uncorrelated
    r = float(rho_i) * 2.0 ** (i - j)
    r = min(max(r, -MAX_RESIDUAL_RHO), MAX_RESIDUAL_RHO)
    return 1.0 + 2.0 * r


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BlockingResult:
    """Blocked estimate of the mean of one series (see `block`).

    naive_error = sqrt(variance / (n_samples - 1)) (sample standard deviation / sqrt(n)),
    variance = (1/n) sum (x - mean)^2, tau = (error / naive_error)^2 (= 1 + 2 sum_t rho(t), i.e.
    1 for uncorrelated data; 1.0 by convention for a constant series).  mean, variance and
    naive_error use all n_samples samples.  curve[k] is the naive error at blocking level k;
    level is the selected level (`select_level`) and correction the factor f on the variance
    there: error = curve[level] sqrt(correction).  For lengths that are not a power of two the
    blocks of that level cover all but at most 2^level - 1 of the oldest samples; the curve is
    scaled to the mean of all samples (see `blocking_levels`).
    """
    mean: float
    error: float
    naive_error: float
    variance: float
    n_samples: int
    level: int
    tau: float
    curve: np.ndarray
    correction: float
    constant: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ChainStats:
    """Combined estimate from independent chains (see `analyze`).

    As `BlockingResult`, plus n_chains, n_steps (steps per chain, all used), r_hat (split-R-hat),
    chain_means and chain_errors (each chain's blocked error at the common level, so that
    error = sqrt(sum chain_errors^2) / n_chains).  naive_error treats all n_samples as
    independent; variance is that of all samples about the grand mean.
    """
    mean: float
    error: float
    naive_error: float
    variance: float
    tau: float
    n_samples: int
    n_chains: int
    n_steps: int
    level: int
    r_hat: float
    chain_means: np.ndarray
    chain_errors: np.ndarray
    curve: np.ndarray
    correction: float
    constant: bool = False
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _core(a: np.ndarray) -> dict:
    """Shared analysis of validated chains (n_chains, n_steps): pooled blocking + correction."""
    lv = _levels(a)
    n_total = a.size
    constant = bool(np.all(a == a[0, 0]))
    mean = float(a[0, 0]) if constant else lv.mean
    variance = 0.0 if constant else float(np.mean((a - lv.mean) ** 2))
    naive = math.sqrt(variance / (n_total - 1))
    notes, warnings = [], []
    if constant:
        notes.append("constant series: error is 0")
        j, f = 0, 1.0
        chain_err = np.zeros(lv.n_chains)
        error = 0.0
    else:
        j = select_level(lv)
        f = residual_correction(lv, j)
        chain_err = np.sqrt(lv.chain_variance[:, j] / (lv.n[j] - 1) * (lv.covered[j] / a.shape[1]) * f)
        error = float(lv.error[j] * math.sqrt(f))
        blocks = int(lv.n[j]) * lv.n_chains
        if blocks < MIN_BLOCKS:
            warnings.append(f"only {blocks} blocks at the selected level {j} (of {lv.d}): no clear "
                            "plateau, the error bar is uncertain; collect more data")
    tau = (error / naive) ** 2 if naive > 0 else 1.0
    chain_err.setflags(write=False)
    return dict(levels=lv, mean=mean, error=error, naive_error=naive, variance=variance,
                n_samples=n_total, level=j, tau=tau, correction=f, constant=constant, chain_errors=chain_err,
                notes=notes,
                warnings=warnings)


# --------------------------------------------------------------------------------------------
# Public analysis functions
# --------------------------------------------------------------------------------------------

def block(x) -> BlockingResult:
    r"""Blocked mean and error of one correlated series.

    error^2 = f s_j^2 / (n_j - 1) m_j / n, with j = `select_level` (Jonsson's level, capped at
    Wolff/Lee's), f = `residual_correction` and m_j / n the fraction of the samples covered by
    level j (1 for power-of-two n).
    Every sample is used: mean, variance, naive_error and n_samples refer to the whole series.  If
    the length is not a power of two, a level with an odd number of blocks leaves out its OLDEST
    block before pairing (`blocking_levels`), so the blocks of level j cover the newest
    m_j = n_j 2^j > n - 2^j samples; m_j / n scales their error to that of the mean of all n
    samples (Var(mean) ~ 1/length).  A constant series gives error 0 (constant=True).
    Raises ValueError for an empty series, non-finite values, or fewer than MIN_SAMPLES samples.
    Runs `equilibration_check` when the series is long enough and reports it in ``warnings``.

    >>> r = block(np.random.default_rng(2).normal(size=2**12))
    >>> r.level, bool(abs(r.error / r.naive_error - 1) < 0.05), round(r.tau, 1)
    (0, True, 1.0)
    """
    a = _as_chains(x)
    if a.shape[0] != 1:
        raise ValueError(f"block expects a 1D series, got shape {np.shape(x)}; use analyze for chains")
    c = _core(a)
    warnings = list(c["warnings"])
    eq = _equilibration(a) if not c["constant"] else None
    if eq is not None:
        warnings.append(eq)
    lv = c["levels"]
    return BlockingResult(mean=c["mean"], error=c["error"], naive_error=c["naive_error"],
                          variance=c["variance"], n_samples=c["n_samples"], level=c["level"],
                          tau=c["tau"], curve=lv.error, correction=c["correction"],
                          constant=c["constant"], warnings=warnings, notes=c["notes"])


def split_rhat(chains) -> float:
    r"""Classic split-R-hat (Gelman et al., BDA3; Vehtari et al. 2021 without rank normalisation).

    Every chain is split into halves (a single chain therefore gives two), m sequences of length
    L: W = mean of the within-sequence variances (1/(L-1)), B/L = variance of the sequence means
    (1/(m-1)), R = sqrt(((L-1)/L W + B/L) / W).  1.0 if all sequences are identical constants,
    inf if they are constants with different values.

    >>> rng = np.random.default_rng(3)
    >>> bool(split_rhat(rng.normal(size=(4, 1000))) < 1.01)
    True
    """
    a = np.asarray(chains, dtype=float)
    a = a[None, :] if a.ndim == 1 else a
    if a.ndim != 2 or a.shape[1] < 4 or not np.all(np.isfinite(a)):
        raise ValueError(f"split-R-hat needs finite chains of at least 4 steps, got shape {a.shape}")
    half = a.shape[1] // 2
    seqs = np.concatenate([a[:, a.shape[1] - 2 * half:][:, :half], a[:, a.shape[1] - half:]])
    L = seqs.shape[1]
    if np.all(seqs == seqs[:, :1]):                 # every sequence constant (exactly)
        return 1.0 if np.all(seqs == seqs[0, 0]) else math.inf
    w = float(np.mean(np.var(seqs, axis=1, ddof=1)))
    b_over_l = float(np.var(seqs.mean(axis=1), ddof=1))
    return math.sqrt(((L - 1) / L * w + b_over_l) / w)


def _equilibration(a: np.ndarray, fraction: float = 0.1, n_sigma: float = 3.0) -> str | None:
    """Equilibration rule on validated chains; None when fine or too short to test."""
    n = a.shape[1]
    head = 1 << max(int(math.floor(math.log2(max(fraction * n, 1.0)))), 0)
    if head < MIN_SAMPLES or n - head < MIN_SAMPLES:
        return None
    rest = a[:, head:]
    m_head = float(a[:, :head].mean())
    t = _core(rest)
    diff = abs(m_head - t["mean"])
    if diff == 0.0:
        return None
    # stationary null: the head is as correlated as the rest, so Var(head mean) scales by n_r/n_h
    n_rest = t["n_samples"] // a.shape[0]
    err_head = t["error"] * math.sqrt(n_rest / head)
    sigma = math.hypot(err_head, t["error"])
    z = diff / sigma if sigma > 0 else math.inf
    if z <= n_sigma:
        return None
    return (f"equilibration: the mean of the first {head} steps ({m_head:.6g}) differs from the "
            f"rest ({t['mean']:.6g} +- {t['error']:.2g}) by {z:.1f} sigma > {n_sigma:g}; "
            "discard more steps as burn-in")


def equilibration_check(x, fraction: float = 0.1, n_sigma: float = 3.0) -> str | None:
    r"""Warn when the start of the series is not in equilibrium; returns a message or None.

    Rule: head = the first h = 2^floor(log2(fraction n)) steps (between fraction/2 and fraction of
    the series), rest = the remaining steps, blocked as in `block` (pooled over chains for 2D
    input; all n_r = n - h of its steps are used).  Under the null hypothesis
    "the head belongs to the same stationary process", err_head = err_rest sqrt(n_r / h), and the
    check fires when

        |mean_head - mean_rest| > n_sigma sqrt(err_head^2 + err_rest^2).

    The head's own blocked error is not used: a transient looks like a long correlation and
    inflates it, hiding itself.  Needs MIN_SAMPLES / fraction steps (160 by default).

    >>> rng = np.random.default_rng(4)
    >>> equilibration_check(rng.normal(size=4096)) is None
    True
    >>> x = rng.normal(size=4096) + 10 * np.exp(-np.arange(4096) / 100)
    >>> equilibration_check(x).startswith("equilibration")
    True
    """
    a = _as_chains(x)
    need = int(math.ceil(MIN_SAMPLES / fraction))
    if a.shape[1] < need or a.shape[1] * fraction < MIN_SAMPLES:
        raise ValueError(f"series too short for the equilibration check: {a.shape[1]} samples, needs {need}")
    return _equilibration(a, fraction, n_sigma)


def analyze(chains) -> ChainStats:
    r"""Combined mean and error of independent, equal-length chains (n_chains, n_steps).

    mean = (1/C) sum_c mean_c; Var(mean) = (1/C^2) sum_c Var(mean_c) since chains are independent.
    The blocking statistics are pooled over chains at every level (s_k^2, gamma_k averaged over
    chains, Jonsson's statistic with exact small-n null moments, see `jonsson_statistic`), one
    common level j is selected and corrected as in `block`:

        error^2 = f (m_j / n) (1/C^2) sum_c s_{c,j}^2 / (n_j - 1) = (1/C^2) sum_c chain_errors_c^2.

    Why pooled: blocking the per-step average over chains gives the same expectation but only n_j
    blocks, while pooling uses C n_j (with many short walker chains, C times the degrees of
    freedom); selecting a level per chain is noisy and biased low for short chains.  For C = 1 this
    is exactly `block`.  All steps of every chain are used (odd levels as in `blocking_levels`).
    Warnings: split-R-hat > 1.01, failed `equilibration_check` (pooled), too few blocks.

    >>> s = analyze(np.random.default_rng(5).normal(size=(8, 1024)))
    >>> s.n_chains, s.n_samples, bool(abs(s.error * np.sqrt(8 * 1024) - 1) < 0.05)
    (8, 8192, True)
    """
    a = _as_chains(chains, "chains")
    c = _core(a)
    lv = c["levels"]
    warnings = list(c["warnings"])
    r_hat = split_rhat(a)
    if r_hat > RHAT_LIMIT:
        warnings.append(f"convergence: split-R-hat = {r_hat:.4f} > {RHAT_LIMIT} across chains "
                        "(chains disagree; run longer or check equilibration)")
    eq = _equilibration(a) if not c["constant"] else None
    if eq is not None:
        warnings.append(eq)
    return ChainStats(mean=c["mean"], error=c["error"], naive_error=c["naive_error"],
                      variance=c["variance"], tau=c["tau"], n_samples=c["n_samples"],
                      n_chains=lv.n_chains, n_steps=a.shape[1], level=c["level"],
                      r_hat=r_hat, chain_means=lv.chain_means, chain_errors=c["chain_errors"],
                      curve=lv.error, correction=c["correction"],
                      constant=c["constant"], warnings=warnings, notes=c["notes"])


@dataclass(frozen=True)
class Combined:
    """Sample-count-weighted combination of independent estimates (see `combine`)."""
    mean: float
    error: float
    n_samples: int


def combine(results) -> Combined:
    r"""Combine independent estimates of the same quantity, weighted by their sample counts.

    mean = sum_i n_i m_i / N, error = sqrt(sum_i n_i^2 e_i^2) / N, N = sum_i n_i.  Weights n_i
    (not 1/e_i^2) avoid the bias of weighting by noisy error estimates.  Accepts objects with
    mean, error and n_samples attributes (`BlockingResult`, `ChainStats`) or (mean, error, n)
    tuples.

    >>> c = combine([(1.0, 0.1, 100), (2.0, 0.1, 100)])
    >>> c.mean, round(c.error, 6), c.n_samples
    (1.5, 0.070711, 200)
    """
    rows = [(r.mean, r.error, r.n_samples) if hasattr(r, "mean") else tuple(r) for r in results]
    if not rows:
        raise ValueError("nothing to combine")
    m, e, n = (np.asarray(v, dtype=float) for v in zip(*rows))
    if np.any(n <= 0):
        raise ValueError("every estimate needs a positive sample count")
    total = float(n.sum())
    return Combined(mean=float(n @ m / total), error=float(math.sqrt(float(np.sum((n * e) ** 2))) / total),
                    n_samples=int(total))


# --------------------------------------------------------------------------------------------
# Short, strongly correlated series: the Gamma method
# --------------------------------------------------------------------------------------------

#: Wolff's S: the assumed ratio tau_exp / tau_int that sets the window's balance of bias and noise.
GAMMA_S = 1.5


@dataclass(frozen=True)
class GammaResult:
    """Mean and error of one series by `gamma_method`: tau = (error / naive error)^2 (1 + 2 sum rho, the
    convention of `block`), window W the last lag summed, tau_error the statistical error of tau."""
    mean: float
    error: float
    tau: float
    window: int
    tau_error: float


def gamma_method(x, s: float = GAMMA_S) -> GammaResult:
    r"""Error of the mean of one correlated series from its summed autocorrelation function (Wolff 2004).

    Gamma(t) = (1/(n-t)) sum_i (x_i - xbar)(x_{i+t} - xbar), C(W) = Gamma(0) + 2 sum_{t=1}^{W} Gamma(t).
    The window W is the first with g(W) = exp(-W / tau_W) - tau_W / sqrt(W n) < 0, where
    tau_W = s / ln((2 t_W + 1) / (2 t_W - 1)), t_W = C(W) / (2 Gamma(0)): the truncation bias of an
    exponential tail (first term) against the noise of the sum (second). The sample mean's own
    correlation with the data lowers every Gamma(t) by about C / n, which is added back:
    C <- C (1 + (2W + 1) / n). Then error = sqrt(C / n), tau = C / Gamma(0), and
    tau_error = tau sqrt(2 (2W + 1) / n) (Madras & Sokal 1988).

    Why for DMC: blocking needs about 32 blocks at the plateau (docs/blocking.md, Limits), i.e.
    n >~ 100 tau; a DMC energy is typically 30-50 correlation times long (population control and the
    slow walker motion), where Jonsson's test has too few blocks to reject the correlation and the
    blocked error is 15-25 % low (benchmarks/bench_dmc_coverage.py). The windowed sum sees the whole
    exponential tail and is unbiased there, at the price of a noisier error bar.

    >>> rng = np.random.default_rng(6)
    >>> e = rng.normal(size=2**14)
    >>> x = np.empty_like(e); x[0] = e[0]
    >>> for i in range(1, x.size): x[i] = 0.9 * x[i - 1] + e[i]    # AR(1): tau = 1.9 / 0.1 = 19
    >>> r = gamma_method(x)
    >>> bool(abs(r.tau - 19) < 3 * r.tau_error), bool(r.window < 200)
    (True, True)
    """
    a = _as_chains(x)
    if a.shape[0] != 1:
        raise ValueError(f"gamma_method expects a 1D series, got shape {np.shape(x)}")
    y = a[0] - a[0].mean()
    n = y.size
    f = np.fft.rfft(y, 2 * n)
    gamma = np.fft.irfft(f * np.conj(f), 2 * n)[:n] / (n - np.arange(n))
    if gamma[0] <= 0:
        return GammaResult(float(a[0, 0]), 0.0, 1.0, 0, 0.0)
    partial = gamma[0] + 2.0 * np.cumsum(gamma[1:])          # C(W) for W = 1..n-1
    window = n // 2
    for w in range(1, n // 2):
        t = partial[w - 1] / (2.0 * gamma[0])
        tau_w = s / math.log((2 * t + 1) / (2 * t - 1)) if t > 0.5 else 1e-300
        if math.exp(-w / tau_w) - tau_w / math.sqrt(w * n) < 0:
            window = w
            break
    c = float(partial[window - 1]) * (1.0 + (2 * window + 1) / n)
    c = max(c, float(gamma[0]) / n)                           # an anticorrelated sum cannot go below 0
    tau = c / float(gamma[0])
    return GammaResult(float(a[0].mean()), math.sqrt(c / n), tau, window, tau * math.sqrt(2 * (2 * window + 1) / n))
