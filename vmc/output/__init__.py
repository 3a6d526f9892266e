"""Output: the HDF5 run file (layout, crash-safe writer, readers, verification, locks) and paths."""
