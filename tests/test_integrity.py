"""Damaged output files are reported, never analysed: Fletcher32 checksums on every dataset (`vmc.output.io.verify`)
and the physical consistency of the production and DMC series (`vmc.analysis.results.check_production`,
`check_dmc`). Every reader (`vmc info`, `analyze`, `report`, `vmc.load`, `--resume`,
`wavefunction.from_file`) answers a damaged file with one line naming the dataset, exit code 2."""
import json
import shutil

import h5py
import numpy as np
import pytest
from conftest import small_input, vmc_main

import vmc
from vmc.analysis import results as analysis
from vmc.output import io
from vmc.drivers import driver
from vmc.model.wavefunction import TrialState


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A small complete run file (2 electrons, 4 walkers, 2000 production steps)."""
    import subprocess
    import sys
    d = tmp_path_factory.mktemp("integrity")
    inp = d / "case.toml"
    inp.write_text(small_input(seed=7, iterations=4, production=2000))
    out = d / "run.h5"
    p = subprocess.run([sys.executable, "-m", "vmc", "run", str(inp), "-o", str(out), "--quiet"],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    return out


def copy(src, tmp_path, name="x.h5"):
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def flip(path, dataset: str, nbytes: int = 16) -> None:
    """Invert `nbytes` bytes in the middle of the first chunk of `dataset`, on disk."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info(0)
    offset = info.byte_offset + info.size // 2 - nbytes // 2
    with open(path, "r+b") as fh:
        fh.seek(offset)
        data = fh.read(nbytes)
        fh.seek(offset)
        fh.write(bytes(b ^ 0xFF for b in data))


