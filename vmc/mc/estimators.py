r"""Monte Carlo estimators from sums that can be added across walkers and MPI ranks.

A sampling pass is reduced to one flat vector of sums (`sums`), so combining ranks is a single
allreduce and every rank then computes identical estimates (`Moments`). With E = E_L and
O = d ln psi / d theta:

    <E>,  Var E = <E^2> - <E>^2,  G = 2 ( <E O> - <E> <O> ),  S = <O O^T> - <O><O^T>.

The error bar of <E> during optimization comes from the spread of the per-walker means
(walkers are independent chains): err^2 = Var_w(mean_w) / n_walkers. It includes the
autocorrelation within a chain as long as each chain is much longer than its correlation time.
The final, publishable error bar comes from blocking the production series (`vmc.analysis.blocking`).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..model.hamiltonian import N_OBSERVABLES
from .samplers import Samples


@cache
def layout(n_opt: int, with_s: bool) -> dict[str, slice]:
    """Where each sum lives in the flat vector (one dict per shape: do not modify it)."""
    sizes = [("count", 1), ("energy", 1), ("energy_sq", 1), ("observables", N_OBSERVABLES),
             ("walkers", 1), ("walker_mean", 1), ("walker_mean_sq", 1), ("accepted", 1),
             ("proposed", 1), ("O", n_opt), ("EO", n_opt), ("OO", n_opt * n_opt if with_s else 0)]
    out, start = {}, 0
    for name, size in sizes:
        out[name] = slice(start, start + size)
        start += size
    out["size"] = slice(0, start)
    return out


def sums(samples: Samples, n_opt: int = 0, with_s: bool = False) -> np.ndarray:
    """The flat vector of sums over this process's samples (see `layout`)."""
    lay = layout(n_opt, with_s)
    out = np.zeros(lay["size"].stop)
    e = samples.local_energy
    n = e.size
    walker_means = e.mean(axis=1)
    out[lay["count"]] = n
    out[lay["energy"]] = e.sum()
    out[lay["energy_sq"]] = np.dot(e.ravel(), e.ravel())
    out[lay["observables"]] = samples.observables.reshape(n, -1).sum(axis=0)
    out[lay["walkers"]] = e.shape[0]
    out[lay["walker_mean"]] = walker_means.sum()
    out[lay["walker_mean_sq"]] = np.dot(walker_means, walker_means)
    out[lay["accepted"]] = samples.accepted
    out[lay["proposed"]] = samples.proposed
    if n_opt:
        o = samples.grad_log_psi.reshape(n, n_opt)
        out[lay["O"]] = o.sum(axis=0)
        out[lay["EO"]] = e.ravel() @ o
        if with_s:
            out[lay["OO"]] = (o.T @ o).ravel()
    return out


@dataclass
class Moments:
    """Estimates from reduced sums."""
    n_samples: int
    energy: float
    variance: float
    error: float
    observables: np.ndarray   # <T>, <V_trap>, <V_int>, <r_ij>
    acceptance: float
    gradient: np.ndarray | None = None   # G = 2(<E O> - <E><O>)
    s_matrix: np.ndarray | None = None   # <O O^T> - <O><O^T>

    @classmethod
    def from_sums(cls, total: np.ndarray, n_opt: int = 0, with_s: bool = False) -> "Moments":
        lay = layout(n_opt, with_s)
        n = total[lay["count"]][0]
        e = total[lay["energy"]][0] / n
        var = max(total[lay["energy_sq"]][0] / n - e * e, 0.0)
        n_w = total[lay["walkers"]][0]
        wm = total[lay["walker_mean"]][0] / n_w
        wvar = max(total[lay["walker_mean_sq"]][0] / n_w - wm * wm, 0.0)
        error = float(np.sqrt(wvar / (n_w - 1))) if n_w > 1 else float("nan")
        proposed = total[lay["proposed"]][0]
        acc = total[lay["accepted"]][0] / proposed if proposed else float("nan")
        grad = s = None
        if n_opt:
            o = total[lay["O"]] / n
            grad = 2.0 * (total[lay["EO"]] / n - e * o)
            if with_s:
                s = total[lay["OO"]].reshape(n_opt, n_opt) / n - np.outer(o, o)
        return cls(int(n), float(e), float(var), error, total[lay["observables"]] / n, float(acc), grad, s)
