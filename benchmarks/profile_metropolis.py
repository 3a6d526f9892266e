#!/usr/bin/env python
"""What a brute-force Metropolis move costs, part by part: the engine's `run_chain` beside copies of its
Metropolis loop with one part changed (experiment kernels: nothing here is used by the engine).

    .venv/bin/python benchmarks/profile_metropolis.py [--P 2 --D 2 --N 4 --walkers 8 --sweeps 50000 --rounds 5]

Same set-up as bench_sampling.py (interacting trap, omega = 1, RBM g = 1/2, a, b, W ~ N(0, 0.1^2),
step 1.0, E_L after every sweep); the variants run in interleaved rounds, best of --rounds, nanoseconds
per particle move of CPU time:

    engine                 vmc.mc.samplers.run_chain (all samplers in one function)
    copy                   the Metropolis loop of run_chain alone, error_model="numpy" as run_chain
    python error model     the copy with error_model="python": every division has a raise path, and
                           LLVM prunes none of the reference counts of the inlined factor kernels
    no E_L                 the copy without the local energy after each sweep
    E_L grad/lap only      ... with the gradient and Laplacian of ln psi but without the terms
    no exp/log1p           the RBM's softplus and sigmoid replaced by arithmetic (timing only)
    numpy PCG64            the copy drawing from a numpy Generator (PCG64), the engine's stream before format 5
    inline PCG64           numpy's PCG64 stream computed inline (checked bit-identical to the Generator)
    xoroshiro128+          the generator of ../shared/perf/limit.c

The copy and the engine draw from the counter-based stream of vmc.mc.streams (SplitMix64, seeked per sweep).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from vmc.mc.samplers import METROPOLIS, Record, Rule, Sampler, Walkers, run_chain  # noqa: E402
from vmc.mc.streams import seek  # noqa: E402,F401 (used by the generated kernels)
from vmc.mc.streams import uniform as splitmix_uniform  # noqa: E402,F401
from vmc.model.factors import rbm  # noqa: E402
from vmc.model.factors.contract import implements  # noqa: E402
from vmc.model.hamiltonian import N_OBSERVABLES, Hamiltonian, measure  # noqa: E402,F401
from vmc.model.wavefunction import TrialState, accept_all, add_grad_lap_all, default_sigma, init_all, propose_all  # noqa: E402,F401

# ---- random streams ------------------------------------------------------------------------------------

@intrinsic
def _pcg64_next(typingctx, st):
    """numpy's PCG64 (128-bit LCG, XSL-RR output) on st = uint64[4] (state hi, lo, increment hi, lo)."""
    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        i64, i128 = ir.IntType(64), ir.IntType(128)

        def word(k):
            return builder.gep(data, [ir.Constant(i64, k)])

        def wide(hi, lo):
            return builder.or_(builder.shl(builder.zext(builder.load(word(hi)), i128), ir.Constant(i128, 64)),
                               builder.zext(builder.load(word(lo)), i128))
        s = builder.add(builder.mul(wide(0, 1), ir.Constant(i128, 0x2360ED051FC65DA44385DF649FCCF645)), wide(2, 3))
        hi = builder.trunc(builder.lshr(s, ir.Constant(i128, 64)), i64)
        lo = builder.trunc(s, i64)
        builder.store(hi, word(0))
        builder.store(lo, word(1))
        v, rot = builder.xor(hi, lo), builder.lshr(hi, ir.Constant(i64, 58))
        back = builder.and_(builder.sub(ir.Constant(i64, 0), rot), ir.Constant(i64, 63))
        return builder.or_(builder.lshr(v, rot), builder.shl(v, back))
    return types.uint64(st), codegen


