"""Cluster safety: no rank waits for a dead one, a full disk loses nothing, --resume never mixes physics,
divergence is caught and recoverable, limits are checked before work, files in use are refused,
signals checkpoint, and the analysis tools fail with one line."""
import hashlib
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import MPIEXEC, ROOT, run_cli, vmc_main, wait_unlocked

FAULTS = ROOT / "tests" / "faults.py"

CASE = """
seed = {seed}
checkpoint_interval = {interval}
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
kind = "{kind}"
learning_rate = {lr}
iterations = {iterations}
[production]
steps = {production}
"""


def case(seed=1, walkers=4, steps=300, iterations=20, production=2000, kind="adam", lr=0.02, interval=0.0):
    return CASE.format(seed=seed, walkers=walkers, steps=steps, iterations=iterations, production=production,
                       kind=kind, lr=lr, interval=interval)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def results(path):
    """Everything a run's numbers consist of."""
    with h5py.File(path, "r") as f:
        n = f["optimization"].attrs["iterations_done"]
        return {"energy": f["optimization/energy"][:n], "params": f["wavefunction/params"][...],
                "series": f["production/local_energy"][...], "summary": json.loads(f.attrs["summary"])["mean"]}


def assert_same_results(a, b):
    ra, rb = results(a), results(b)
    for key in ("energy", "params", "series"):
        assert np.array_equal(ra[key], rb[key]), key
    assert ra["summary"] == rb["summary"]


def status(path):
    with h5py.File(path, "r") as f:
        return f.attrs["status"].decode(), f.attrs["message"].decode()


def start(args, ranks=2):
    cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "vmc", *map(str, args)]
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def rank_pid(launcher: int, rank: int) -> int:
    """The process id of MPI rank `rank` among the descendants of the launcher (mpiexec) process."""
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    todo, found = [launcher], []
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            if f"PMI_RANK={rank}\0" in open(f"/proc/{pid}/environ").read():
                found.append(pid)
        except OSError:
            pass
    assert len(found) == 1, found
    return found[0]


def wait_for_iterations(path, n, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(path, "r", locking=False) as f:
                if f["optimization"].attrs["iterations_done"] >= n:
                    return
        except (OSError, KeyError):
            pass
        time.sleep(0.05)
    raise AssertionError(f"the run did not reach {n} iterations (rc {proc.poll()})")


# ---------------------------------------------------------------------------------------------- hangs


def test_failure_on_rank_zero_alone_ends_the_job_at_once(write_input, tmp_path):
    """Rank 0 raises while rank 1 goes on to the next collective: the job must end within seconds of the
    fault (timed from the fault itself, so that start-up and compilation on a loaded machine do not count)."""
    inp = write_input(case(iterations=2000, steps=1000))
    out = tmp_path / "x.h5"
    stamp = tmp_path / "fault-time"
    p = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(FAULTS), "raise", "3", "run", str(inp), "-o",
                        str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, VMC_FAULT_STAMP=str(stamp)))
    elapsed = time.time() - float(stamp.read_text())
    assert p.returncode == 1, p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "internal error on rank 0: RuntimeError: injected fault" in lines[0], p.stderr
    assert elapsed < 10   # the remaining 1997 iterations would take minutes; a hang would hit the timeout


