r"""Reading and validating input: TOML files, dotted-key overrides and `[sweep]` tables into a `Config`.

One TOML file describes a run. The options and the rules between them are declarative tables in
`vmc.input.options` (built from `vmc.input.schema`); validation, defaults, the
README's input reference (`reference_markdown`, printed by ``python -m vmc.input.config --markdown``) and a
complete input template (``--template``) are all derived from it, so they cannot disagree.

    >>> cfg = from_text("[sampler]\nstep = 2")
    >>> cfg.get("sampler.step"), cfg.get("sampler.kind")
    (2.0, 'metropolis')
    >>> cfg.with_overrides({"wavefunction.hidden": 3}).to_dict()["wavefunction"]["hidden"]
    3

The resolved configuration is a `Config`: immutable, with `Config.to_dict()` giving a nested dict of
plain Python values (JSON-serialisable; stored in the output file) and `Config.get` reading dotted keys.
Every problem with an input — unknown key or section, wrong type, out-of-range value, TOML syntax
error, missing or unreadable file, a rule between options — raises `ConfigError`, whose str() is one
line naming the file, the key, the value and what is allowed, e.g.

    inputs/x.toml: sampler.step = -0.5: must be > 0
    inputs/x.toml: unknown key 'sampler.stepp' (did you mean 'sampler.step'?)

An optional ``[sweep]`` table maps option keys to lists of values (a parameter study);
`Config.sweep_points` expands it into one resolved `Config` per point.

Removed options (`vmc.input.options.REMOVED`: key -> old default, reason) keep older output files readable:
a stored configuration that still has such a key at its old default loads as if it were absent (the
key is dropped silently); any other value, and the key anywhere else (`--set`, `[sweep]`), is an
error that names the key and why it was removed.
"""
from __future__ import annotations

import argparse
import difflib
import itertools
import json
import math
import os
import re
import sys
import tomllib
from typing import Any, Iterable, Mapping

from ..output.paths import not_regular
from .options import OPTIONS, REMOVED, RULES
from .schema import ConfigError, Invalid, Option, Rule
from .schema import fmt as _fmt
from .schema import kind_of as _kind
from .spec import Spec

__all__ = [
    "ConfigError", "Option", "Rule", "OPTIONS", "OPTION_BY_KEY", "SECTIONS", "RULES", "MAX_SWEEP_POINTS",
    "Config", "Spec", "load", "from_text", "from_dict", "defaults", "check_ranks", "reference_markdown",
    "template_toml",
]


OPTION_BY_KEY: dict[str, Option] = {o.key: o for o in OPTIONS}
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(o.section for o in OPTIONS if o.section))
SWEEP = "sweep"
MAX_SWEEP_POINTS = 10_000


# ----------------------------------------------------------------------------------------------
# Formatting and suggestions
# ----------------------------------------------------------------------------------------------


def suggest(key: str) -> str:
    """' (did you mean 'x'?)' for an unknown dotted key, or ''."""
    name = key.rpartition(".")[2]
    same_name = [o.key for o in OPTIONS if o.name == name and o.key != key]
    if not same_name:
        same_name = difflib.get_close_matches(key, list(OPTION_BY_KEY), n=1, cutoff=0.6)
    if not same_name:
        section = key.rpartition(".")[0]
        in_section = [o.key for o in OPTIONS if o.section == section]
        names = difflib.get_close_matches(name, [k.rpartition(".")[2] for k in in_section], n=1, cutoff=0.6)
        same_name = [f"{section}.{n}" if section else n for n in names]
    if not same_name:
        return ""
    return " (did you mean " + " or ".join(f"'{k}'" for k in same_name) + "?)"


def _error(source: str, key: str | None, value: Any, problem: str) -> ConfigError:
    where = f"{key} = {_fmt(value)}: " if key is not None else ""
    return ConfigError(f"{source}: {where}{problem}", source, key)


def _unknown_key(source: str, key: str) -> ConfigError:
    section = key.partition(".")[0]
    if "." not in key and section in SECTIONS:
        return ConfigError(f"{source}: '{key}' is a section, not an option: give a key such as "
                           f"'{next(o.key for o in OPTIONS if o.section == section)}'", source, key)
    if key in REMOVED:
        return ConfigError(f"{source}: '{key}' was removed ({REMOVED[key][1]})", source, key)
    return ConfigError(f"{source}: unknown key '{key}'{suggest(key)}", source, key)


def _removed(source: str, key: str, value: Any) -> None:
    """Accept a removed option (`REMOVED`) at its old default, which is then dropped; refuse other values."""
    default, why = REMOVED[key]
    if isinstance(value, bool) != isinstance(default, bool) or value != default:
        raise _error(source, key, value, f"this option was removed ({why}); only its old default "
                     f"{_fmt(default)} is accepted, in stored configurations")


