"""Who owns an output file, and which paths vmc opens at all: racing runs, --force against a file the run reads,
named pipes and devices, a stop signal before the first checkpoint, long names, unfinished files."""
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
from conftest import ROOT, run_cli, small_input, vmc_main

FAULTS = ROOT / "tests" / "faults.py"


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def one_line(stderr):
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def faulty(fault, *args, env):
    return subprocess.Popen([sys.executable, str(FAULTS), fault, "0", *map(str, args)], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, HDF5_USE_FILE_LOCKING="FALSE", **env))


def wait_for(path, proc, timeout=120.0):
    deadline = time.time() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def seed_of(path):
    with h5py.File(path, "r") as f:
        return int(f.attrs["seed"]), f.attrs["status"].decode()


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(small_input(1, iterations=2, production=200))
    return path


# ---- racing runs ---------------------------------------------------------------------------------------


def test_two_runs_racing_on_one_new_output_one_wins_the_other_exits_2(tmp_path, tiny):
    """Run A has checked that the output does not exist and is about to create it when run B creates it and
    finishes: A must not overwrite B's result (it did: both exited 0 and the file held one of them)."""
    out = tmp_path / "race.h5"
    stamp, go = tmp_path / "a.stamp", tmp_path / "a.go"
    a = faulty("pause-create", "run", tiny, "-o", out, "--quiet", "--set", "seed=1",
               env={"VMC_FAULT_STAMP": str(stamp), "VMC_FAULT_GO": str(go)})
    try:
        wait_for(stamp, a)
        b = run_cli("run", tiny, "-o", out, "--quiet", "--set", "seed=2")
        assert b.returncode == 0, b.stderr
        go.touch()
        _, err = a.communicate(timeout=120)
    finally:
        a.kill()
    assert a.returncode == 2
    assert str(out) in one_line(err) and "exists" in err
    assert seed_of(out) == (2, "complete")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".vmc-")]   # no temporary file left


def test_force_runs_racing_on_one_file_one_wins(tmp_path, tiny):
    """With --force, the run that has claimed the old file keeps it claimed until its own file is in place."""
    out = tmp_path / "race.h5"
    assert run_cli("run", tiny, "-o", out, "--quiet", "--set", "seed=3").returncode == 0
    stamp, go = tmp_path / "a.stamp", tmp_path / "a.go"
    a = faulty("pause-create", "run", tiny, "-o", out, "--quiet", "--force", "--set", "seed=1",
               env={"VMC_FAULT_STAMP": str(stamp), "VMC_FAULT_GO": str(go)})
    try:
        wait_for(stamp, a)
        b = run_cli("run", tiny, "-o", out, "--quiet", "--force", "--set", "seed=2")
        go.touch()
        a.communicate(timeout=120)
    finally:
        a.kill()
    assert b.returncode == 2 and "in use" in one_line(b.stderr)
    assert a.returncode == 0
    assert seed_of(out) == (1, "complete")


def test_force_never_destroys_the_file_the_run_reads(tmp_path, tiny):
    out = tmp_path / "state.h5"
    assert run_cli("run", tiny, "-o", out, "--quiet").returncode == 0
    before = digest(out)
    reader = tmp_path / "reader.toml"
    reader.write_text(small_input(1, iterations=0, production=200)
                      + f'[wavefunction]\nfrom_file = "{out}"\n')
    r = run_cli("run", reader, "-o", out, "--force", "--quiet")
    assert r.returncode == 2 and "from_file" in one_line(r.stderr)
    r = run_cli("run", "--resume", out, "--force")
    assert r.returncode == 2 and "--force" in one_line(r.stderr)
    assert digest(out) == before


# ---- paths that are not regular files --------------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ("run", "{fifo}"),
    ("run", "{input}", "-o", "{fifo}", "--force"),
    ("run", "--resume", "{fifo}"),
    ("run", "{reader}", "-o", "{out}"),
    ("info", "{fifo}"),
    ("analyze", "{fifo}"),
    ("report", "{fifo}"),
    ("analyze", "/dev/null"),
])
def test_named_pipes_and_devices_are_refused_without_opening_them(tmp_path, tiny, args):
    fifo = tmp_path / "pipe.h5"
    os.mkfifo(fifo)
    reader = tmp_path / "reader.toml"
    reader.write_text(small_input(1, iterations=0, production=200) + f'[wavefunction]\nfrom_file = "{fifo}"\n')
    given = [a.format(fifo=fifo, input=tiny, reader=reader, out=tmp_path / "out.h5") for a in args]
    r = run_cli(*given, timeout=60)
    assert r.returncode == 2, r.stderr
    line = one_line(r.stderr)
    assert "not a regular file" in line and ("pipe.h5" in line or "/dev/null" in line)


