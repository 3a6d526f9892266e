"""The batch application end to end: `vmc run` under mpiexec, HDF5 output, resume after SIGKILL,
bad input; `vmc info` and `python -m vmc`."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import MPIEXEC, ROOT, run_cli, wait_unlocked

SMALL = """
seed = {seed}
[system]
particles = 2
dimensions = 2
[wavefunction]
hidden = 2
[sampler]
kind = "importance"
dt = 0.5
walkers = {walkers}
burn_in = 100
steps = {steps}
[optimizer]
kind = "adam"
learning_rate = 0.02
iterations = {iterations}
[production]
steps = {production}
"""


def small(seed=1, walkers=6, steps=300, iterations=20, production=3000):
    return SMALL.format(seed=seed, walkers=walkers, steps=steps, iterations=iterations, production=production)


def summary(path):
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["summary"]), f["production/local_energy"][...], f["wavefunction/params"][...]


def test_mpi_runs_consistent_and_reproducible(write_input, tmp_path):
    """Walker w always uses stream w, so 1, 2 and 3 ranks run the same chains and differ only in the
    order of the allreduce sums: the iteration energies agree to ~1e-10, the local energies to ~1e-8
    (a broken walker-to-stream mapping would differ at order 1). Same ranks: bit for bit."""
    inp = write_input(small())
    results = {}
    for ranks, name in [(1, "n1"), (2, "n2"), (3, "n3"), (2, "n2b")]:
        out = tmp_path / f"{name}.h5"
        p = run_cli("run", inp, "-o", out, "--quiet", ranks=ranks)
        assert p.returncode == 0, p.stderr
        assert "E = " in p.stdout and "+-" in p.stdout
        results[name] = summary(out)
        with h5py.File(out, "r") as f:
            assert f.attrs["n_ranks"] == ranks
            assert f.attrs["status"].decode() == "complete"
            assert f["optimization"].attrs["iterations_done"] == 20
            assert f["production/local_energy"].shape == (6, 3000)
            results[name] += (f["optimization/energy"][...],)
    s2, e2, p2, o2 = results["n2"]
    s2b, e2b, p2b, o2b = results["n2b"]
    assert np.array_equal(e2, e2b) and np.array_equal(p2, p2b) and np.array_equal(o2, o2b)
    for name in ("n1", "n3"):
        s, e, p, o = results[name]
        np.testing.assert_allclose(o, o2, rtol=1e-10, atol=0)
        np.testing.assert_allclose(e, e2, rtol=0, atol=1e-8)
        assert abs(s["mean"] - s2["mean"]) < 1e-8


def _kill_when(proc, path, dataset_attr, threshold, timeout=120):
    """SIGKILL the whole job as soon as the file shows `threshold` completed units (iterations/steps)."""
    group, attr = dataset_attr
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(path, "r", locking=False) as f:
                if f[group].attrs[attr] >= threshold:
                    break
        except (OSError, KeyError):
            pass
        time.sleep(0.02)
    assert proc.poll() is None, "run finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_unlocked(path)


@pytest.mark.parametrize("phase", ["optimization", "production"])
def test_resume_after_sigkill_matches_uninterrupted_run(phase, write_input, tmp_path):
    """SIGKILL during the optimization or the production phase (checkpoints every 0.2 s): the resumed
    run ends on exactly the numbers of an uninterrupted one."""
    text = small(seed=3, walkers=4, steps=2000, iterations=40, production=40000).replace(
        "seed = 3", "seed = 3\ncheckpoint_interval = 0.2")
    inp = write_input(text)
    full = tmp_path / "full.h5"
    p = run_cli("run", inp, "-o", full, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    killed = tmp_path / "killed.h5"
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "vmc", "run", str(inp), "-o", str(killed), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    if phase == "optimization":
        _kill_when(proc, killed, ("optimization", "iterations_done"), 10)
    else:
        _kill_when(proc, killed, ("production", "steps_done"), 5000)
    with h5py.File(killed, "r") as f:   # readable (nothing holds it now), holds the completed work
        n = f["optimization"].attrs["iterations_done"]
        steps = f["production"].attrs["steps_done"]
        assert f.attrs["status"].decode() == "running"
        assert np.all(np.isfinite(f["optimization/energy"][:n]))
        if phase == "optimization":
            assert 10 <= n < 40 and steps == 0
        else:
            assert n == 40 and 5000 <= steps < 40000
            assert np.all(np.isfinite(f["production/local_energy"][:, :steps]))
    p = run_cli("run", "--resume", killed, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    s_full, e_full, p_full = summary(full)
    s_res, e_res, p_res = summary(killed)
    assert np.array_equal(p_full, p_res)
    assert np.array_equal(e_full, e_res)
    assert s_full["mean"] == s_res["mean"] and s_full["error"] == s_res["error"]
    with h5py.File(full, "r") as a, h5py.File(killed, "r") as b:
        assert np.array_equal(a["optimization/energy"][...], b["optimization/energy"][...])
        assert np.array_equal(a["production/density/counts"][...], b["production/density/counts"][...])


def test_checkpoint_interval_does_not_change_the_numbers(write_input, tmp_path):
    """Checkpoints never touch the random streams: interval 0 (every iteration) and 1 h give the same run."""
    outs = []
    for interval in (0.0, 3600.0):
        text = small(iterations=8, production=2000).replace("seed = 1", f"seed = 1\ncheckpoint_interval = {interval}")
        inp = write_input(text, f"c{interval}.toml")
        out = tmp_path / f"c{interval}.h5"
        assert run_cli("run", inp, "-o", out, "--quiet").returncode == 0
        outs.append(summary(out))
    assert np.array_equal(outs[0][1], outs[1][1]) and np.array_equal(outs[0][2], outs[1][2])


BAD_INPUTS = {
    "toml syntax": ("[system\nparticles = 2", "case.toml"),
    "unknown key": ("[sampler]\nstepp = 1.0", "sampler.stepp"),
    "wrong type": ("[system]\nparticles = \"two\"", "system.particles"),
    "negative step": ("[sampler]\nstep = -0.5", "sampler.step"),
    "gibbs with g = 1": ("[wavefunction]\ng = 1.0\n[sampler]\nkind = \"gibbs\"", "gibbs"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
def test_bad_input_exit_2_one_line(case, write_input, tmp_path):
    text, needle = BAD_INPUTS[case]
    inp = write_input(text)
    out = tmp_path / "out.h5"
    p = run_cli("run", inp, "-o", out)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], p.stderr
    assert "Traceback" not in p.stderr
    assert not out.exists()


def test_other_bad_invocations(write_input, tmp_path):
    p = run_cli("run", tmp_path / "missing.toml")
    assert p.returncode == 2 and "missing.toml" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    inp = write_input(small(walkers=2))
    p = run_cli("run", inp, "-o", tmp_path / "x.h5", ranks=3)
    assert p.returncode == 2 and "walkers" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "x.h5").exists()
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as a user who can write anywhere")
    finally:
        pass
    p = run_cli("run", inp, "-o", locked / "x.h5")
    assert p.returncode == 2 and "not writable" in p.stderr


def test_unwritable_directory_and_existing_output(write_input, tmp_path):
    inp = write_input(small(iterations=2, production=200))
    out = tmp_path / "a.h5"
    assert run_cli("run", inp, "-o", out, "--quiet").returncode == 0
    p = run_cli("run", inp, "-o", out, "--quiet")
    assert p.returncode == 2 and "exists" in p.stderr
    p = run_cli("run", inp, "-o", "/proc/nope/x.h5", "--quiet")
    assert p.returncode == 2 and "Traceback" not in p.stderr
    info = run_cli("info", out)
    assert info.returncode == 0 and "2 particles" in info.stdout and "status complete" in info.stdout, info.stderr
    assert run_cli("info", tmp_path / "none.h5").returncode == 2
