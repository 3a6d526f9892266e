r"""Closed shells of the D-dimensional harmonic oscillator: which particle numbers the determinants accept.

Pure Python (no numba), so that `vmc.input.options` can list the closed shells in its messages without loading
the kernels. Shell s = sum_d n_d holds binom(s + D - 1, D - 1) orbitals per spin.
"""
from __future__ import annotations

import math

__all__ = ["shell_size", "closed_shell_numbers", "allowed_text", "check_dimension"]


def check_dimension(D: int) -> None:
    """ValueError unless D is a positive integer."""
    if int(D) != D or D < 1:
        raise ValueError(f"dimension D must be a positive integer, got {D!r}")


def shell_size(s: int, D: int) -> int:
    """Number of D-dimensional oscillator states with sum_d n_d = s: binom(s + D - 1, D - 1)."""
    return math.comb(s + D - 1, D - 1)


def closed_shell_numbers(D: int, max_particles: int) -> list[int]:
    """Closed-shell particle numbers P <= max_particles: shells 0..S-1 filled for both spins,

        P = 2 sum_{s < S} binom(s + D - 1, D - 1) = 2 binom(S - 1 + D, D),   S = 1, 2, ...

    (2D: 2, 6, 12, 20, 30, 42, 56, 72, ...; 3D: 2, 8, 20, 40, 70, ...). The one place that decides which
    P the determinants accept; every message and document lists its output.
    """
    check_dimension(D)
    out, P, s = [], 0, 0
    while True:
        P += 2 * shell_size(s, D)
        if P > max_particles:
            return out
        out.append(P)
        s += 1


def allowed_text(D: int, P: int) -> str:
    """'allowed P: 2, 6, ..., Q, ...' up to Q, the first closed shell above P (a refusal's message).
    Consecutive closed shells differ by at most a factor 4 (2 -> 8 in 3D), so 8 max(P, 2) reaches Q."""
    numbers = closed_shell_numbers(D, 8 * max(P, 2))
    shown = [q for q in numbers if q <= P] + [q for q in numbers if q > P][:1]
    return f"allowed P: {', '.join(map(str, shown))}, ..."
