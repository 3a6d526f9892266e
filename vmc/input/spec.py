r"""Typed, frozen run specifications: one dataclass per input section, generated from the option table.

A `Spec` is what the drivers and the analysis read: `spec.sampler.burn_in`, `spec.dmc.time_step`, `spec.seed`,
each field typed and defaulted as its `vmc.input.options.Option`, so there is no string key to mistype and no
nested dict to thread. `Config.spec()` gives the spec of a validated input; `Spec.from_dict` reads the
configuration stored in an output file (an option newer than the file takes its default; a removed one is
dropped), and `Spec.to_dict()` is what a file stores.

    >>> spec = Spec.from_dict({"system": {"particles": 6}, "dmc": {"time_step": 0.005}})
    >>> spec.system.particles, spec.system.omega, spec.dmc.time_step, spec.sigma
    (6, 1.0, 0.005, 0.7071067811865476)
    >>> spec.with_section("wavefunction", backflow="rbm").wavefunction.backflow
    'rbm'
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping

from .options import OPTIONS


def _section_class(section: str) -> type:
    fields = [(o.name, o.type, dataclasses.field(default=o.default)) for o in OPTIONS if o.section == section]
    name = "".join(part.title() for part in section.split("_")) + "Spec"
    kind = dataclasses.make_dataclass(name, fields, frozen=True)
    kind.__module__ = __name__      # picklable (a plan crosses MPI ranks): the class is this module's `name`
    globals()[name] = kind
    return kind


SECTION_SPECS: dict[str, type] = {s: _section_class(s) for s in dict.fromkeys(o.section for o in OPTIONS if o.section)}
SHAPE_KEYS: tuple[str, ...] = tuple(o.key for o in OPTIONS if o.shape)   # the options that fix the trial state
_TOP = [o for o in OPTIONS if not o.section]


@dataclasses.dataclass(frozen=True)
class _SpecBase:
    def value(self, key: str) -> Any:
        """The value of a dotted option key ("system.omega", "seed")."""
        section, _, name = key.rpartition(".")
        return getattr(getattr(self, section), name) if section else getattr(self, name)

    def with_section(self, name: str, **changes) -> "Spec":
        """A copy with the named fields of one section changed (no validation: a derived spec, not an input)."""
        return dataclasses.replace(self, **{name: dataclasses.replace(getattr(self, name), **changes)})

    def to_dict(self) -> dict:
        """The nested plain dict an output file stores (the form `from_dict` reads)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Spec":
        """The spec of a nested configuration dict (`Config.to_dict`, or a file's stored "config"): options it lacks
        take their defaults, keys the table no longer has (removed options, "sweep") are ignored. Not a validation:
        a stored configuration was validated when it ran."""
        sections = {name: kind(**{f.name: d[name][f.name] for f in dataclasses.fields(kind)
                                  if f.name in d.get(name, {})})
                    for name, kind in SECTION_SPECS.items()}
        return cls(**{o.key: d[o.key] for o in _TOP if o.key in d}, **sections)

    # ---- values derived from several options
    @property
    def sigma(self) -> float:
        """The RBM width actually used: wavefunction.sigma, or if that is 0 the default sqrt(g / omega)
        (sqrt(1/(2 omega)) for g = 1/2, sqrt(1/omega) for g = 1)."""
        w = self.wavefunction
        return float(w.sigma) if w.sigma > 0 else math.sqrt(w.g / self.system.omega)

    @property
    def density_rmax(self) -> float:
        """Outer radius of the density histogram: production.density_rmax, or if 0, 5 / sqrt(omega)."""
        r = self.production.density_rmax
        return float(r) if r > 0 else 5.0 / math.sqrt(self.system.omega)

    @property
    def dmc_on(self) -> bool:
        return self.dmc.steps > 0


Spec = dataclasses.make_dataclass(
    "Spec", [(o.key, o.type, dataclasses.field(default=o.default)) for o in _TOP]
    + [(name, kind, dataclasses.field(default_factory=kind)) for name, kind in SECTION_SPECS.items()],
    bases=(_SpecBase,), frozen=True)
Spec.__module__ = __name__
Spec.__doc__ = "A whole run's options: the top-level ones as fields, and one frozen section spec per section."
