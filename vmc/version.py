"""The package version: one place, read by `vmc --version`, the output files and the build (pyproject.toml)."""
__version__ = "0.2.0"
