"""Memory and disk a configuration needs, estimated before any work, and the limits they are checked against.

Memory per rank (the rank with the most walkers, w = ceil(W / K) of W walkers on K ranks), in doubles:

* optimization: the recorded samples, w x sampler.steps x (4 observables + n_opt derivatives
  d ln psi / d theta), plus n_opt^2 (three copies) for stochastic reconfiguration;
* production: one chunk of w x 1000 x 4 observables per rank, and on rank 0 the whole population's
  chunk, W x 1000 x 4, about three times (gather, concatenate, columns);
* checkpoints: all walkers' positions on rank 0, W x M, twice;
* DMC (dmc.steps > 0): every rank holds its own DMC walkers' records and positions, n x (N_COLUMNS +
  2 M + 16) for n = ceil(N_dmc / K), and rank 0 gathers all positions, E_L and ratios for a checkpoint,
  N_dmc x (3 M + 4);
* the trial state's per-walker caches (`walker_cache`) for the rank's VMC and DMC walkers: inverse
  Slater matrices 2 (P/2)^2, the coordinate RBM's 3 N pre-activations, the symmetric RBM's 2 P N + P^2
  (with P = 72 determinants: 2592 doubles, 20 KiB per walker);

plus `BASELINE` bytes for Python, numpy, numba and MPI. The limit per rank is `VMC_MEMORY_LIMIT`
(bytes, or with a suffix: 500M, 8G) or, by default, half of this node's memory shared by the ranks on
the node. The output file is allocated in full when a run starts (`vmc.output.io`), so its size
(`io.RunShape.file_bytes`) must fit in the free space of the output directory.
"""
from __future__ import annotations

import math
import os
import re
import shutil

from ..input.spec import Spec
from ..output import io

BASELINE = 200 * 2**20
PRODUCTION_OBSERVABLES = 4


class ResourceError(Exception):
    """A configuration that would exhaust memory or disk; str() is one line for the user."""


def human(n: float) -> str:
    """Bytes in binary units.

    >>> human(1536), human(3 * 2**30)
    ('1.5 KiB', '3.0 GiB')
    """
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024


def parse_bytes(text: str) -> int:
    """'8G' -> 8 GiB, '500M', '1.5T', '123' (bytes).

    >>> parse_bytes("8G") == 8 * 2**30, parse_bytes("500M") == 500 * 2**20
    (True, True)
    """
    m = re.fullmatch(r"\s*([0-9.]+)\s*([KMGTP]?)(i?B)?\s*", text, re.IGNORECASE)
    if not m:
        raise ValueError(f"not a size: {text!r} (examples: 500M, 8G)")
    power = " KMGTP".index(m.group(2).upper() or " ")
    return int(float(m.group(1)) * 1024**power)


def walker_cache(spec: Spec) -> int:
    """Doubles the trial state caches per walker (`kernel_data` of the factors).

    >>> walker_cache(Spec.from_dict({"system": {"particles": 72}, "wavefunction": {"hidden": 4, "slater": True}}))
    2604
    """
    P, w = spec.system.particles, spec.wavefunction
    N = w.hidden
    rbm = 2 * P * N + P * P if w.rbm == "symmetric" else 3 * N
    backflow = P * P + P * spec.system.dimensions + 4 if w.backflow != "none" else 0
    return rbm + (2 * (P // 2) ** 2 + backflow if w.slater else 0)


def memory_per_rank(spec: Spec, n_ranks: int, n_opt: int) -> tuple[int, str]:
    """(bytes, what dominates) for the busiest rank of a run."""
    smp = spec.sampler
    walkers = smp.walkers
    w = math.ceil(walkers / n_ranks)
    M = spec.system.particles * spec.system.dimensions
    sr = n_opt * n_opt * 3 if spec.optimizer.kind == "sr" else 0
    optimization = 8 * (w * smp.steps * (PRODUCTION_OBSERVABLES + n_opt) + sr)
    chunk = min(io.PRODUCTION_CHUNK, spec.production.steps)
    production = 8 * (w * chunk * PRODUCTION_OBSERVABLES + 3 * walkers * chunk * PRODUCTION_OBSERVABLES
                      + 4 * spec.production.density_bins)
    checkpoint = 8 * 2 * walkers * M
    per_sample = PRODUCTION_OBSERVABLES + n_opt
    parts = {
        f"optimization samples: {w} walkers x {smp.steps} steps x {per_sample} numbers": optimization,
        f"production chunks: {walkers} walkers x {chunk} steps on rank 0": production,
        f"checkpoints: {walkers} walkers' states on rank 0": checkpoint,
    }
    dmc, n_dmc = 0, 0
    if spec.dmc_on:
        from ..mc.dmc import N_COLUMNS
        n = spec.dmc.walkers
        n_dmc = math.ceil(n / n_ranks)
        dmc = 8 * (n * (3 * M + 4) + n_dmc * (N_COLUMNS + 2 * M + 16))
        parts[f"DMC: {n} walkers' positions (gathered on rank 0 for checkpoints)"] = dmc
    per_walker = walker_cache(spec)
    caches = 8 * per_walker * (w + n_dmc)
    parts[f"trial-state caches: {per_walker} numbers for each of {w + n_dmc} walkers"] = caches
    what = max(parts, key=parts.get)
    return BASELINE + max(optimization, production, dmc) + checkpoint + caches, what


def memory_limit(ranks_on_node: int) -> tuple[int, str]:
    """(bytes per rank, how it was set)."""
    text = os.environ.get("VMC_MEMORY_LIMIT", "").strip()
    if text:
        try:
            return parse_bytes(text), f"VMC_MEMORY_LIMIT={text}"
        except ValueError as exc:
            raise ResourceError(f"VMC_MEMORY_LIMIT: {exc}") from None
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        total = 16 * 2**30
    share = total // 2 // max(1, ranks_on_node)
    return share, (f"half of this node's {human(total)} shared by {ranks_on_node} rank"
                   f"{'s' if ranks_on_node != 1 else ''}")


def check_memory(spec: Spec, source: str, n_ranks: int, ranks_on_node: int, n_opt: int) -> None:
    need, what = memory_per_rank(spec, n_ranks, n_opt)
    limit, how = memory_limit(ranks_on_node)
    if need > limit:
        raise ResourceError(
            f"{source}: the run needs about {human(need)} of memory per rank (mostly {what}), more than the "
            f"limit of {human(limit)} ({how}); use fewer walkers or steps, more ranks, or raise the limit "
            "with VMC_MEMORY_LIMIT=<size>")


def check_disk(path: str, need: int) -> None:
    """Refuse when the output's directory has less free space than `need` bytes (plus 1 %)."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        free = shutil.disk_usage(directory).free
    except OSError:
        return
    if need * 1.01 > free:
        raise ResourceError(f"{path}: the output file needs {human(need)}, but only {human(free)} are free in "
                            f"{directory}; free space, choose another directory, or shorten the run "
                            "(production.steps x sampler.walkers)")
