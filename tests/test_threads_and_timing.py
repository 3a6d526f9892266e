"""One core per rank (the BLAS/OpenMP pools are limited by the program, not by the user's environment),
and the per-iteration phase timings that show where a run's time goes."""
import h5py
import numpy as np
from conftest import run_cli, run_in_memory, small_input

from vmc.input import config
from vmc.output import io
from vmc.parallel import THREAD_VARIABLES

SMALL = small_input(seed=3, iterations=6, production=2500)


def test_each_rank_runs_one_blas_thread_unless_the_user_asks_for_more(write_input, tmp_path):
    """Left alone, OpenBLAS starts one spinning thread per core in every rank (2-rank efficiency 0.45
    instead of 0.95); a user who sets OMP_NUM_THREADS and the like keeps what they asked for."""
    inp = write_input(SMALL)
    unset = dict.fromkeys(THREAD_VARIABLES, "")
    for env, expected in ((unset, 1), ({**unset, "OPENBLAS_NUM_THREADS": "2"}, 2)):
        out = tmp_path / f"threads{expected}.h5"
        r = run_cli("run", inp, "-o", out, "--quiet", env=env)
        assert r.returncode == 0, r.stderr
        with h5py.File(out, "r") as f:
            assert f.attrs["threads_per_rank"] == expected


def test_phase_timings_add_up_to_the_run_and_show_in_info(capsys):
    cfg = config.from_text(SMALL).spec()
    summary, f = run_in_memory(cfg)
    opt, prod = f["optimization/timing"][...], f["production/timing"][...]
    assert list(f["optimization/timing"].attrs["fields"]) == list(io.TIMING_FIELDS)
    assert opt.shape == (6, len(io.TIMING_FIELDS)) and prod.shape == (3, len(io.TIMING_FIELDS))
    for rows in (opt, prod):
        t = dict(zip(io.TIMING_FIELDS, rows.T))
        assert np.all(rows >= 0.0) and np.all(t["sampling"] > 0.0)
        # one rank: the slowest and the fastest rank are this one
        np.testing.assert_array_equal(t["sampling_max"], t["sampling"])
        np.testing.assert_array_equal(t["sampling_min"], t["sampling"])
    phases = ("sampling", "reduce", "update", "io")
    spent = sum(rows[:, io.TIMING_FIELDS.index(k)].sum() for rows in (opt, prod) for k in phases)
    assert 0.5 * summary["wall_time"] < spent <= summary["wall_time"]
    assert summary["timing"].startswith("sampling ") and summary["timing"] == io.time_breakdown(f)
    shares = [float(part.split()[1].rstrip("%")) for part in summary["timing"].split(" of ")[0].split(" · ")]
    assert abs(sum(shares) - 100) <= 2
