"""HDF5 output of a run (written by rank 0 only); the layout is documented in the README.

Everything needed to analyse or resume a run lives in one file, and the file is flushed after every
optimization iteration and every production chunk, so a killed job leaves a readable file holding all
completed work. Functions take an `h5py.Group`, so a parameter study can hold one run per group.
"""
from __future__ import annotations

import json
import math

import h5py
import numpy as np

from .hamiltonian import OBSERVABLE_NAMES

FORMAT = "vmc-run"
STUDY_FORMAT = "vmc-study"   # a parameter study: one run group per point under /points
FORMAT_VERSION = 1
ITERATION_FIELDS = ("energy", "error", "variance", "acceptance", "grad_norm", "learning_rate",
                    "kinetic", "trap", "interaction", "pair_distance", "wall_time")
SERIES = ("local_energy",) + OBSERVABLE_NAMES
PRODUCTION_CHUNK = 1000   # production sweeps per write (and per checkpoint); also the HDF5 chunk width


class OutputError(RuntimeError):
    pass


def create_run(group: h5py.Group, attrs: dict, n_params: int, n_walkers: int,
               production_steps: int, density_bins: int) -> None:
    """Lay out every dataset of a run; per-iteration datasets grow as the run goes."""
    group.attrs["format"] = FORMAT
    group.attrs["format_version"] = FORMAT_VERSION
    for key, value in attrs.items():
        group.attrs[key] = value
    group.attrs["status"] = "running"
    opt = group.create_group("optimization")
    for name in ITERATION_FIELDS:
        opt.create_dataset(name, shape=(0,), maxshape=(None,), dtype="f8", chunks=(256,))
    opt.create_dataset("params", shape=(0, n_params), maxshape=(None, n_params), dtype="f8",
                       chunks=(max(1, min(256, 65536 // n_params)), n_params))
    prod = group.create_group("production")
    # HDF5 chunks as wide as one production write: no read-modify-write of compressed chunks
    width = min(production_steps, PRODUCTION_CHUNK)
    chunk = (min(n_walkers, max(1, 65536 // width)), width)
    for name in SERIES:
        prod.create_dataset(name, shape=(n_walkers, production_steps), dtype="f8", chunks=chunk,
                            compression="gzip", compression_opts=1, shuffle=True, fillvalue=np.nan)
    prod.attrs["steps_done"] = 0
    dens = prod.create_group("density")
    dens.create_dataset("counts", shape=(density_bins,), dtype="f8")
    ck = group.create_group("checkpoint")
    ck.attrs["iteration"] = 0
    ck.attrs["phase"] = "start"


def append_iteration(group: h5py.Group, row: dict, params: np.ndarray) -> None:
    opt = group["optimization"]
    n = opt["energy"].shape[0]
    for name in ITERATION_FIELDS:
        ds = opt[name]
        ds.resize((n + 1,))
        ds[n] = row[name]
    opt["params"].resize((n + 1, params.size))
    opt["params"][n] = params


def truncate_iterations(group: h5py.Group, n: int) -> None:
    """Drop iterations beyond n (written after the last checkpoint of a killed run)."""
    opt = group["optimization"]
    for name in ITERATION_FIELDS:
        opt[name].resize((n,))
    opt["params"].resize((n, opt["params"].shape[1]))


def write_wavefunction(group: h5py.Group, wf) -> None:
    if "wavefunction" in group:
        del group["wavefunction"]
    g = group.create_group("wavefunction")
    g["params"], g["a"], g["b"], g["W"] = wf.params, wf.a, wf.b, wf.W
    g.attrs.update(sigma=wf.sigma, g=wf.g, particles=wf.particles, dimensions=wf.dimensions,
                   hidden=wf.hidden, optimize_sigma=wf.optimize_sigma, jastrow=wf.jastrow, slater=wf.slater,
                   beta=wf.beta)


def write_checkpoint(group: h5py.Group, arrays: dict, attrs: dict) -> None:
    """Store what a resume needs, without ever damaging the previous checkpoint.

    Two slots alternate: the new state goes into the slot not in use, the file is flushed, and only
    then does `checkpoint.attrs["current"]` point at it (flushed again). A job killed at any moment
    leaves one complete slot. `arrays` holds `positions`, `rng_states` (list of dicts), `params` and
    `optimizer_<name>` arrays; `attrs` small scalars (iteration, phase, ...), stored as one JSON attribute
    `state` of the slot.
    """
    ck = group["checkpoint"]
    target = 1 - int(ck.attrs.get("current", 1))
    slot = ck.require_group(f"slot{target}")
    for key, value in arrays.items():
        if key == "rng_states":
            value = np.array([json.dumps(st) for st in value], dtype=object)
            dtype = h5py.string_dtype()
        else:
            value = np.asarray(value)
            dtype = value.dtype
        if key in slot and slot[key].shape == value.shape:
            slot[key][...] = value
        else:
            if key in slot:
                del slot[key]
            slot.create_dataset(key, data=value, dtype=dtype)
    slot.attrs["state"] = json.dumps({k: v.item() if isinstance(v, np.generic) else v for k, v in attrs.items()})
    group.file.flush()
    ck.attrs["current"] = target
    for key in ("iteration", "phase"):   # mirrored for readers such as `vmc info`
        ck.attrs[key] = attrs[key]
    group.file.flush()


def rollback_checkpoint(group: h5py.Group) -> int | None:
    """Make the previous slot current (when it is the iteration just before); returns its iteration."""
    ck = group["checkpoint"]
    if "current" not in ck.attrs:
        return None
    current = int(ck.attrs["current"])
    other = f"slot{1 - current}"
    if other not in ck:
        return None
    state, previous = (json.loads(ck[f"slot{i}"].attrs["state"]) for i in (current, 1 - current))
    if previous["iteration"] != state["iteration"] - 1:
        return None
    ck.attrs["current"] = 1 - current
    for key in ("iteration", "phase"):
        ck.attrs[key] = previous[key]
    group.file.flush()
    return int(ck.attrs["iteration"])


def read_checkpoint(group: h5py.Group) -> dict | None:
    """The last complete checkpoint as a dict (arrays, rng_states, attributes), or None."""
    ck = group["checkpoint"]
    if "current" not in ck.attrs:
        return None
    slot = ck[f"slot{int(ck.attrs['current'])}"]
    out = json.loads(slot.attrs["state"])
    for key, ds in slot.items():
        if isinstance(ds, h5py.Group):
            out[key] = {k: v[...] for k, v in ds.items()}
        elif key == "rng_states":
            out[key] = [json.loads(st) for st in ds.asstr()[...]]
        else:
            out[key] = ds[...]
    return out


def write_production_chunk(group: h5py.Group, start: int, observables: np.ndarray) -> None:
    """Store observables (n_walkers, n_steps, 4) at production steps [start, start + n_steps)."""
    prod = group["production"]
    stop = start + observables.shape[1]
    columns = np.ascontiguousarray(np.moveaxis(observables, -1, 0))   # (4, walkers, steps)
    prod["local_energy"][:, start:stop] = columns[:3].sum(axis=0)
    for i, name in enumerate(OBSERVABLE_NAMES):
        prod[name][:, start:stop] = columns[i]
    prod.attrs["steps_done"] = stop


def write_density(group: h5py.Group, counts: np.ndarray, r_max: float, particles: int, dimensions: int) -> None:
    """Radial one-body density rho(r), normalised so that integral rho(r) d^D r = P.

    rho(r_i) = P * counts_i / (sum(counts) * shell volume of bin i);
    shell volume = V_D (r_hi^D - r_lo^D), V_D = pi^(D/2) / Gamma(D/2 + 1).
    """
    dens = group["production/density"]
    dens["counts"][...] = counts
    edges = np.linspace(0.0, r_max, counts.size + 1)
    unit = math.pi ** (dimensions / 2) / math.gamma(dimensions / 2 + 1)
    shell = unit * (edges[1:] ** dimensions - edges[:-1] ** dimensions)
    total = counts.sum()
    density = particles * counts / (total * shell) if total > 0 else np.zeros_like(counts)
    for name, value in (("r_edges", edges), ("r", 0.5 * (edges[1:] + edges[:-1])), ("density", density)):
        if name in dens:
            del dens[name]
        dens[name] = value
    dens.attrs["normalisation"] = "integral of density over d^D r equals the number of particles"


def open_for_reading(path: str) -> h5py.File:
    try:
        f = h5py.File(path, "r", locking=False)   # readable while a run is writing it (it flushes often)
    except FileNotFoundError:
        raise OutputError(f"{path}: no such file") from None
    except OSError as exc:
        raise OutputError(f"{path}: not a readable HDF5 file ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0]})") from None
    return f


def describe(path: str) -> str:
    """A few lines on what an output file holds (for `vmc info`)."""
    with open_for_reading(path) as f:
        if f.attrs.get("format") == STUDY_FORMAT:
            pts = f.get("points", {})
            lines = [f"{path}: vmc {f.attrs.get('vmc_version', '?')} parameter study, status {f.attrs.get('status')}, "
                     f"{len(pts)} of {f.attrs.get('n_points')} points started, {f.attrs.get('n_ranks')} ranks"]
            for k in sorted(pts):
                g = pts[k]
                e = g["optimization/energy"]
                lines.append(f"  {k} {g.attrs.get('label')}: {g.attrs.get('status')}, {e.shape[0]} iterations, "
                             f"production {g['production'].attrs['steps_done']} steps")
            return "\n".join(lines)
        if f.attrs.get("format") != FORMAT:
            raise OutputError(f"{path}: not a vmc run file (no format attribute '{FORMAT}')")
        cfg = json.loads(f.attrs["config"])
        s, w, o = cfg["system"], cfg["wavefunction"], cfg["optimizer"]
        opt = f["optimization"]
        n_it = opt["energy"].shape[0]
        prod = f["production"]
        lines = [
            f"{path}: vmc {f.attrs.get('vmc_version', '?')} run, status {f.attrs.get('status', '?')}"
            + (f" ({f.attrs['message']})" if f.attrs.get("message") else ""),
            f"  system: {s['particles']} particles, {s['dimensions']}D, omega = {s['omega']}, "
            f"interaction {'on' if s['interaction'] else 'off'}",
            f"  trial state: RBM ({w['hidden']} hidden units, g = {w['g']})"
            + (" x Padé-Jastrow" if w.get("jastrow", "none") != "none" else "")
            + (" x Slater determinants" if w.get("slater") else "") + f"; sampler {cfg['sampler']['kind']}, "
            f"{cfg['sampler']['walkers']} walkers on {f.attrs.get('n_ranks', '?')} ranks, seed {f.attrs.get('seed')}",
            f"  optimization: {n_it} of {o['iterations']} iterations ({o['kind']})"
            + (f", last E = {opt['energy'][-1]:.6f} +- {opt['error'][-1]:.6f}" if n_it else ""),
            f"  production: {prod.attrs['steps_done']} of {prod['local_energy'].shape[1]} steps x "
            f"{prod['local_energy'].shape[0]} chains",
            f"  started {f.attrs.get('started', '?')}, finished {f.attrs.get('finished', '-')}, "
            f"host {f.attrs.get('host', '?')}",
        ]
    return "\n".join(lines)
