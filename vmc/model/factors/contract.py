r"""The contract every factor of the trial state fulfils; the samplers combine factors only through it.

The trial state is a product of factors, psi = prod_f psi_f, so ln|psi| = sum_f ln|psi_f| and every
quantity below is a sum over factors. Every factor is a `typing.NamedTuple` subclass (its *kernel
data*: views of its parameters in the flat vector theta, constants, and per-walker cache arrays
indexed by the walker w) plus an implementation of each function below, registered with
`implements`. The sums over a tuple of factors (`vmc.model.wavefunction`) recurse over the tuple at compile
time and inline every call, so numba compiles one kernel per combination of factors, a factor that is
off costs nothing, and no call boundary is left in the hot loop. (Iterating with
`numba.literal_unroll` instead would be simpler, but numba 0.68 miscompiles inlined overloads inside
it: writes to the factors' arrays are lost.) The hot loops themselves (the DMC step, the VMC chain) are
`vmc.model.wavefunction.factor_kernel`s: their sums are written out factor by factor in their own bodies, because
through one more inlined layer that takes the whole tuple numba leaves reference counts of every factor's
arrays at every call (benchmarks/README.md, bench_dmc.py).

Conventions, as in QMCPACK's WaveFunctionComponent: everything is a contribution to ln|psi| (never
|psi|^2, never the drift "force" 2 grad ln psi; the sampler applies those factors of 2 once); every
`add_*` accumulates into its output. The per-walker cache holds what makes a one-particle move cheap
(RBM hidden pre-activations, inverse Slater matrices); a proposal's intermediate results live in the
factor's scratch until `accept` or the next proposal.

    init(f, w, x)                    build walker w's cache for the positions x
    refresh(f, w, x)                 recompute what incremental updates let drift (every `REFRESH_EVERY`
                                     sweeps; may do nothing)
    log_value(f, w, x) -> (l, s)     ln|psi_f(x)| and the sign of psi_f, from scratch
    propose(f, w, x, i, xp, dx) -> (l, s)
                                     ln|psi_f(x') / psi_f(x)| and its sign when particle i moves by dx
                                     to xp = x_i + dx
    add_grad_current(f, w, x, i, out)   out += grad_i ln|psi_f| at x
    add_grad_proposed(f, w, x, i, xp, out)
                                     out += grad_i ln|psi_f| at x' (after `propose` of the same move)
    accept(f, w, x, i, xp)           update the cache for the move just proposed (x not yet updated)
    add_grad_lap(f, w, x, grad, lap) grad_k += d_k ln|psi_f|, lap_k += d_k^2 ln|psi_f| for all coordinates
    add_dlog(f, w, x, out)           out[f's slots] += d ln|psi_f| / d theta for its variational parameters

and, optional (`OPTIONAL`), for a factor that has a joint distribution with hidden units to sample:

    gibbs_sweep(f, w, x, draws, h)   one Gibbs update of that joint distribution: h | x, then x | h (x and
                                     walker w's cache updated), from the sampler's random numbers `draws`
                                     (one uniform per hidden unit, then one standard normal per coordinate); a
                                     Gibbs sampler asks it of a trial state that is this factor alone
                                     (`vmc.model.wavefunction.gibbs_sweep_all`)

x is the flat coordinate vector (P*D,), particle i owning x[i*D:(i+1)*D]; xp the proposed position (D,).

A kernel-data class names its per-walker cache arrays (the walker is their first axis) in the class attribute
`WALKER_CACHE`. They are a walker's whole state beside its positions: DMC's branching copies them with the
walker (`vmc.model.wavefunction.walker_caches`), so a copy continues exactly as its parent would have, on whichever
rank it lands, without rebuilding its cache.
"""
from __future__ import annotations

import inspect

from numba import types
from numba.extending import overload


def init(f, w, x):
    raise NotImplementedError("numba only")


def refresh(f, w, x):
    raise NotImplementedError("numba only")


def log_value(f, w, x):
    raise NotImplementedError("numba only")


def propose(f, w, x, i, xp, dx):
    raise NotImplementedError("numba only")


def add_grad_current(f, w, x, i, out):
    raise NotImplementedError("numba only")


def add_grad_proposed(f, w, x, i, xp, out):
    raise NotImplementedError("numba only")


def accept(f, w, x, i, xp):
    raise NotImplementedError("numba only")


def add_grad_lap(f, w, x, grad, lap):
    raise NotImplementedError("numba only")


def add_dlog(f, w, x, out):
    raise NotImplementedError("numba only")


def gibbs_sweep(f, w, x, draws, h):
    raise NotImplementedError("numba only")


REFRESH_EVERY = 100   # sweeps between `refresh` calls; the drift it bounds: benchmarks/README.md (bench_determinants)

CONTRACT = (init, refresh, log_value, propose, add_grad_current, add_grad_proposed, accept, add_grad_lap, add_dlog)
OPTIONAL = (gibbs_sweep,)
_IMPLEMENTATIONS: dict = {fn: {} for fn in CONTRACT + OPTIONAL}


def implements(cls, **kernels) -> None:
    """Register the numba implementations of the contract for the kernel-data class `cls`:
    implements(RBMData, init=rbm_init, propose=rbm_propose, ...) with every name of `CONTRACT` (and any of
    `OPTIONAL`)."""
    missing = {fn.__name__ for fn in CONTRACT} - set(kernels)
    if missing:
        raise TypeError(f"{cls.__name__} does not implement {sorted(missing)}")
    unknown = set(kernels) - {fn.__name__ for fn in CONTRACT + OPTIONAL}
    if unknown:
        raise TypeError(f"{cls.__name__}: {sorted(unknown)} are not operations of the contract")
    cache = getattr(cls, "WALKER_CACHE", None)
    if not isinstance(cache, tuple) or not set(cache) <= set(cls._fields):
        raise TypeError(f"{cls.__name__}.WALKER_CACHE must be a tuple of its fields (its per-walker arrays)")
    for fn in CONTRACT + OPTIONAL:
        if fn.__name__ in kernels:
            _IMPLEMENTATIONS[fn][cls] = kernels[fn.__name__]


def implemented(fn, cls) -> bool:
    """Whether the kernel-data class `cls` implements the contract operation `fn` (for the optional ones)."""
    return cls in _IMPLEMENTATIONS[fn]


# Called once per particle move or measured sweep: inlined into the sweeps (numba IR inlining lets the
# reference-count operations on the factors' arrays be pruned, provided the caller has no raise paths,
# error_model="numpy", and an inlined kernel does not let its array arguments die at different points on
# the two sides of a branch; see `vmc.mc.samplers.run_chain`). The others run once per pass or less and
# are compiled once per factor, which keeps the compile time of a combination of factors down.
HOT = {"propose", "accept", "add_grad_current", "add_grad_proposed", "add_grad_lap", "add_dlog", "gibbs_sweep"}


def _dispatch(fn):
    table = _IMPLEMENTATIONS[fn]

    def typer(f, *args):
        if isinstance(f, types.BaseNamedTuple) and f.instance_class in table:
            kernel = table[f.instance_class]
            return getattr(kernel, "py_func", kernel)
        return None
    typer.__signature__ = inspect.signature(fn)   # numba matches it against the implementations
    overload(fn, inline="always" if fn.__name__ in HOT else "never")(typer)


for _fn in CONTRACT + OPTIONAL:
    _dispatch(_fn)