def _checked(opt: Option, value: Any, source: str, key: str | None = None) -> Any:
    try:
        return opt.validate(value)
    except Invalid as exc:
        raise _error(source, key or opt.key, value, str(exc)) from None


# ----------------------------------------------------------------------------------------------
# Resolution: raw nested mapping -> flat {key: value} + sweep
# ----------------------------------------------------------------------------------------------


def _flat_values(raw: Any, source: str) -> tuple[dict[str, Any], Any]:
    """Defaults updated by the options in `raw` (validated one by one); returns (flat, raw sweep table)."""
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: the configuration must be a table of options (got {_kind(raw)})", source)
    flat = {o.key: o.default for o in OPTIONS}
    sweep = None
    for name, value in raw.items():
        name = str(name)
        if name == SWEEP:
            if not isinstance(value, Mapping):
                raise _error(source, SWEEP, value, "must be a table ([sweep]) of option keys and lists of values")
            sweep = value
        elif name in SECTIONS:
            if not isinstance(value, Mapping):
                raise _error(source, name, value, f"must be a table ([{name}])")
            for sub, v in value.items():
                key = f"{name}.{sub}"
                if key in REMOVED:
                    _removed(source, key, v)
                    continue
                if key not in OPTION_BY_KEY:
                    raise _unknown_key(source, key)
                flat[key] = _checked(OPTION_BY_KEY[key], v, source)
        elif name in OPTION_BY_KEY:
            flat[name] = _checked(OPTION_BY_KEY[name], value, source)
        elif name in REMOVED:
            _removed(source, name, value)
        elif isinstance(value, Mapping):
            close = difflib.get_close_matches(name, list(SECTIONS) + [SWEEP], n=1, cutoff=0.6)
            hint = f" (did you mean '[{close[0]}]'?)" if close else \
                f" (sections: {', '.join(f'[{s}]' for s in SECTIONS)}, [sweep])"
            raise ConfigError(f"{source}: unknown section '[{name}]'{hint}", source, name)
        else:
            raise _unknown_key(source, name)
    return flat, sweep


