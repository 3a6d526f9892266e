"""Every docstring example of the package holds (pyblock style: small pure functions with a doctest-sized
example); a stale example is a defect like a failing test."""
import doctest
import importlib
import pkgutil

import pytest

import vmc

MODULES = [m.name for m in pkgutil.walk_packages(vmc.__path__, "vmc.") if not m.name.endswith("__main__")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples fail"


def test_every_module_is_checked():
    assert {"vmc.driver", "vmc.dmc", "vmc.blocking", "vmc.paths", "vmc.factors.slater"} <= set(MODULES)