@numba.njit(inline="always")
def pcg64_uniform(st):
    return float(_pcg64_next(st) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


def pcg64_words(generator: np.random.Generator) -> np.ndarray:
    state = generator.bit_generator.state["state"]
    mask = (1 << 64) - 1
    return np.array([state["state"] >> 64, state["state"] & mask, state["inc"] >> 64, state["inc"] & mask],
                    dtype=np.uint64)


@numba.njit(inline="always")
def xoroshiro_uniform(s):
    s0, s1 = s[0], s[1]
    r = s0 + s1
    s1 ^= s0
    s[0] = ((s0 << np.uint64(24)) | (s0 >> np.uint64(40))) ^ s1 ^ (s1 << np.uint64(16))
    s[1] = (s1 << np.uint64(37)) | (s1 >> np.uint64(27))
    return float(r >> np.uint64(11)) * (1.0 / 9007199254740992.0)


# ---- an RBM without exp/log1p (timing only) -------------------------------------------------------------

class ArithmeticRBM(rbm.RBMData):
    """The RBM's kernel data, with a propose whose softplus/sigmoid are arithmetic (a wrong chain)."""
    __slots__ = ()


@numba.njit
def _arithmetic_propose(f, w, x, i, xp, dx):
    sigma = f.sigma[0]
    inv_s2 = 1.0 / (sigma * sigma)
    first = i * f.D
    N = f.u_new.shape[0]
    for j in range(N):
        v = f.u[w, j]
        for d in range(dx.shape[0]):
            v += dx[d] * inv_s2 * f.W[first + d, j]
        f.u_new[j] = v
        e = 1.0 + 0.1 * v
        f.sp_new[j], f.sg_new[j] = 0.5 * v + 0.7, e / (1.0 + e)
    s = 0.0
    for d in range(xp.shape[0]):
        k = first + d
        s -= (xp[d] - f.a[k]) ** 2 - (x[k] - f.a[k]) ** 2
    s /= 2.0 * sigma * sigma
    for j in range(N):
        s += f.sp_new[j] - f.sp[w, j]
    return f.g * s, 1.0


implements(ArithmeticRBM, init=rbm.rbm_init, refresh=rbm.rbm_refresh, log_value=rbm.rbm_log_value,
           propose=_arithmetic_propose, add_grad_current=rbm.rbm_add_grad_current,
           add_grad_proposed=rbm.rbm_add_grad_proposed, accept=rbm.rbm_accept, add_grad_lap=rbm.rbm_add_grad_lap,
           add_dlog=rbm.rbm_add_dlog)


# ---- the Metropolis loop of run_chain, with one part switched -------------------------------------------

TEMPLATE = '''
@numba.njit(error_model="{error_model}")
def chain(factors, terms, w, move, x, P, D, rng, n_steps, out):
    M = x.shape[0]
    xp, dx = np.empty(D), np.empty(D)
    grad, lap = np.empty(M), np.empty(M)
    init_all(factors, w, x)
    accepted = 0
    for sweep in range(n_steps):
        {seek}
        for i in range(P):
            first = i * D
            for d in range(D):
                dx[d] = move * ({uniform} - 0.5)
                xp[d] = x[first + d] + dx[d]
            log_ratio, sign = propose_all(factors, w, x, i, xp, dx)
            log_ratio = 2.0 * log_ratio
            if log_ratio >= 0.0 or {uniform} < math.exp(log_ratio):
                accept_all(factors, w, x, i, xp)
                accepted += 1
        if {local_energy}:
            for k in range(M):
                grad[k] = 0.0
                lap[k] = 0.0
            add_grad_lap_all(factors, w, x, grad, lap)
            if {terms}:
                measure(terms, x, grad, lap, out.observables[sweep])
            else:
                out.observables[sweep, 0] = grad[0] + lap[0]
    return accepted
'''

STREAMS = {"numpy": "rng.random()", "pcg64": "pcg64_uniform(rng)", "splitmix": "splitmix_uniform(rng)",
           "xoroshiro": "xoroshiro_uniform(rng)"}
# name: (stream, error model, local energy, terms, factor class)
VARIANTS = {
    "copy": ("splitmix", "numpy", True, True, None),
    "python error model": ("splitmix", "python", True, True, None),
    "no E_L": ("splitmix", "numpy", False, False, None),
    "E_L grad/lap only": ("splitmix", "numpy", True, False, None),
    "no exp/log1p": ("splitmix", "numpy", True, True, ArithmeticRBM),
    "numpy PCG64": ("numpy", "numpy", True, True, None),
    "inline PCG64": ("pcg64", "numpy", True, True, None),
    "xoroshiro128+": ("xoroshiro", "numpy", True, True, None),
}


def build(stream, error_model, local_energy, terms):
    namespace = dict(globals())
    exec(TEMPLATE.format(uniform=STREAMS[stream], error_model=error_model, local_energy=local_energy,
                         terms=terms, seek="seek(rng, sweep)" if stream == "splitmix" else "pass"), namespace)
    return namespace["chain"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--P", type=int, default=2)
    ap.add_argument("--D", type=int, default=2)
    ap.add_argument("--N", type=int, default=4)
    ap.add_argument("--walkers", type=int, default=8)
    ap.add_argument("--sweeps", type=int, default=50000, help="measured sweeps per walker and timing")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=2024)
    args = ap.parse_args(argv)
    P, D, N, n_w, n = args.P, args.D, args.N, args.walkers, args.sweeps

    wf = TrialState(P, D, N, default_sigma(1.0, 0.5), g=0.5).randomize(np.random.default_rng(args.seed), 0.1)
    ham = Hamiltonian(P, D, 1.0, interaction=True)
    terms = ham.kernel_terms()
    walkers = Walkers.start(args.seed, n_w, P * D, 0.5)
    Sampler("metropolis", step=1.0).sample(wf, ham, walkers, 200, 10)   # equilibrate
    chains = {name: build(*v[:4]) for name, v in VARIANTS.items()}

    def streams(kind):
        gens = [np.random.Generator(np.random.PCG64(s)) for s in np.random.SeedSequence(args.seed + 1).spawn(n_w)]
        if kind == "numpy":
            return gens
        if kind == "pcg64":
            return [pcg64_words(g) for g in gens]
        if kind == "splitmix":
            return [walkers.stream(w) for w in range(n_w)]
        return [np.array([0x9E3779B97F4A7C15 ^ w, 0xD1B54A32D192ED03], dtype=np.uint64) for w in range(n_w)]

    def run(name):
        factors = wf.kernel_data(n_w)
        obs = np.zeros((n_w, n, N_OBSERVABLES))
        x = walkers.positions.copy()
        out = [Record(obs[w], np.empty((0, 0)), np.zeros(0), 1.0) for w in range(n_w)]
        if name == "engine":
            rngs, rule = streams("splitmix"), Rule(METROPOLIS, 1.0, np.empty(0), np.empty(0))
            t0 = time.process_time()
            for w in range(n_w):
                run_chain(factors, terms, w, rule, x[w], D, rngs[w], 0, n, out[w])
            return time.process_time() - t0, obs
        stream, _, _, _, cls = VARIANTS[name]
        if cls is not None:
            factors = (cls(*factors[0]),)
        rngs = streams(stream)
        t0 = time.process_time()
        for w in range(n_w):
            chains[name](factors, terms, w, 1.0, x[w], P, D, rngs[w], n, out[w])
        return time.process_time() - t0, obs

    names = ["engine"] + list(VARIANTS)
    for name in names:   # compile
        run(name)
    best, obs = {name: math.inf for name in names}, {}
    for _ in range(args.rounds):
        for name in names:
            t, obs[name] = run(name)
            best[name] = min(best[name], t)
    moves = n_w * n * P
    print(f"# brute-force Metropolis, (P, D, N) = ({P}, {D}, {N}), {n_w} walkers x {n} sweeps, best of "
          f"{args.rounds} interleaved rounds, CPU time; numba {numba.__version__}")
    print(f"# the copy reproduces the engine bit for bit: {np.array_equal(obs['copy'], obs['engine'])}; "
          f"inline PCG64 reproduces the Generator's chain: {np.array_equal(obs['inline PCG64'], obs['numpy PCG64'])}")
    print(f"{'variant':<22} {'ns/move':>8} {'moves/s':>10} {'vs copy':>8}")
    for name in names:
        print(f"{name:<22} {1e9 * best[name] / moves:8.1f} {moves / best[name]:10.3e} "
              f"{best[name] / best['copy']:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
