"""`vmc analyze`: run files, plain series, and every kind of bad input (exit 2, one line)."""
import json

import h5py
import numpy as np
import pytest
from conftest import run_cli

EXACT_STATE = """
seed = 2
[system]
particles = 2
dimensions = 2
interaction = false
[wavefunction]
init_scale = 0.0     # W = 0, a = 0, default sigma: the exact ground state
[sampler]
walkers = 4
steps = 100
[optimizer]
iterations = 0      # evaluate the exact state as it is
[production]
steps = 4000
"""


@pytest.fixture(scope="module")
def exact_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("exact")
    inp = d / "exact.toml"
    inp.write_text(EXACT_STATE)
    out = d / "exact.h5"
    p = run_cli("run", inp, "-o", out, "--quiet")
    assert p.returncode == 0, p.stderr
    return out


def test_analyze_run_file_json_and_virial(exact_run, tmp_path):
    p = run_cli("analyze", exact_run, "--json", "--plot", tmp_path / "b.png")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    for key in ("mean", "error", "naive_error", "variance", "tau", "n_samples", "n_chains", "r_hat"):
        assert key in r
    assert r["n_chains"] == 4 and r["n_samples"] == 4 * 4000
    # the exact non-interacting state: E = P D omega / 2 with zero variance ...
    assert r["mean"] == pytest.approx(2.0, abs=1e-12)
    assert r["variance"] < 1e-20 and r["error"] < 1e-10
    # ... while T_L and V_trap fluctuate; the virial theorem <T> = <V_trap> holds within errors
    t, v = r["kinetic"], r["trap"]
    assert t["error"] > 0 and v["error"] > 0
    assert abs(t["mean"] - v["mean"]) < 4 * np.hypot(t["error"], v["error"])
    assert t["mean"] + v["mean"] == pytest.approx(2.0, abs=1e-9)
    assert r["interaction"]["mean"] == 0.0
    assert (tmp_path / "b.png").stat().st_size > 10000
    table = run_cli("analyze", exact_run)
    assert table.returncode == 0 and "virial check" in table.stdout and "kinetic" in table.stdout


def test_analyze_plain_series(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 2.0, 5000)
    np.save(tmp_path / "x.npy", x)
    np.savetxt(tmp_path / "x.txt", x)
    for name in ("x.npy", "x.txt"):
        p = run_cli("analyze", tmp_path / name, "--json")
        assert p.returncode == 0, p.stderr
        r = json.loads(p.stdout)
        assert r["mean"] == pytest.approx(x.mean())
        naive = x.std(ddof=1) / np.sqrt(x.size)
        assert r["naive_error"] == pytest.approx(naive, rel=1e-3)
        assert r["error"] == pytest.approx(naive, rel=0.1)   # uncorrelated: blocking changes little


def test_constant_series_has_zero_error(tmp_path):
    np.savetxt(tmp_path / "c.txt", np.full(1000, 2.5))
    p = run_cli("analyze", tmp_path / "c.txt", "--json")
    assert p.returncode == 0, p.stderr
    r = json.loads(p.stdout)
    assert r["mean"] == 2.5 and r["error"] == 0.0


def bad_files(tmp_path, exact_run):
    raw = exact_run.read_bytes()
    (tmp_path / "truncated.h5").write_bytes(raw[: len(raw) // 3])
    (tmp_path / "garbage.h5").write_bytes(b"not an hdf5 file at all" * 10)
    with h5py.File(tmp_path / "noprod.h5", "w") as f:
        f["x"] = np.arange(3)
    (tmp_path / "empty.txt").write_text("")
    np.savetxt(tmp_path / "nan.txt", np.array([1.0, 2.0, np.nan, 3.0] * 10))
    (tmp_path / "words.txt").write_text("one\ntwo\n")
    return ["truncated.h5", "garbage.h5", "noprod.h5", "empty.txt", "nan.txt", "words.txt", "missing.h5"]


def test_bad_inputs_exit_2_with_one_line(tmp_path, exact_run):
    for name in bad_files(tmp_path, exact_run):
        p = run_cli("analyze", tmp_path / name)
        assert p.returncode == 2, (name, p.stdout, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and name in lines[0], (name, p.stderr)
        assert "Traceback" not in p.stderr
