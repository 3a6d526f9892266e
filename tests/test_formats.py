"""Output files stay readable: files written by vmc 0.1.0 (format_version 3, `tests/data/v3_*.h5`, made from
`tests/data/v3_input.toml`) are read by `vmc info`, `analyze`, `report` and `vmc.load`; an unfinished one is
not resumed (its walkers' random streams are of another design) and says so."""
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from conftest import vmc_main

DATA = Path(__file__).resolve().parent / "data"


def stored_mean(path):
    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["summary"])["mean"], int(f.attrs["format_version"])


def test_format_3_files_are_read_by_every_reader(tmp_path, capsys):
    import vmc
    path = DATA / "v3_complete.h5"
    mean, version = stored_mean(path)
    assert version == 3
    code, text, err = vmc_main(capsys, "info", path)
    assert code == 0 and "status complete" in text, err
    code, text, err = vmc_main(capsys, "analyze", path, "--json")
    assert code == 0, err
    assert json.loads(text)["mean"] == pytest.approx(mean, rel=1e-12)
    code, _, err = vmc_main(capsys, "report", path, "-o", tmp_path / "report")
    assert code == 0 and (tmp_path / "report" / "report.md").is_file(), err
    run = vmc.load(path)
    assert run.energy == pytest.approx(mean, rel=1e-12) and np.all(np.isfinite(run.params))


def test_an_unfinished_format_3_file_is_refused_in_one_line(tmp_path, capsys):
    """Its walkers drew from per-walker PCG64 generators, whose states it stores; format 5 streams are
    counter-based, so resuming it would mix two designs: `--resume` says so in one line and leaves it as it was."""
    path = tmp_path / "old.h5"
    shutil.copy(DATA / "v3_unfinished.h5", path)
    before = path.read_bytes()
    code, out, err = vmc_main(capsys, "run", "--resume", path, "--quiet")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "format_version 3" in err and "cannot be resumed" in err, err
    assert path.read_bytes() == before
