"""Building blocks of the input schema: an `Option` (key, default, type, meaning, allowed values), the
constraints on one value (`ge`, `between`, `interval`, `one_of`, ...) and `Rule`s between options.

The tables themselves live in `vmc.input.options`; `vmc.input.config` reads and validates input files with them.

    >>> between(1, 64).text, interval(0, 10).text
    ('between 1 and 64', 'in (0, 10]')
"""
from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping


class ConfigError(Exception):
    """A problem with the input; str() is one line for the user (the CLI prints it and exits with 2).

    `source` is the file (or other origin) of the input, `key` the dotted option key when there is one.
    """

    def __init__(self, message: str, source: str = "", key: str | None = None):
        super().__init__(" ".join(str(message).split("\n")))
        self.source = source
        self.key = key


def fmt(value: Any) -> str:
    """A value as it would be written in TOML (one line)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return re.sub(r"e([+-])0*(\d)", r"e\1\2", repr(value)).replace("e+", "e")
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{k} = {fmt(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return str(value)


# ----------------------------------------------------------------------------------------------
# Constraints on single values
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """A constraint on one value: `test(value)` and the text after "must be " when it fails."""

    test: Callable[[Any], bool]
    text: str
    choices: tuple = ()     # for `one_of`: the allowed values (the README lists them instead of a type)


def _num(x: float) -> str:
    """1e6 as '1e6', 0.001 as '0.001', integers in full."""
    return str(x) if isinstance(x, int) else re.sub(r"e\+?(-?)0*(\d)", r"e\1\2", f"{x:g}")


def ge(lo: float) -> Check:
    return Check(lambda v: v >= lo, f">= {_num(lo)}")


def between(lo: float, hi: float) -> Check:
    """Closed interval [lo, hi]."""
    return Check(lambda v: lo <= v <= hi, f"between {_num(lo)} and {_num(hi)}")


def half_open(lo: float, hi: float) -> Check:
    """Interval [lo, hi)."""
    return Check(lambda v: lo <= v < hi, f"in [{_num(lo)}, {_num(hi)})")


def interval(lo: float, hi: float) -> Check:
    """Interval (lo, hi]."""
    return Check(lambda v: lo < v <= hi, f"in ({_num(lo)}, {_num(hi)}]")


def one_of(*values) -> Check:
    text = " or ".join(fmt(v) for v in values) if len(values) <= 2 else \
        "one of " + ", ".join(fmt(v) for v in values)
    return Check(lambda v: v in values, text, tuple(values))


_TYPE_NAMES = {int: "integer", float: "number", bool: "true or false", str: "string"}


@dataclass(frozen=True)
class Option:
    """One input option: dotted `key` ("section.name", or "name" at top level), its default, type,
    meaning (`doc`, one sentence or a few; markdown-safe plain text) and optional constraint."""

    key: str
    default: Any
    type: type
    doc: str
    check: Check | None = None
    sweepable: bool = True
    on_resume: bool = False   # may change on --resume (run length, step sizes of the optimizer); else refused
    shape: bool = False       # fixes the trial state's parameters (a stored state must match it to be read)

    @property
    def section(self) -> str:
        return self.key.rpartition(".")[0]

    @property
    def name(self) -> str:
        return self.key.rpartition(".")[2]

    def allowed(self) -> str:
        """What is allowed, in words: "integer >= 0", "number in [0, 1)", 'one of "a", "b", "c"'."""
        if self.check is None:
            return _TYPE_NAMES[self.type]
        if self.check.choices:
            return self.check.text
        return f"{_TYPE_NAMES[self.type]} {self.check.text}"

    def _must(self) -> str:
        if self.check is not None and self.check.choices:
            return f"must be {self.allowed()}"
        return f"must be {'an' if self.type is int else 'a'} {self.allowed()}"

    def validate(self, value: Any) -> Any:
        """The value converted to the option's type (int -> float); raises `Invalid` with the reason.
        A numpy scalar counts as the Python value it holds (numpy.int64(3) as 3, numpy.bool_ as bool)."""
        if type(value).__module__ == "numpy" and hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
            value = value.item()
        t = self.type
        if t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise Invalid(f"{self._must()} (got {kind_of(value)})")
            value = float(value)
            if not math.isfinite(value):
                raise Invalid("must be a finite number")
        elif t is int:
            if isinstance(value, bool) or not isinstance(value, int):
                hint = f"; write {int(value)}" if isinstance(value, float) and value.is_integer() else ""
                raise Invalid(f"{self._must()} (got {kind_of(value)}{hint})")
        elif t is bool:
            if not isinstance(value, bool):
                raise Invalid(f"must be true or false (got {kind_of(value)})")
        elif t is str:
            if not isinstance(value, str):
                raise Invalid(f"{self._must()} (got {kind_of(value)})")
        if self.check is not None and not self.check.test(value):
            reason = f"must be {self.check.text}"
            if self.check.choices and isinstance(value, str):
                close = difflib.get_close_matches(value, [c for c in self.check.choices if isinstance(c, str)], 1)
                if close:
                    reason += f" (did you mean {fmt(close[0])}?)"
            raise Invalid(reason)
        return value


class Invalid(Exception):
    """Why a value is not allowed (`Option.validate`; `vmc.input.config` adds the file, key and value)."""


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a table"
    return f"a {type(value).__name__}"


@dataclass(frozen=True)
class Rule:
    """A rule between options: `ok(values)` on the flat {key: value} dict; `message` says what is needed
    (one line, after the values of `keys`), `doc` the README's sentence."""

    keys: tuple[str, ...]
    ok: Callable[[Mapping[str, Any]], bool]
    message: str
    doc: str = field(default="")
