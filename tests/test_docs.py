"""Every docstring example of the package holds (pyblock style: small pure functions with a doctest-sized
example); a stale example is a defect like a failing test."""
import doctest
import importlib
import pkgutil

import pytest

import vmc
from conftest import docs_script

MODULES = [m.name for m in pkgutil.walk_packages(vmc.__path__, "vmc.") if not m.name.endswith("__main__")]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_hold(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} docstring examples fail"


def test_every_module_is_checked():
    assert {"vmc.drivers.driver", "vmc.mc.dmc", "vmc.analysis.blocking", "vmc.output.paths",
            "vmc.model.factors.slater"} <= set(MODULES)


def _imports(path):
    """(line, absolute vmc module imported, names) of every import of a module of the package, lazy ones too."""
    import ast
    rel = path.relative_to(ROOT).with_suffix("").parts
    package = rel[:-1]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            base = list(package[:len(package) - node.level + 1])
            if node.module:
                yield node.lineno, ".".join(base + node.module.split(".")), [a.name for a in node.names]
            else:
                for a in node.names:
                    yield node.lineno, ".".join(base + [a.name]), []
        elif isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0):
            for name in ([node.module] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]):
                if name == "vmc" or name.startswith("vmc."):
                    yield node.lineno, name, []


ROOT = __import__("pathlib").Path(vmc.__file__).resolve().parent.parent
_README = docs_script("readme")


def _layer(module: str) -> int:
    """0 for the shared modules, then the layers from the model (1) up; the entry points above all."""
    LAYERS, SHARED = _README.LAYERS, _README.SHARED
    parts = module.split(".")
    if len(parts) > 2 and parts[1] in LAYERS:
        return len(LAYERS) - LAYERS.index(parts[1])
    if len(parts) == 2 and parts[1] in SHARED:
        return 0
    if len(parts) == 2 and parts[1] in LAYERS:       # a layer's package itself
        return len(LAYERS) - LAYERS.index(parts[1])
    return len(LAYERS) + 1                            # vmc, api, cli, __main__


def test_imports_point_down_the_layers_and_no_private_name_crosses_a_module():
    """The folders name the layers (`docs/readme.py`'s LAYERS): a module imports from its own layer, the ones below
    and the shared modules only, and no name beginning with one underscore from another module."""
    wrong, private = [], []
    for path in sorted((ROOT / "vmc").rglob("*.py")):
        here = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for line, target, names in _imports(path):
            if _layer(target) > _layer(here):
                wrong.append(f"{here}:{line} imports {target}")
            private += [f"{here}:{line} imports {target}.{n}" for n in names
                        if n.startswith("_") and not n.startswith("__")]
    assert wrong == [], "imports up the layers:\n" + "\n".join(wrong)
    assert private == [], "private names across modules:\n" + "\n".join(private)
    assert _layer("vmc.model.factors.rbm") < _layer("vmc.mc.dmc") < _layer("vmc.drivers.job") < _layer("vmc.cli")


def test_no_module_shadows_a_name_of_the_api():
    """`vmc.run` and the others are functions of `vmc.api` (lazy attributes of the package); a submodule of the same
    name would replace them once anything imports it."""
    for name in MODULES:
        importlib.import_module(name)
    from vmc import api
    for name in ("run", "load", "analyze", "Run"):
        assert getattr(vmc, name) is getattr(api, name), f"vmc.{name} is shadowed by a module"