def one_line_exit_2(capsys, *args) -> str:
    code, _, err = vmc_main(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, (args, code, err)
    return lines[0]


def test_every_dataset_is_checksummed_and_an_undamaged_file_passes(finished, capsys):
    with h5py.File(finished, "r") as f:
        assert f.attrs["format_version"] == io.FORMAT_VERSION >= 4
        unfiltered = []
        f.visititems(lambda k, o: unfiltered.append(k) if isinstance(o, h5py.Dataset) and o.size
                     and not o.fletcher32 else None)
        assert not unfiltered
        io.verify(f)
    for command in ("info", "analyze"):
        assert vmc_main(capsys, command, finished)[0] == 0
    assert np.isfinite(vmc.load(finished).energy)


@pytest.mark.parametrize("dataset", ["production/kinetic", "optimization/energy", "wavefunction/params"])
def test_flipped_bytes_give_one_line_naming_the_dataset_in_every_reader(dataset, finished, tmp_path, capsys):
    bad = copy(finished, tmp_path)
    flip(bad, dataset)
    needle = f"damaged: dataset /{dataset} fails its checksum"
    for command in ("info", "analyze", "report"):
        line = one_line_exit_2(capsys, command, bad)
        assert str(bad) in line and needle in line, (command, line)
    line = one_line_exit_2(capsys, "run", "--resume", bad, "--quiet")
    assert needle in line
    with pytest.raises(vmc.InputError, match=needle):
        vmc.load(bad)


def test_an_hdf5_file_that_is_not_a_vmc_file_is_said_so_once_in_every_reader(tmp_path, capsys):
    """Not "damaged or incomplete (... not a vmc output file)": the reader's own words, one line."""
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = np.arange(3.0)
    for args in (("info", other), ("analyze", other), ("report", other), ("run", "--resume", other, "--quiet")):
        line = one_line_exit_2(capsys, *args)
        assert "not a vmc" in line or "no /production/local_energy" in line, (args, line)
        assert "damaged" not in line, (args, line)
    with pytest.raises(vmc.InputError, match="not a vmc output file") as err:
        vmc.load(other)
    assert "damaged" not in str(err.value)


def test_from_file_refuses_a_damaged_source(finished, tmp_path, capsys):
    bad = copy(finished, tmp_path)
    flip(bad, "wavefunction/params")
    inp = tmp_path / "from.toml"
    inp.write_text(small_input(seed=7, iterations=0, production=100).replace(
        "[sampler]", f'[wavefunction]\nfrom_file = "{bad}"\n[sampler]'))
    line = one_line_exit_2(capsys, "run", inp, "-o", tmp_path / "new.h5", "--quiet")
    assert "damaged: dataset /wavefunction/params fails its checksum" in line


def test_the_unused_checkpoint_slot_is_not_checked(finished, tmp_path, capsys):
    """A kill while a checkpoint is written leaves the slot that is not current half written: no damage."""
    f_copy = copy(finished, tmp_path)
    with h5py.File(f_copy, "r") as f:
        unused = 1 - int(f["checkpoint"].attrs["current"])
    flip(f_copy, f"checkpoint/slot{unused}/positions")
    assert vmc_main(capsys, "info", f_copy)[0] == 0
    flip(f_copy, f"checkpoint/slot{1 - unused}/positions")
    assert "damaged: dataset /checkpoint/slot" in one_line_exit_2(capsys, "info", f_copy)


def _plant(path, **values):
    """Rewrite production values through h5py (which recomputes the checksums): name -> (walker, step, value)."""
    with h5py.File(path, "r+") as f:
        for name, (w, t, value) in values.items():
            f["production"][name][w, t] = value


def test_local_energy_that_is_not_the_sum_of_its_parts_is_damage(finished, tmp_path, capsys):
    bad = copy(finished, tmp_path)
    with h5py.File(bad, "r") as f:
        kinetic = f["production/kinetic"][1, 500]
    _plant(bad, kinetic=(1, 500, kinetic * (1 + 1e-9)))
    line = one_line_exit_2(capsys, "analyze", bad)
    assert "damaged: /production/local_energy differs from kinetic + trap + interaction at 1 samples" in line
    with pytest.raises(vmc.InputError, match="damaged: /production/local_energy"):
        vmc.load(bad)


@pytest.mark.parametrize("name", ["trap", "interaction", "pair_distance"])
def test_negative_energy_or_distance_is_damage(name, finished, tmp_path, capsys):
    """A negative trap or Coulomb energy (with E_L kept equal to the sum) or a negative distance."""
    bad = copy(finished, tmp_path)
    with h5py.File(bad, "r") as f:
        old = f["production"][name][2, 700]
        energy = f["production/local_energy"][2, 700]
    planted = {name: (2, 700, -0.25)}
    if name != "pair_distance":
        with h5py.File(bad, "r") as f:
            p = {k: f["production"][k][2, 700] for k in analysis.PARTS}
        p[name] = -0.25
        planted["local_energy"] = (2, 700, p["kinetic"] + p["trap"] + p["interaction"])
        assert planted["local_energy"][2] != energy and old >= 0
    _plant(bad, **planted)
    line = one_line_exit_2(capsys, "analyze", bad)
    assert f"damaged: /production/{name} holds 1 negative values" in line
    assert "damaged" in one_line_exit_2(capsys, "report", bad)


def test_dmc_series_checks():
    good = {"population": np.array([100.0, 98.5]), "trap": np.array([1.2, 1.3]), "interaction": np.array([0.9, 1.0]),
            "pair_distance": np.array([1.1, 1.2])}
    analysis.check_dmc(good, 2, "x.h5")
    for key in ("population", "trap", "interaction"):
        bad = {k: v.copy() for k, v in good.items()}
        bad[key][1] = -1.0 if key != "population" else 0.0
        with pytest.raises(analysis.AnalysisError, match=f"x.h5: damaged: /dmc/{key} holds 1"):
            analysis.check_dmc(bad, 2, "x.h5")
    bad = {k: v.copy() for k, v in good.items()}
    bad["trap"][1] = -1.0
    analysis.check_dmc(bad, 1, "x.h5")   # beyond steps_done: not data yet


def _strip_checksums(path) -> None:
    """Rewrite every dataset contiguous and unfiltered, as files before format_version 4 stored them."""
    with h5py.File(path, "r+") as f:
        names = []
        f.visititems(lambda k, o: names.append(k) if isinstance(o, h5py.Dataset) else None)
        for name in names:
            ds = f[name]
            data, attrs = ds[...], dict(ds.attrs)
            del f[name]
            new = f.create_dataset(name, data=data)
            new.attrs.update(attrs)
        f.attrs["format_version"] = 3


def test_files_without_checksums_are_still_read(finished, tmp_path, capsys):
    old = copy(finished, tmp_path)
    _strip_checksums(old)
    with h5py.File(old, "r") as f:
        assert not f["production/kinetic"].fletcher32
    for command in ("info", "analyze", "report"):
        assert vmc_main(capsys, command, old)[0] == 0, command
    code, out, _ = vmc_main(capsys, "analyze", old, "--json")
    assert code == 0
    reference = json.loads(vmc_main(capsys, "analyze", finished, "--json")[1])
    assert json.loads(out)["mean"] == reference["mean"]
    assert vmc.load(old).energy == vmc.load(finished).energy


def test_checksummed_writes_overwrite_in_place(tmp_path):
    """With Fletcher32 the layout is still complete at creation: rows (one at a time and in batches),
    production chunks, density and checkpoints written afterwards change neither the file size nor any
    chunk's address."""
    from vmc.input import config
    path = tmp_path / "layout.h5"
    (tmp_path / "c.toml").write_text(small_input(seed=1, iterations=6, production=2000))
    cfg = config.load(str(tmp_path / "c.toml")).spec()
    shape = driver.run_shape(cfg)
    with h5py.File(path, "w") as f:
        io.create_run(f, {"config": json.dumps(cfg.to_dict())}, shape, "importance",
                      TrialState.from_spec(cfg).attrs())

    def layout():
        with h5py.File(path, "r") as f:
            chunks = []
            f.visititems(lambda k, o: chunks.extend((k, o.id.get_chunk_info(i).byte_offset)
                                                    for i in range(o.id.get_num_chunks()))
                         if isinstance(o, h5py.Dataset) and o.chunks else None)
        return path.stat().st_size, chunks
    before = layout()
    rng = np.random.default_rng(0)
    with h5py.File(path, "r+") as f:
        w = io.RunWriter(f)
        rows = [{k: float(t + i) for i, k in enumerate(io.ITERATION_FIELDS)} for t in range(6)]
        params, timing = rng.random((6, shape.n_params)), rng.random((6, len(io.TIMING_FIELDS)))
        for t in range(2):
            w.iterations(t, [rows[t]], params[t:t + 1])
            w.timings("optimization", t, timing[t:t + 1])
        w.iterations(2, rows[2:], params[2:])           # rank 0's batches (`vmc.drivers.driver.Iterations`)
        w.timings("optimization", 2, timing[2:])
        assert f["optimization"].attrs["iterations_done"] == 6
        for k in io.ITERATION_FIELDS:
            assert f[f"optimization/{k}"][...].tolist() == [r[k] for r in rows]
        assert np.array_equal(f["optimization/params"][...], params)
        assert np.array_equal(f["optimization/timing"][...], timing)
        for start in (0, 1000):
            obs = rng.random((shape.walkers, 1000, len(io.SERIES) - 1))
            w.production(start, obs, rng.random(shape.density_bins), 5.0, 2, 2, 1.0, 2.0)
        arrays = {k: np.zeros(ds.shape, ds.dtype) for k, ds in f["checkpoint/slot0"].items() if k != "state"}
        for _ in range(3):
            w.checkpoint(arrays, np.zeros(len(shape.state_fields)), 1, 1)
        io.verify(f)
    assert layout() == before


def test_a_series_damaged_after_load_raises_one_line(finished, tmp_path):
    path = copy(finished, tmp_path)
    run = vmc.load(path)
    flip(path, "production/trap")
    with pytest.raises(vmc.InputError, match="damaged: dataset /production/trap cannot be read"):
        run.series("trap")
