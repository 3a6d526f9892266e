"""Parameter studies: a [sweep] grid runs into one file (a group per point), resumes only the
missing points after a kill, and `vmc report` draws every figure from it."""
import json
import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
from conftest import MPIEXEC, ROOT, run_cli, wait_unlocked


def status(group):
    return group.attrs["status"].decode()

STUDY = """
seed = 1
[system]
particles = 2
dimensions = 2
[wavefunction]
hidden = 2
[sampler]
kind = "metropolis"
walkers = 4
steps = {steps}
[optimizer]
iterations = {iterations}
[production]
steps = 1000
[sweep]
"sampler.step" = [0.5, 1.5]
"system.interaction" = [true, false]
"""


def test_sweep_grid_groups_and_report(write_input, tmp_path):
    inp = write_input(STUDY.format(steps=200, iterations=5))
    out = tmp_path / "study.h5"
    p = run_cli("run", inp, "-o", out, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    expected = [(0.5, True), (0.5, False), (1.5, True), (1.5, False)]
    with h5py.File(out, "r") as f:
        assert f.attrs["format"] == "vmc-study" and status(f) == "complete"
        assert sorted(f["points"]) == ["000", "001", "002", "003"]
        for key, (step, inter) in zip(sorted(f["points"]), expected):
            g = f["points"][key]
            cfg = json.loads(g.attrs["config"])
            assert cfg["sampler"]["step"] == step and cfg["system"]["interaction"] is inter
            assert "sweep" not in cfg
            assert g.attrs["label"] == f"sampler.step={step},system.interaction={str(inter).lower()}"
            assert status(g) == "complete"
            assert g["optimization/energy"].shape == (5,)
            e = g["production/interaction"][...]
            assert (np.all(e == 0) and not inter) or (np.all(e > 0) and inter)
    report_dir = tmp_path / "rep"
    p = run_cli("report", out, "-o", report_dir)
    assert p.returncode == 0, p.stderr
    md = (report_dir / "report.md").read_text()
    pngs = ["energy_history.png", "energy_vs_sampler_step.png", "energy_vs_system_interaction.png",
            "parts_vs_sampler_step.png", "acceptance_vs_sampler_step.png", "density.png"]
    for png in pngs:
        assert (report_dir / png).stat().st_size > 5000, png
        assert f"({png})" in md
    assert md.count("\n| sampler.step=") == 4
    analyzed = json.loads(run_cli("analyze", out, "--json").stdout)
    assert len(analyzed["points"]) == 4


def test_killed_sweep_resumes_only_missing_points(write_input, tmp_path):
    inp = write_input(STUDY.format(steps=2000, iterations=40))
    out = tmp_path / "study.h5"
    cmd = [str(MPIEXEC), "-n", "2", sys.executable, "-m", "vmc", "run", str(inp), "-o", str(out), "--quiet"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 180
    finished_points = started = 0
    while time.time() < deadline and proc.poll() is None:
        try:
            with h5py.File(out, "r", locking=False) as f:
                pts = [f["points"][k] for k in f["points"]]
                finished_points = sum(status(g) == "complete" for g in pts)
                started = sum(status(g) != "pending" and g["optimization"].attrs["iterations_done"] > 0 for g in pts)
        except (OSError, KeyError):
            pass
        if finished_points >= 1 and started >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the study finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    wait_unlocked(out)
    with h5py.File(out, "r") as f:
        done_before = {k: f["points"][k]["production/local_energy"][...] for k in f["points"]
                       if status(f["points"][k]) == "complete"}
        assert 1 <= len(done_before) < 4
    p = run_cli("run", "--resume", out, "--quiet", ranks=2)
    assert p.returncode == 0, p.stderr
    # only the missing points ran: the summaries printed are for the other points
    assert p.stdout.count("E = ") == 4 - len(done_before)
    with h5py.File(out, "r") as f:
        assert status(f) == "complete"
        for k in f["points"]:
            assert status(f["points"][k]) == "complete"
        for k, series in done_before.items():
            assert np.array_equal(f["points"][k]["production/local_energy"][...], series)


def test_invalid_sweep_stops_before_work(write_input, tmp_path):
    inp = write_input(STUDY.format(steps=200, iterations=5).replace('"sampler.step"', '"sampler.stepz"'))
    p = run_cli("run", inp, "-o", tmp_path / "x.h5")
    assert p.returncode == 2 and "sampler.stepz" in p.stderr and not (tmp_path / "x.h5").exists()
    inp = write_input(STUDY.format(steps=200, iterations=5).replace("[0.5, 1.5]", "[0.5, -1.5]"))
    p = run_cli("run", inp, "-o", tmp_path / "y.h5")
    assert p.returncode == 2 and "sampler.step" in p.stderr and not (tmp_path / "y.h5").exists()
