"""vmc: Variational Monte Carlo for electrons in harmonic traps with RBM trial states."""

__version__ = "0.1.0"
