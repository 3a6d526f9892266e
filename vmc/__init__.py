"""vmc: Variational Monte Carlo for electrons in harmonic traps with RBM trial states.

The Python API (`vmc.api`): `vmc.run(input, ...)`, `vmc.load(path)`, `vmc.analyze(series_or_path)`, the
result class `vmc.Run`, and the exceptions `vmc.InputError`, `vmc.RunError`, `vmc.NumericalError`,
`vmc.Interrupted`. Importing vmc is cheap: numba, h5py and MPI load when first needed.
"""
from .errors import InputError, Interrupted, NumericalError, RunError
from .version import __version__

__all__ = ["run", "load", "analyze", "Run", "InputError", "RunError", "NumericalError", "Interrupted", "__version__"]


def __getattr__(name):
    if name in ("run", "load", "analyze", "Run"):
        from . import api
        return getattr(api, name)
    raise AttributeError(f"module 'vmc' has no attribute {name!r}")