def _sweep_entries(table: Mapping, prefix: str = ""):
    """(dotted key, values) of a [sweep] table, its sub-tables flattened, in input order."""
    for name, value in table.items():
        if isinstance(value, Mapping):
            yield from _sweep_entries(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _parse_sweep(table: Mapping | None, source: str) -> tuple[tuple[tuple[str, tuple], ...], bool]:
    """[sweep] -> (((key, values), ...) in input order, zip)."""
    if not table:
        return (), False
    zip_ = table.get("zip", False)
    if not isinstance(zip_, bool):
        raise _error(source, "sweep.zip", zip_, f"must be true or false (got {_kind(zip_)})")
    sweep: dict[str, tuple] = {}
    for key, values in _sweep_entries({k: v for k, v in table.items() if k != "zip"}):
        if key in REMOVED:
            raise ConfigError(f"{source}: sweep: '{key}' was removed ({REMOVED[key][1]})", source, key)
        if key not in OPTION_BY_KEY:
            msg = f"{source}: sweep: unknown option '{key}'{suggest(key)}"
            if key.partition(".")[0] in SECTIONS and "." not in key:
                msg = f"{source}: sweep: '{key}' is a section, not an option"
            raise ConfigError(msg, source, key)
        opt = OPTION_BY_KEY[key]
        if not opt.sweepable:
            raise ConfigError(f"{source}: sweep: '{key}' cannot be swept (one output file holds all points "
                              "of a sweep)", source, key)
        if key in sweep:
            raise ConfigError(f"{source}: sweep: '{key}' is given twice", source, key)
        if not isinstance(values, (list, tuple)) or not values:
            raise _error(source, f"sweep.{key}", values, "must be a non-empty list of values, e.g. "
                         f"[{_fmt(opt.default)}, ...]")
        sweep[key] = tuple(_checked(opt, v, source, key=f"sweep.{key}") for v in values)
    if zip_ and len({len(v) for v in sweep.values()}) > 1:
        lengths = ", ".join(f"{k} has {len(v)}" for k, v in sweep.items())
        raise ConfigError(f"{source}: sweep: zip = true needs lists of equal length ({lengths})", source, "sweep.zip")
    return tuple(sweep.items()), zip_


def _check_rules(flat: Mapping[str, Any], source: str) -> None:
    for rule in RULES:
        if not rule.ok(flat):
            given = ", ".join(f"{k} = {_fmt(flat[k])}" for k in rule.keys)
            raise ConfigError(f"{source}: {given}: {rule.message}", source, rule.keys[0])


def _combinations(sweep, zip_) -> list[tuple]:
    values = [v for _, v in sweep]
    return list(zip(*values)) if zip_ else list(itertools.product(*values))


def _point_label(keys, combo) -> str:
    return ",".join(f"{k}={v if isinstance(v, str) else _fmt(v)}" for k, v in zip(keys, combo))


def _check_sweep_points(flat: Mapping[str, Any], sweep, zip_, source: str) -> None:
    if not sweep:
        return
    n = len(sweep[0][1]) if zip_ else math.prod(len(v) for _, v in sweep)
    if n > MAX_SWEEP_POINTS:
        raise ConfigError(f"{source}: sweep: {n} points, at most {MAX_SWEEP_POINTS} are allowed", source, SWEEP)
    keys = [k for k, _ in sweep]
    seen = set()
    for combo in _combinations(sweep, zip_):
        label = _point_label(keys, combo)
        if label in seen:
            raise ConfigError(f"{source}: sweep: point {label} appears twice", source, SWEEP)
        seen.add(label)
        _check_rules({**flat, **dict(zip(keys, combo))}, f"{source}: sweep point {label}")


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------

_MISSING = object()


class Config:
    """A resolved, validated, immutable configuration (build it with `load`, `from_text`, `from_dict`).

    `source`: where it came from (file name, "<string>", ...); `text`: the raw input text ("" if not
    read from text).
    """

    __slots__ = ("_flat", "_sweep", "_zip", "source", "text")

    def __init__(self, *args, **kwargs):
        raise TypeError("build a Config with vmc.input.config.load, from_text or from_dict")

    @classmethod
    def _make(cls, flat: dict, sweep, zip_: bool, source: str, text: str, check_source: str | None = None):
        where = check_source or source
        _check_rules(flat, where)
        _check_sweep_points(flat, sweep, zip_, where)
        self = object.__new__(cls)
        object.__setattr__(self, "_flat", dict(flat))
        object.__setattr__(self, "_sweep", tuple(sweep))
        object.__setattr__(self, "_zip", bool(zip_) and bool(sweep))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "text", text)
        return self

    def __setattr__(self, name, value):
        raise AttributeError("Config is immutable: use with_overrides")

    # ---- reading
    def get(self, key: str, default: Any = _MISSING) -> Any:
        """The value of a dotted option key ("sampler.step", "seed"); a section name gives a dict copy.

        An unknown key raises KeyError unless `default` is given.
        """
        if key in self._flat:
            return self._flat[key]
        if key in SECTIONS:
            return {o.name: self._flat[o.key] for o in OPTIONS if o.section == key}
        if default is not _MISSING:
            return default
        raise KeyError(f"unknown option '{key}'{suggest(key)}")

    __getitem__ = get

    @property
    def sweep(self) -> dict[str, list]:
        """The swept keys and their (validated) values, in input order; {} without a sweep."""
        return {k: list(v) for k, v in self._sweep}

    @property
    def sweep_zip(self) -> bool:
        return self._zip

    def to_dict(self) -> dict:
        """Nested plain dict (JSON-serialisable): top-level options, one dict per section and, only when
        there is a sweep, "sweep": {"zip": ..., "<dotted key>": [values]}. `from_dict` reads it back."""
        out: dict[str, Any] = {}
        for o in OPTIONS:
            if o.section:
                out.setdefault(o.section, {})[o.name] = self._flat[o.key]
            else:
                out[o.key] = self._flat[o.key]
        if self._sweep:
            out[SWEEP] = {"zip": self._zip, **{k: list(v) for k, v in self._sweep}}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def spec(self) -> Spec:
        """The typed, frozen view the drivers read (`vmc.input.spec`); a sweep's points have one each."""
        return Spec.from_dict(self.to_dict())

    # ---- deriving
    def with_overrides(self, overrides: Mapping[str, Any]) -> "Config":
        """A new Config with dotted-key overrides ({"wavefunction.hidden": 3}), validated like the file.

        Overriding a swept key fixes it: the key is dropped from the sweep.
        """
        src = f"{self.source} (override)"
        flat = dict(self._flat)
        sweep = list(self._sweep)
        for key, value in overrides.items():
            if key not in OPTION_BY_KEY:
                raise _unknown_key(src, key)
            flat[key] = _checked(OPTION_BY_KEY[key], value, src)
            sweep = [(k, v) for k, v in sweep if k != key]
        return Config._make(flat, sweep, self._zip, self.source, self.text, check_source=src)

    def sweep_points(self) -> list[tuple[str, "Config"]]:
        """One (label, Config) per point of the sweep, Cartesian grid in input order (last key fastest)
        or element-wise with zip = true; labels like "wavefunction.hidden=2,sampler.dt=0.01".
        Without a sweep: [("", self)]. The point configs have no sweep."""
        if not self._sweep:
            return [("", self)]
        keys = [k for k, _ in self._sweep]
        points = []
        for combo in _combinations(self._sweep, self._zip):
            flat = {**self._flat, **dict(zip(keys, combo))}
            points.append((_point_label(keys, combo), Config._make(flat, (), False, self.source, self.text)))
        return points

    # ---- comparison and display
    def __eq__(self, other) -> bool:
        if not isinstance(other, Config):
            return NotImplemented
        return self._flat == other._flat and self._sweep == other._sweep and self._zip == other._zip

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self):
        return (from_dict, (self.to_dict(), self.source, self.text))

    def __repr__(self) -> str:
        changed = {k: v for k, v in self._flat.items() if v != OPTION_BY_KEY[k].default}
        extra = f", sweep={self.sweep}, zip={self._zip}" if self._sweep else ""
        return f"Config(source={self.source!r}, non-defaults={changed}{extra})"