def test_full_disk_stops_with_one_line_and_resumes_bit_identically(write_input, tmp_path):
    inp = write_input(case(iterations=12, production=2000))
    full = tmp_path / "full.h5"
    assert run_cli("run", inp, "-o", full, "--quiet", ranks=2).returncode == 0
    out = tmp_path / "x.h5"
    p = subprocess.run([str(MPIEXEC), "-n", "2", sys.executable, str(FAULTS), "write-error", "5", "run", str(inp),
                        "-o", str(out), "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in p.stderr, p.stderr
    assert lines[0].startswith(f"vmc: error: disk full while writing iteration 5 to {out}: the file holds 5 "
                               "complete iterations"), lines[0]
    assert f"--resume {out}" in lines[0]
    info = run_cli("info", out)
    assert info.returncode == 0 and "optimization: 5 of 12 iterations" in info.stdout, info.stdout + info.stderr
    moved = tmp_path / "elsewhere" / "moved.h5"
    moved.parent.mkdir()
    os.rename(out, moved)                      # e.g. to a file system with space
    p = run_cli("run", "--resume", moved, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    assert_same_results(full, moved)


def _mount_tmpfs(path, size):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")


def test_small_disk_refused_before_work_and_reserved_space_survives_a_full_disk(write_input, tmp_path):
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "2m")
    try:
        big = write_input(case(walkers=8, production=20000), "big.toml")     # 8 x 20000 x 5 doubles = 6.4 MB
        p = run_cli("run", big, "-o", disk / "big.h5", "--quiet")
        assert p.returncode == 2 and "only" in p.stderr and "free" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and not (disk / "big.h5").exists()
        small = write_input(case(iterations=60, steps=500, production=2000), "small.toml")
        out = disk / "small.h5"
        proc = start(["run", small, "-o", out, "--quiet"], ranks=1)
        wait_for_iterations(out, 3, proc)
        with open(disk / "filler", "wb") as filler:            # now fill the disk completely
            try:
                while True:
                    filler.write(b"\0" * 65536)
                    filler.flush()
            except OSError:
                pass
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err                        # the file's space was reserved up front
        assert status(out)[0] == "complete"
        assert run_cli("analyze", out).returncode == 0
    finally:
        subprocess.run(["umount", str(disk)])


# ---------------------------------------------------------------------------------------------- resume


def test_resume_overrides_are_checked_before_anything_is_written(write_input, tmp_path, capsys):
    inp = write_input(case(iterations=10, production=1000))
    out = tmp_path / "x.h5"
    assert vmc_main(capsys, "run", inp, "-o", out, "--quiet")[0] == 0
    before = digest(out)
    code, _, err = vmc_main(capsys, "run", "--resume", out)
    assert code == 0 and "already complete" in err
    assert digest(out) == before
    for override in ("system.omega=2.0", "wavefunction.hidden=8", "system.dimensions=3", "sampler.walkers=64",
                     "seed=5", "sampler.kind=\"metropolis\"", "sampler.dt=0.1"):
        code, _, err = vmc_main(capsys, "run", "--resume", out, "--set", override)
        assert code == 2, (override, err)
        assert len(err.strip().splitlines()) == 1
        assert digest(out) == before, override
    code, _, err = vmc_main(capsys, "run", inp, "--resume", out)
    assert code == 2 and "not both" in err
    assert digest(out) == before


def test_refused_override_on_an_unfinished_run_and_allowed_one_recorded(write_input, tmp_path, capsys):
    inp = write_input(case(iterations=400, steps=500, production=2000))
    out = tmp_path / "x.h5"
    proc = start(["run", inp, "-o", out, "--quiet"], ranks=1)
    wait_for_iterations(out, 5, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_unlocked(out)
    before = digest(out)
    for override, needle in [("system.omega=2.0", "system.omega cannot change"),
                             ("sampler.walkers=64", "sampler.walkers cannot change"),
                             ("seed=1", "seed cannot change"),
                             ("optimizer.iterations=2", "below the"),
                             ("sampler.burn_in=5", "no effect")]:
        code, _, err = vmc_main(capsys, "run", "--resume", out, "--set", override)
        assert code == 2 and needle in err, (override, err)
        assert digest(out) == before, override
    with h5py.File(out, "r") as f:   # the kill lands some iterations after the 5 waited for (ms each)
        target = int(f["checkpoint"].attrs["iteration"]) + 7
    code, _, err = vmc_main(capsys, "run", "--resume", out, "--set", f"optimizer.iterations={target}", "--set",
                            "production.steps=3000", "--quiet")
    assert code == 0, err
    with h5py.File(out, "r") as f:
        resumed = json.loads(f.attrs["resumed"])
        assert resumed[-1]["overrides"] == {"optimizer.iterations": target, "production.steps": 3000}
        assert json.loads(f.attrs["config"])["optimizer"]["iterations"] == target
        assert f["optimization"].attrs["iterations_done"] == target
        assert f["production"].attrs["steps_done"] == 3000
        assert np.all(np.isfinite(f["production/local_energy"][...]))


# ---------------------------------------------------------------------------------------------- sanity


@pytest.mark.parametrize("kind,lr", [("sgd", 5.0), ("adam", 5.0)])
def test_divergence_stops_and_a_smaller_step_recovers(kind, lr, write_input, tmp_path):
    inp = write_input(case(kind=kind, lr=lr, iterations=60, production=1000, walkers=4, steps=200))
    out = tmp_path / "x.h5"
    p = run_cli("run", inp, "-o", out, "--quiet")
    assert p.returncode == 1, p.stdout + p.stderr
    assert "diverged" in p.stderr or "not finite" in p.stderr, p.stderr
    assert "--resume" in p.stderr
    with h5py.File(out, "r") as f:
        assert f.attrs["status"].decode() == "failed"
        from vmc.output.io import read_checkpoint
        ck = read_checkpoint(f)
        good = int(ck.state["iteration"])
        energy = f["optimization/energy"][:f["optimization"].attrs["iterations_done"]]
        best = np.nanmin(energy)
        # the checkpoint holds the parameters at which iteration `good` was measured: finite, close to the best
        assert np.array_equal(ck.arrays["params"], f["optimization/params"][good])
        assert np.isfinite(energy[good]) and energy[good] <= best + max(best - 2.0, 0.5)
        assert np.abs(ck.arrays["params"]).max() < 50
    p = run_cli("run", "--resume", out, "--set", "optimizer.learning_rate=0.001", "--quiet")
    assert p.returncode == 0, p.stderr
    s = json.loads(h5py.File(out, "r").attrs["summary"])
    assert 3.0 < s["mean"] < 3.6     # a sane two-electron energy (the exact value is 3)


def test_frozen_sampler_is_a_failure_not_a_result(write_input, tmp_path):
    inp = write_input(case().replace("dt = 0.5", "dt = 900.0"))
    p = run_cli("run", inp, "-o", tmp_path / "x.h5", "--quiet")
    assert p.returncode == 1 and "no proposed move was accepted" in p.stderr, p.stdout + p.stderr


def test_low_acceptance_is_a_warning_in_summary_file_and_analysis(write_input, tmp_path):
    metropolis = 'kind = "metropolis"\nstep = 12.0'
    inp = write_input(case(iterations=2, production=2000).replace('kind = "importance"', metropolis))
    out = tmp_path / "x.h5"
    p = run_cli("run", inp, "-o", out, "--quiet")
    assert p.returncode == 0, p.stderr
    assert "warning: acceptance" in p.stdout
    assert any("acceptance" in w for w in json.loads(h5py.File(out, "r").attrs["summary"])["warnings"])
    assert "warning: acceptance" in run_cli("analyze", out).stdout


# ---------------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize("overrides,needle", [
    (["sampler.steps=100000000"], "of memory per rank"),
    (["production.steps=100000000000"], "the output file needs"),
    (["wavefunction.hidden=100000", "sampler.steps=5000"], "of memory per rank"),
    (["sampler.walkers=10000000"], "of memory per rank"),
])
def test_limits_before_work(overrides, needle, write_input, tmp_path, capsys):
    inp = write_input(case())
    out = tmp_path / "x.h5"
    code, _, err = vmc_main(capsys, "run", inp, "-o", out, *[a for o in overrides for a in ("--set", o)])
    assert code == 2 and needle in err, err
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_memory_limit_can_be_raised(write_input, tmp_path, capsys, monkeypatch):
    inp = write_input(case(iterations=1, production=100))
    monkeypatch.setenv("VMC_MEMORY_LIMIT", "10M")
    code, _, err = vmc_main(capsys, "run", inp, "-o", tmp_path / "x.h5", "--quiet")
    assert code == 2 and "VMC_MEMORY_LIMIT=10M" in err
    monkeypatch.setenv("VMC_MEMORY_LIMIT", "4G")
    code, _, err = vmc_main(capsys, "run", inp, "-o", tmp_path / "x.h5", "--quiet")
    assert code == 0, err


# ---------------------------------------------------------------------------------------------- files in use


def test_file_in_use_is_refused_by_force_and_resume(write_input, tmp_path):
    # iterations: far more than the two refused commands' time allows (400 ran out before the SIGTERM once the
    # kernel got faster: the run had ended, and a signal after the end kills the finished process, exit 15)
    inp = write_input(case(iterations=100000, steps=500, production=2000))
    out = tmp_path / "x.h5"
    proc = start(["run", inp, "-o", out, "--quiet"], ranks=1)
    wait_for_iterations(out, 2, proc)
    for args in (["run", inp, "-o", out, "--force"], ["run", "--resume", out]):
        p = run_cli(*args)
        assert p.returncode == 2 and "in use" in p.stderr, p.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 3
    assert status(out)[0] == "interrupted"


# ---------------------------------------------------------------------------------------------- signals


ITERATIONS = 1500


@pytest.fixture(scope="module")
def signal_case(tmp_path_factory):
    """An input and its uninterrupted 2-rank run, shared by the signal tests."""
    d = tmp_path_factory.mktemp("signals")
    inp = d / "case.toml"
    # iterations: enough that the signal lands before the end on a quiet machine too (150 ran out once the kernel
    # got faster)
    inp.write_text(case(seed=5, iterations=ITERATIONS, steps=500, production=3000, interval=60.0))
    full = d / "full.h5"
    assert run_cli("run", inp, "-o", full, "--quiet", ranks=2).returncode == 0
    return inp, full


@pytest.mark.parametrize("sig,target", [("SIGTERM", "mpiexec"), ("SIGUSR1", "mpiexec"), ("SIGINT", "rank 1")])
def test_signal_checkpoints_and_resume_is_bit_identical(sig, target, signal_case, tmp_path):
    inp, full = signal_case
    out = tmp_path / "x.h5"
    proc = start(["run", inp, "-o", out, "--quiet"], ranks=2)
    wait_for_iterations(out, 10, proc)
    if target == "mpiexec":
        proc.send_signal(getattr(signal, sig))
    else:
        os.kill(rank_pid(proc.pid, 1), getattr(signal, sig))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 3, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "stopped by" in lines[0] and "--resume" in lines[0], err
    state, message = status(out)
    assert state == "interrupted" and "stopped by" in message
    with h5py.File(out, "r") as f:
        assert 10 <= f["checkpoint"].attrs["iteration"] < ITERATIONS
    p = run_cli("run", "--resume", out, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    assert_same_results(full, out)


# ---------------------------------------------------------------------------------------------- analysis


def test_two_dimensional_npy_is_chains_by_steps(tmp_path):
    """AR(1) chains stored as (chains, steps): the blocked error matches the exact one."""
    rng = np.random.default_rng(3)
    phi, n_chains, n_steps = 0.95, 8, 2**14
    x = np.empty((n_chains, n_steps))
    x[:, 0] = rng.normal(size=n_chains) / np.sqrt(1 - phi**2)
    noise = rng.normal(size=(n_chains, n_steps))
    for t in range(1, n_steps):
        x[:, t] = phi * x[:, t - 1] + noise[:, t]
    exact = np.sqrt((1 + phi) / (1 - phi) / (1 - phi**2) / (n_chains * n_steps))   # sigma^2 tau_int / N
    path = tmp_path / "chains.npy"
    np.save(path, x)
    p = run_cli("analyze", path, "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["n_chains"] == n_chains and r["n_samples"] == n_chains * n_steps
    assert abs(r["error"] / exact - 1) < 0.25


def test_report_and_info_errors_name_the_file(tmp_path, write_input, capsys):
    inp = write_input(case(iterations=2, production=200))
    good = tmp_path / "good.h5"
    assert vmc_main(capsys, "run", inp, "-o", good, "--quiet")[0] == 0
    truncated = tmp_path / "truncated.h5"
    truncated.write_bytes(good.read_bytes()[:4000])
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = [1, 2, 3]
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    for path in (tmp_path / "missing.h5", truncated, other, text):
        for command in ("report", "info", "analyze"):
            code, _, err = vmc_main(capsys, command, path)
            lines = err.strip().splitlines()
            assert code == 2 and len(lines) == 1 and str(path) in lines[0], (command, path, err)


def test_hand_made_file_without_checkpoint_is_not_resumable(tmp_path, capsys):
    path = tmp_path / "hand.h5"
    with h5py.File(path, "w") as f:
        f.attrs["format"] = "vmc-run"
        f.attrs["config"] = "{}"
    code, _, err = vmc_main(capsys, "run", "--resume", path)
    assert code == 2 and str(path) in err and "Traceback" not in err


def test_output_path_errors(write_input, tmp_path, capsys):
    inp = write_input(case(iterations=1, production=100))
    code, _, err = vmc_main(capsys, "run", inp, "-o", tmp_path, "--force")
    assert code == 2 and "is a directory" in err
    code, _, err = vmc_main(capsys, "run", inp, "-o", "/proc/nope/x.h5")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
