import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numba
import pytest

from vmc.model.wavefunction import add_grad_current_all, add_grad_proposed_all, initialize, propose_all

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"


def run_cli(*args, ranks=None, cwd=None, timeout=600, env=None):
    """Run `python -m vmc ...` (under mpiexec -n ranks when given); returns CompletedProcess."""
    cmd = [sys.executable, "-m", "vmc", *map(str, args)]
    if ranks is not None:
        cmd = [str(MPIEXEC), "-n", str(ranks), *cmd]
    full_env = dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE", **(env or {}))
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout, env=full_env)


def small_input(seed: int, iterations: int, production: int) -> str:
    """A seconds-long input: two electrons in 2D, importance sampling, 4 walkers, Adam."""
    return f"""
seed = {seed}
[system]
particles = 2
dimensions = 2
[sampler]
kind = "importance"
dt = 0.5
walkers = 4
burn_in = 50
steps = 200
[optimizer]
kind = "adam"
iterations = {iterations}
[production]
steps = {production}
"""


def vmc_main(capsys, *args):
    """`vmc ARGS` in this process (no MPI launcher): (exit code, stdout, stderr). Faster than `run_cli`
    where a test only needs the command's answer."""
    from vmc import cli
    capsys.readouterr()
    code = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def wait_unlocked(path, timeout=20.0):
    """Wait until no process holds the run lock on `path` (the ranks of a killed mpiexec die a moment
    after the launcher)."""
    import fcntl
    import time
    deadline = time.time() + timeout
    fd = os.open(path, os.O_RDONLY)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.time() > deadline:
                    raise AssertionError(f"{path} is still locked {timeout} s after the kill")
                time.sleep(0.05)
    finally:
        os.close(fd)


@pytest.fixture
def write_input(tmp_path):
    """Write a TOML input file into tmp_path and return its path."""
    def write(text, name="case.toml"):
        path = tmp_path / name
        path.write_text(text)
        return path
    return write


_names = itertools.count()


def run_in_memory(spec):
    """`vmc.drivers.driver.run` of a `vmc.input.spec.Spec` into an in-memory HDF5 file on one rank; returns
    (summary, file)."""
    from vmc.output import io
    from vmc.parallel import Comm
    from vmc.drivers import driver
    from vmc.model.wavefunction import TrialState
    f = h5py.File(f"in-memory-{next(_names)}.h5", "w", driver="core", backing_store=False)
    io.create_run(f, {"config": json.dumps(spec.to_dict())}, driver.run_shape(spec), spec.sampler.kind,
                  TrialState.from_spec(spec).attrs())
    return driver.run(spec, io.RunWriter(f), Comm(None), progress=False), f


def assert_derivatives_match_finite_differences(wf, x, h=1e-5):
    """The gradient and Laplacian of ln|psi| in x, and d ln psi / d theta for every variational parameter,
    against central differences of ln|psi| (step h); returns the analytic parameter derivatives."""
    import numpy as np
    grad, lap = wf.grad_lap_log_psi(x)
    eye = np.eye(x.size)
    fd_grad = np.array([(wf.log_psi(x + h * e) - wf.log_psi(x - h * e)) / (2 * h) for e in eye])
    fd_lap = np.array([(wf.grad_lap_log_psi(x + h * e)[0][k] - wf.grad_lap_log_psi(x - h * e)[0][k]) / (2 * h)
                       for k, e in enumerate(eye)])
    np.testing.assert_allclose(grad, fd_grad, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(lap, fd_lap, rtol=1e-6, atol=1e-6)
    assert np.abs(grad).max() > 1e-2          # the check has something to check
    analytic = wf.log_psi_grad_params(x)
    assert analytic.shape == (wf.n_opt,)
    fd = np.empty(wf.n_opt)
    for k in range(wf.n_opt):
        value = wf.params[k]
        wf.params[k] = value + h
        plus = wf.log_psi(x)
        wf.params[k] = value - h
        minus = wf.log_psi(x)
        wf.params[k] = value
        fd[k] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(analytic, fd, rtol=1e-6, atol=1e-8)
    return analytic



@numba.njit(cache=True)
def propose_with_drifts(factors, x, i, xp, dx, before, after):
    """Walker 0's caches for x, the drift of particle i there (`before`), the proposal of moving it to xp, and
    the drift at xp (`after`): (ln|psi'/psi|, sign) through the contract's kernels."""
    initialize(factors, 0, x)
    add_grad_current_all(factors, 0, x, i, before)
    log_ratio, sign = propose_all(factors, 0, x, i, xp, dx)
    add_grad_proposed_all(factors, 0, x, i, xp, after)
    return log_ratio, sign


def docs_script(name: str):
    """A script of docs/ (not part of the package) as a module, e.g. docs_script("readme")."""
    import importlib.util
    path = ROOT / "docs" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"docs_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