# ----------------------------------------------------------------------------------------------
# Constructors and helpers
# ----------------------------------------------------------------------------------------------


def from_dict(d: Mapping, source: str = "<dict>", text: str = "") -> Config:
    """Validate a nested mapping (as parsed from TOML, or as returned by `Config.to_dict`; removed options as in
    the module docstring)."""
    flat, sweep_table = _flat_values(d, source)
    sweep, zip_ = _parse_sweep(sweep_table, source)
    return Config._make(flat, sweep, zip_, source, text)


def from_text(text: str, source: str = "<string>") -> Config:
    """Parse and validate TOML text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"line (\d+)", msg)
        lines = text.splitlines()
        if m and 1 <= int(m.group(1)) <= len(lines) and lines[int(m.group(1)) - 1].strip():
            msg += f": {lines[int(m.group(1)) - 1].strip()!r}"
        raise ConfigError(f"{source}: TOML syntax error: {msg}", source) from None
    return from_dict(raw, source, text)


def load(path: str | os.PathLike) -> Config:
    """Read, parse and validate a TOML input file (errors name the path as given)."""
    source = os.fspath(path)
    problem = not_regular(source, "input file")
    if problem and not os.path.isdir(source):
        raise ConfigError(problem, source)
    try:
        with open(source, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ConfigError(f"{source}: no such file", source) from None
    except IsADirectoryError:
        raise ConfigError(f"{source}: is a directory, not an input file", source) from None
    except PermissionError:
        raise ConfigError(f"{source}: cannot read the file (permission denied)", source) from None
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read the file ({exc.strerror or exc})", source) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not a UTF-8 text file (byte {data[exc.start]:#04x} at offset "
                          f"{exc.start})", source) from None
    return from_text(text, source)


def defaults() -> Config:
    """The configuration with every option at its default."""
    return from_dict({}, "<defaults>")


def check_ranks(spec: Spec, n_ranks: int, source: str = "<config>") -> None:
    """Raise ConfigError unless every one of `n_ranks` MPI ranks gets at least one walker
    (sampler.walkers, and dmc.walkers when DMC is on, are total numbers shared by the ranks)."""
    walkers = spec.sampler.walkers
    if n_ranks < 1 or walkers < n_ranks:
        raise _error(source, "sampler.walkers", walkers,
                     f"fewer walkers than the {n_ranks} MPI ranks: every rank needs at least one walker "
                     "(raise sampler.walkers or use fewer ranks)")
    if spec.dmc_on and spec.dmc.walkers < n_ranks:
        raise _error(source, "dmc.walkers", spec.dmc.walkers,
                     f"a DMC population smaller than the {n_ranks} MPI ranks: every rank needs at least one "
                     "walker (raise dmc.walkers or use fewer ranks)")


# ----------------------------------------------------------------------------------------------
# Documentation derived from the table
# ----------------------------------------------------------------------------------------------

def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _md_allowed(opt: Option) -> str:
    if opt.check is not None and opt.check.choices:
        return ", ".join(f"`{_fmt(c)}`" for c in opt.check.choices)
    return _md(opt.allowed())


_REFERENCE_INTRO = (
    "A run is described by one TOML file. Every option is optional and takes its default when "
    "missing. Unknown keys or sections, wrong types and out-of-range values are errors that name the "
    "file, the key and the value (`vmc run` stops with exit code 2 before any work). An integer is "
    "accepted where a number is expected, but a boolean is never accepted as a number and a "
    "number with a decimal point (`2.0`) is not accepted as an integer. Options are named by dotted keys "
    "(`sampler.step` is `step` in `[sampler]`), in error messages, in `vmc run --set KEY=VALUE` and in "
    "`[sweep]`. `python -m vmc.input.config --check FILE...` checks input files; "
    "`python -m vmc.input.config --template` prints a complete input with every default.")
_REFERENCE_SWEEP = (
    "An optional `[sweep]` table turns one input into a parameter study. It maps option keys to "
    "non-empty lists of values, written either with quoted dotted keys (`\"wavefunction.hidden\" = "
    "[1, 2, 3]`) or as sub-tables (`[sweep.wavefunction]` then `hidden = [1, 2, 3]`). Every value "
    "is checked like the option itself, and every point against the rules above. With "
    "`zip = false` (the default) the points are the Cartesian grid over all keys in input order (the "
    "last key varies fastest); with `zip = true` the lists, which must then have equal lengths, are "
    "paired element by element. Each point is labelled like `wavefunction.hidden=2,sampler.dt=0.01`. "
    f"Any option but `output` can be swept (`seed` too); at most {MAX_SWEEP_POINTS} points. "
    "Overriding a swept key (`--set`) fixes it and removes it from the sweep.")


def reference_markdown() -> str:
    """The README's input reference: one table per section, the rules between options, sweeps."""
    out = [_REFERENCE_INTRO, ""]
    for section in ("",) + SECTIONS:
        out += ["### Top level" if not section else f"### `[{section}]`", "",
                "| key | default | allowed | meaning |", "| --- | --- | --- | --- |"]
        out += [f"| `{o.key}` | `{_md(_fmt(o.default))}` | {_md_allowed(o)} | {_md(o.doc)} |"
                for o in OPTIONS if o.section == section] + [""]
    out += ["### Rules between options", ""] + [f"- {_md(rule.doc)}" for rule in RULES]
    out += ["- `sampler.walkers` is the total over all MPI ranks; each rank needs at least one walker; so is "
            "`dmc.walkers` when DMC is on.", ""]
    if REMOVED:
        out += ["### Removed options", "", "Accepted only at their old default, and then ignored, so that the "
                "configurations stored in older output files still load (`--resume`); any other value is an error.", ""]
        out += [f"- `{key}` (old default `{_md(_fmt(default))}`): {_md(why)}."
                for key, (default, why) in REMOVED.items()] + [""]
    out += ["### Changing options on `--resume`", "",
            "`vmc run --resume FILE --set KEY=VALUE` may change only "
            + ", ".join(f"`{o.key}`" for o in OPTIONS if o.on_resume)
            + " (and not below what is already done, nor options of a phase that is over; `dmc.steps` may grow "
            "also in a complete run, which then continues its DMC); every other "
            "option fixes the physics or the shape of the stored state and is refused (exit code 2, the "
            "file unchanged). The changes are recorded in the file's `resumed` attribute.", ""]
    out += ["### Parameter sweeps: `[sweep]`", "", _REFERENCE_SWEEP, "",
            "```toml", "[sweep]", "\"wavefunction.hidden\" = [2, 4]",
            "\"sampler.dt\" = [0.1, 0.5]   # 2 x 2 = 4 points", "```"]
    return "\n".join(out) + "\n"


