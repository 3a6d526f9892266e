"""Analysis: blocking, the analysis of run files, and reports of studies."""
