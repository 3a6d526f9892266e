r"""Optimizers on the flat vector of variational parameters theta.

Each optimizer maps the energy gradient G = 2 ( <E_L O> - <E_L><O> ), O = d ln psi / d theta, to an
update delta theta; the learning rate follows a schedule eta_t:

* sgd:       delta = -eta_t G
* momentum:  v <- mu v + eta_t G,  delta = -v
* adam:      m <- b1 m + (1 - b1) G,  v <- b2 v + (1 - b2) G^2,
             delta = -eta_t m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t)
* sr:        stochastic reconfiguration (natural gradient): solve (S + eps I) delta = -eta_t G,
             S = <O O^T> - <O><O^T>, with diagonal shift eps (`sr_shift`).

Schedules: constant eta_t = eta; inverse eta_t = eta / (1 + decay t).
An optional `max_step` clips the norm of delta. The optimizer state is a dict of arrays, so it can be
stored in the output file and restored on resume.
"""
from __future__ import annotations

import numpy as np

KINDS = ("sgd", "momentum", "adam", "sr")


def learning_rate(eta: float, schedule: str, decay: float, t: int) -> float:
    """eta_t for iteration t = 0, 1, ...

    >>> learning_rate(0.1, "inverse", 1.0, 1)
    0.05
    """
    if schedule == "constant":
        return eta
    if schedule == "inverse":
        return eta / (1.0 + decay * t)
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


class Optimizer:
    """Generic first-order optimizer on a flat parameter vector (see module doc for the rules)."""

    def __init__(self, kind: str, n_params: int, learning_rate: float = 0.01, schedule: str = "constant",
                 decay: float = 0.0, momentum: float = 0.9, beta1: float = 0.9, beta2: float = 0.999,
                 epsilon: float = 1e-8, sr_shift: float = 1e-3, max_step: float = 0.0):
        if kind not in KINDS:
            raise ValueError(f"optimizer kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        self.eta, self.schedule, self.decay = learning_rate, schedule, decay
        self.mu, self.beta1, self.beta2, self.epsilon = momentum, beta1, beta2, epsilon
        self.sr_shift, self.max_step = sr_shift, max_step
        self.needs_s_matrix = kind == "sr"
        self.state = {"t": np.zeros(1), "m": np.zeros(n_params), "v": np.zeros(n_params)}

    def learning_rate(self) -> float:
        """The learning rate the next step will use."""
        return learning_rate(self.eta, self.schedule, self.decay, int(self.state["t"][0]))

    def step(self, gradient: np.ndarray, s_matrix: np.ndarray | None = None) -> np.ndarray:
        """The parameter update for this gradient (and S matrix for SR); advances the state."""
        eta = self.learning_rate()
        t = int(self.state["t"][0]) + 1
        m, v = self.state["m"], self.state["v"]
        if self.kind == "sgd":
            delta = -eta * gradient
        elif self.kind == "momentum":
            m[:] = self.mu * m + eta * gradient
            delta = -m.copy()
        elif self.kind == "adam":
            m[:] = self.beta1 * m + (1 - self.beta1) * gradient
            v[:] = self.beta2 * v + (1 - self.beta2) * gradient**2
            m_hat = m / (1 - self.beta1**t)
            v_hat = v / (1 - self.beta2**t)
            delta = -eta * m_hat / (np.sqrt(v_hat) + self.epsilon)
        else:
            if s_matrix is None:
                raise ValueError("stochastic reconfiguration needs the S matrix")
            shifted = s_matrix + self.sr_shift * np.eye(len(gradient))
            delta = -eta * np.linalg.solve(shifted, gradient)
        if self.max_step > 0:
            norm = np.linalg.norm(delta)
            if norm > self.max_step:
                delta *= self.max_step / norm
        self.state["t"][0] = t
        return delta