def template_toml() -> str:
    """A complete input file with every option at its default and its meaning as a comment."""
    out = ["# vmc input with every option at its default (python -m vmc.input.config --template)."]
    for section in ("",) + SECTIONS:
        if section:
            out.append("")
            out.append(f"[{section}]")
        for o in OPTIONS:
            if o.section == section:
                out.append(f"# {o.doc} Allowed: {o.allowed()}.")
                out.append(f"{o.name} = {_fmt(o.default)}")
    return "\n".join(out) + "\n"


def main(argv: Iterable[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m vmc.input.config", description="vmc input options.")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--markdown", action="store_true", help="print the input reference (README section)")
    g.add_argument("--template", action="store_true", help="print an input file with every default")
    g.add_argument("--check", nargs="+", metavar="FILE", help="validate input files")
    args = p.parse_args(argv)
    if args.markdown:
        sys.stdout.write(reference_markdown())
    elif args.template:
        sys.stdout.write(template_toml())
    else:
        status = 0
        for path in args.check:
            try:
                cfg = load(path)
                n = len(cfg.sweep_points())
                print(f"{path}: ok" + (f" ({n} sweep points)" if cfg.sweep else ""))
            except ConfigError as exc:
                print(exc, file=sys.stderr)
                status = 2
        return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
