"""The Python API (`vmc.run`, `vmc.load`, `vmc.analyze`): the same code path as the CLI, bit for bit."""
import subprocess
import sys
import tomllib

import h5py
import numpy as np
import pytest
from conftest import ROOT, small_input, vmc_main

import vmc

SMALL = small_input(seed=5, iterations=5, production=1000)


def test_dict_input_equals_the_cli_bit_for_bit_and_load_reproduces_its_summary(tmp_path, capsys):
    (tmp_path / "small.toml").write_text(SMALL)
    code, out, err = vmc_main(capsys, "run", tmp_path / "small.toml", "-o", tmp_path / "cli.h5", "--quiet")
    assert code == 0, err
    run = vmc.run(tomllib.loads(SMALL), output=tmp_path / "api.h5")
    with h5py.File(tmp_path / "cli.h5") as a, h5py.File(tmp_path / "api.h5") as b:
        for name in ("optimization/energy", "optimization/params", "wavefunction/params", "production/local_energy",
                     "production/kinetic", "checkpoint/slot0/positions"):
            np.testing.assert_array_equal(a[name][...], b[name][...], err_msg=name)
    cli_run = vmc.load(tmp_path / "cli.h5")
    # the summary block the CLI printed, rebuilt from the file alone (the path is the only difference)
    assert cli_run.summary() == out.strip()
    assert run.summary().splitlines()[:2] == out.strip().splitlines()[:2]   # the numbers; not the wall time
    assert run.energy == cli_run.energy and run.error == cli_run.error
    assert f"E = {run.energy:.6f} +- {run.error:.6f}" in out
    assert run.reference == (3.0, "exact") and run.status == "complete"
    assert set(run.parts) == {"kinetic", "trap", "interaction", "pair_distance"}
    assert sum(run.parts[k][0] for k in ("kinetic", "trap", "interaction")) == pytest.approx(run.energy, rel=1e-12)
    assert len(run.history["energy"]) == 5 and run.named["rbm.W"].shape == (4, 2)
    assert run.params.shape == run.history["params"][-1].shape
    r, n = run.density
    assert r.shape == n.shape and np.all(n >= 0)


def test_overrides_text_input_and_bad_input_raise_the_cli_message(tmp_path, capsys):
    bad = SMALL.replace("walkers = 4", "walkers = 0")
    (tmp_path / "bad.toml").write_text(bad)
    code, out, err = vmc_main(capsys, "run", tmp_path / "bad.toml", "-o", tmp_path / "x.h5")
    assert code == 2
    with pytest.raises(vmc.InputError) as exc:
        vmc.run(tmp_path / "bad.toml", output=tmp_path / "x.h5")
    assert err.strip() == f"vmc: error: {exc.value}"
    with pytest.raises(vmc.InputError, match="optimizer.learning_rat"):
        vmc.run(SMALL, output=tmp_path / "y.h5", overrides={"optimizer.learning_rat": 0.1})
    run = vmc.run(SMALL, output=tmp_path / "z.h5", overrides={"optimizer.iterations": 3})
    assert len(run.history["energy"]) == 3 and run.config["optimizer"]["iterations"] == 3
    with pytest.raises(vmc.InputError, match="exists"):
        vmc.run(SMALL, output=tmp_path / "z.h5")


def test_a_study_loads_as_its_points_with_their_swept_values(tmp_path):
    study = tomllib.loads(SMALL.replace("iterations = 5", "iterations = 2").replace("steps = 1000", "steps = 500"))
    study["sweep"] = {"system": {"omega": [0.5, 2.0]}}
    points = vmc.run(study, output=tmp_path / "study.h5")
    loaded = vmc.load(tmp_path / "study.h5")
    assert [p.swept for p in loaded] == [{"system.omega": 0.5}, {"system.omega": 2.0}]
    assert [p.energy for p in loaded] == [p.energy for p in points]
    assert loaded[0].label and loaded[0].config["system"]["omega"] == 0.5
    assert loaded[0].energy < loaded[1].energy              # E grows with omega
    assert [r["mean"] for r in vmc.analyze(tmp_path / "study.h5")] == [p.energy for p in loaded]


def test_analyze_arrays_in_the_chains_by_steps_layout(tmp_path):
    rng = np.random.default_rng(0)
    chains = 1.5 + rng.normal(size=(4, 4096))
    result = vmc.analyze(chains)
    assert result["mean"] == pytest.approx(chains.mean(), rel=1e-12)
    assert result["error"] == pytest.approx(1 / np.sqrt(chains.size), rel=0.2)   # uncorrelated: error = 1/sqrt(n)
    with pytest.raises(vmc.InputError):
        vmc.analyze(np.array([1.0]))


def test_import_is_cheap():
    """`import vmc` loads neither numba, h5py nor MPI."""
    code = "import sys, vmc; print(sorted(m for m in ('numba', 'h5py', 'mpi4py') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_example_runs_and_prints_the_numbers_of_its_files(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py"), "--short", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    run = vmc.load(tmp_path / "quickstart.h5")
    assert f"energy {run.energy:.6f} +- {run.error:.6f}" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines() if line.split()[:1] in (["0.50"], ["1.00"], ["2.00"])]
    for row, point in zip(rows, vmc.load(tmp_path / "quickstart_study.h5")):
        assert float(row[1]) == pytest.approx(point.energy, abs=1e-6)
    assert len(rows) == 3 and (tmp_path / "quickstart.png").stat().st_size > 1000