def test_a_stop_signal_ends_a_run_blocked_before_its_first_checkpoint(tmp_path, tiny):
    stamp = tmp_path / "stamp"
    proc = faulty("block-plan", "run", tiny, "-o", tmp_path / "x.h5", "--quiet", env={"VMC_FAULT_STAMP": str(stamp)})
    try:
        wait_for(stamp, proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 3
    assert "SIGTERM" in one_line(err)
    assert not (tmp_path / "x.h5").exists()


# ---- small ones ------------------------------------------------------------------------------------------


def test_the_longest_legal_output_name_works(tmp_path, tiny):
    """The temporary name of a file being created must fit the 255 bytes of a name too."""
    out = tmp_path / ("n" * 252 + ".h5")
    r = run_cli("run", tiny, "-o", out, "--quiet")
    assert r.returncode == 0, r.stderr
    assert seed_of(out)[1] == "complete"


def test_an_unfinished_file_says_so_before_its_numbers(tmp_path, tiny, capsys):
    out = tmp_path / "run.h5"
    assert run_cli("run", tiny, "-o", out, "--quiet").returncode == 0
    with h5py.File(out, "r+") as f:   # as a SIGKILL leaves it: status running, no CPU time recorded
        f.attrs.modify("status", np.bytes_(b"running".ljust(16, b"\0")))
        f["production"].attrs.modify("cpu_seconds", 0.0)
    code, text, _ = vmc_main(capsys, "info", out)
    assert code == 0 and "killed or crashed" in text.splitlines()[1]
    code, text, _ = vmc_main(capsys, "analyze", out)
    lines = text.strip().splitlines()
    assert code == 0 and "unfinished run (status running" in lines[1] and "mean" in lines[2]
    assert "efficiency 1/(err^2 CPU s) = unknown" in text and "inf" not in text
    assert json.loads(vmc_main(capsys, "analyze", out, "--json")[1])["efficiency"] is None


def test_a_damaged_counter_is_refused_alike_by_analyze_and_load(tmp_path, tiny, capsys):
    import vmc
    out = tmp_path / "run.h5"
    assert run_cli("run", tiny, "-o", out, "--quiet").returncode == 0
    with h5py.File(out, "r+") as f:
        f["production"].attrs.modify("steps_done", 10**9)
    code, _, err = vmc_main(capsys, "analyze", out)
    assert code == 2 and "steps_done" in err
    with pytest.raises(vmc.InputError) as info:
        vmc.load(out)
    assert str(info.value) in err


def test_rules_apply_only_to_the_stages_that_run():
    from vmc.input import config
    assert config.from_text("[system]\nomega = 1000.0\n").get("system.omega") == 1000.0   # DMC off
    with pytest.raises(config.ConfigError, match="DMC time step"):
        config.from_text("[system]\nomega = 1000.0\n[dmc]\nsteps = 100\n")
    assert config.from_text('[sampler]\nkind = "metropolis"\ndt = 1e-12\n').get("sampler.dt") == 1e-12
    with pytest.raises(config.ConfigError, match="Langevin time step"):
        config.from_text('[sampler]\nkind = "importance"\ndt = 1e-12\n')


def test_the_api_refuses_wrong_argument_types_and_takes_numpy_scalars(tmp_path, tiny):
    import vmc
    for call, needle in ((lambda: vmc.run(42), "input must be"), (lambda: vmc.run(tiny, output=5), "output must be"),
                         (lambda: vmc.run(tiny, resume=5.0), "resume must be"),
                         (lambda: vmc.run(tiny, overrides=["seed=1"]), "overrides must be"),
                         (lambda: vmc.load(5), "path must be")):
        with pytest.raises(vmc.InputError, match=needle):
            call()
    run = vmc.run(tiny, output=tmp_path / "np.h5", overrides={"seed": np.int64(5), "sampler.dt": np.float64(0.4),
                                                               "sampler.walkers": np.int32(4)})
    assert run.config["seed"] == 5 and run.config["sampler"]["dt"] == 0.4 and np.isfinite(run.energy)
