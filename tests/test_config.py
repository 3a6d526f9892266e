"""Input options (`vmc.input.config`): defaults, validation, error messages, sweeps, the README reference."""
from __future__ import annotations

import copy
import json
import math
import os
import pickle
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from conftest import docs_script

from vmc.input import config
from vmc.input.config import ConfigError

ROOT = Path(__file__).resolve().parents[1]
INPUT_FILES = sorted(ROOT.glob("inputs/**/*.toml"))


def error_of(text: str, source: str = "in.toml") -> str:
    with pytest.raises(ConfigError) as info:
        config.from_text(text, source)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: ")
    return message


# ---- defaults ---------------------------------------------------------------------------------------


def test_defaults_match_table_and_round_trip():
    cfg = config.from_text("")
    d = cfg.to_dict()
    assert set(d) == {"seed", "output", "checkpoint_interval", *config.SECTIONS}
    for opt in config.OPTIONS:
        assert cfg.get(opt.key) == opt.default
        assert type(cfg.get(opt.key)) is opt.type
    assert d["seed"] == 2026 and d["output"] == ""
    assert d["system"] == {"particles": 2, "dimensions": 2, "omega": 1.0, "statistics": "fermion", "interaction": True}
    assert d["wavefunction"]["jastrow"] == "none" and d["wavefunction"]["slater"] is False
    assert d["sampler"]["kind"] == "metropolis" and d["optimizer"]["kind"] == "adam"
    assert d["optimizer"]["epsilon"] == 1e-8 and d["production"]["steps"] == 10000
    assert config.from_dict(d, "again") == cfg
    assert config.defaults() == cfg
    assert cfg.sweep == {} and cfg.sweep_points() == [("", cfg)]


def test_defaults_validate_against_their_own_checks():
    for opt in config.OPTIONS:
        assert opt.validate(opt.default) == opt.default


def test_to_dict_json_round_trip():
    cfg = config.from_text('seed = 5\noutput = "x.h5"\n[wavefunction]\ng = 1\nsigma = 0.7\n'
                           '[optimizer]\nepsilon = 1e-10\n[sweep]\n"sampler.dt" = [0.1, 0.2]\n')
    back = config.from_dict(json.loads(json.dumps(cfg.to_dict())), "stored")
    assert back == cfg and back.to_dict() == cfg.to_dict()
    assert back.get("wavefunction.g") == 1.0 and isinstance(back.get("wavefunction.g"), float)
    point = cfg.sweep_points()[1][1]
    assert "sweep" not in point.to_dict()
    assert config.from_dict(json.loads(point.to_json())) == point


def test_to_dict_is_a_copy_and_config_is_immutable():
    cfg = config.from_text("")
    d = cfg.to_dict()
    d["sampler"]["step"] = 99.0
    assert cfg.get("sampler.step") == 1.0
    with pytest.raises(AttributeError):
        cfg.text = "x"
    assert copy.deepcopy(cfg) == cfg
    assert pickle.loads(pickle.dumps(cfg)) == cfg


def test_get_sections_and_unknown_keys():
    cfg = config.from_text("[sampler]\nstep = 2\n")
    assert cfg.get("sampler")["step"] == 2.0 and cfg["sampler.step"] == 2.0
    assert cfg.get("nope", None) is None
    with pytest.raises(KeyError, match="sampler.step"):
        cfg.get("sampler.stepp")


def test_text_and_source_kept(tmp_path):
    text = "# comment\nseed = 3\n"
    path = tmp_path / "run.toml"
    path.write_text(text)
    cfg = config.load(path)
    assert cfg.text == text and cfg.source == str(path) and cfg.get("seed") == 3
    assert cfg.with_overrides({"seed": 4}).text == text
    assert config.from_text(text).source == "<string>"
    assert config.from_dict({}).text == ""


# ---- types -------------------------------------------------------------------------------------------


def test_int_is_accepted_for_float():
    cfg = config.from_text("[sampler]\nstep = 2\n[system]\nomega = 3\n")
    assert cfg.get("sampler.step") == 2.0 and type(cfg.get("sampler.step")) is float
    assert type(cfg.get("system.omega")) is float


def test_bool_is_rejected_for_int_and_float():
    msg = error_of("[system]\nparticles = true\n")
    assert "system.particles = true" in msg and "integer" in msg and "boolean" in msg
    msg = error_of("[sampler]\nstep = false\n")
    assert "sampler.step = false" in msg and "boolean" in msg


def test_float_is_rejected_for_int():
    msg = error_of("[wavefunction]\nhidden = 2.0\n")
    assert "wavefunction.hidden = 2.0" in msg and "integer" in msg and "write 2" in msg
    msg = error_of("[wavefunction]\nhidden = 2.5\n")
    assert "wavefunction.hidden = 2.5" in msg


@pytest.mark.parametrize("text, needle", [
    ('[sampler]\nstep = "big"\n', 'sampler.step = "big": must be a number in (0, 1e6] (got a string)'),
    ("[system]\ninteraction = 1\n", "system.interaction = 1: must be true or false"),
    ("[sampler]\nkind = 3\n", "sampler.kind = 3: must be one of"),
    ("output = 5\n", "output = 5: must be a string"),
    ("[system]\nomega = inf\n", "system.omega = inf: must be a finite number"),
    ("[system]\nomega = nan\n", "system.omega = nan: must be a finite number"),
    ("[sampler]\nstep = [1, 2]\n", "sampler.step = [1, 2]: must be a number in (0, 1e6] (got a list)"),
    ("sampler = 3\n", "sampler = 3: must be a table"),
])
def test_wrong_types(text, needle):
    assert needle in error_of(text)


# ---- ranges and choices ------------------------------------------------------------------------------


@pytest.mark.parametrize("text, needle", [
    ("[sampler]\nstep = -0.5\n", "sampler.step = -0.5: must be in (0, 1e6]"),
    ("[sampler]\ndt = 0\n", "sampler.dt = 0: must be in (0, 1e6]"),
    ("seed = -1\n", "seed = -1: must be between 0 and 9223372036854775807"),
    ("seed = 9223372036854775808\n", "seed = 9223372036854775808: must be between 0 and 9223372036854775807"),
    ("[system]\nomega = 1e-300\n", "system.omega = 1e-300: must be between 0.001 and 1000"),
    ("[wavefunction]\ninit_scale = 1e10\n", "wavefunction.init_scale = 10000000000.0: must be between 0 and 10"),
    ("[optimizer]\nlearning_rate = 100\n", "optimizer.learning_rate = 100: must be in (0, 10]"),
    ("[production]\ndensity_bins = 1000000000\n",
     "production.density_bins = 1000000000: must be between 1 and 1000000"),
    ("[sampler]\nwalkers = 10000000000\n", "sampler.walkers = 10000000000: must be between 1 and 10000000"),
    ("[system]\nparticles = 73\n", "system.particles = 73: must be between 1 and 72"),
    ("[system]\nparticles = 0\n", "system.particles = 0: must be between 1 and 72"),
    ("[system]\ndimensions = 4\n", "system.dimensions = 4: must be between 1 and 3"),
    ("[wavefunction]\nhidden = 0\n", "wavefunction.hidden = 0: must be between 1 and 100000"),
    ("[wavefunction]\ng = 0.7\n", "wavefunction.g = 0.7: must be 0.5 or 1.0"),
    ("[wavefunction]\nsigma = -1\n", "wavefunction.sigma = -1: must be >= 0"),
    ("[optimizer]\nmomentum = 1.0\n", "optimizer.momentum = 1.0: must be in [0, 1)"),
    ("[optimizer]\nbeta2 = -0.1\n", "optimizer.beta2 = -0.1: must be in [0, 1)"),
    ("[optimizer]\nepsilon = 0\n", "optimizer.epsilon = 0: must be in (0, 1]"),
    ("[optimizer]\nschedule = \"cosine\"\n", 'optimizer.schedule = "cosine": must be "constant" or "inverse"'),
    ("[production]\nsteps = 0\n", "production.steps = 0: must be between 16 and 1000000000000"),
    ("[production]\nsteps = 15\n", "production.steps = 15: must be between 16 and 1000000000000"),
])
def test_out_of_range(text, needle):
    assert needle in error_of(text)


def test_bad_choice_suggests_closest():
    msg = error_of('[sampler]\nkind = "metropolys"\n', "inputs/x.toml")
    assert msg == ('inputs/x.toml: sampler.kind = "metropolys": must be one of "metropolis", "importance", '
                   '"gibbs" (did you mean "metropolis"?)')


def test_limits_accepted():
    cfg = config.from_text("seed = 0\n[system]\nparticles = 72\ndimensions = 1\ninteraction = false\n"
                           "statistics = \"boson\"\n[optimizer]\nmomentum = 0\n"
                           "iterations = 0\n[wavefunction]\ng = 1\ninit_scale = 0\n")
    assert cfg.get("system.particles") == 72 and cfg.get("optimizer.iterations") == 0


# ---- unknown keys and sections -----------------------------------------------------------------------


def test_unknown_key_suggests_closest():
    assert error_of("[sampler]\nstepp = 1.0\n", "inputs/x.toml") == \
        "inputs/x.toml: unknown key 'sampler.stepp' (did you mean 'sampler.step'?)"


def test_unknown_key_in_wrong_section_suggests_right_one():
    msg = error_of("[sampler]\nlearning_rate = 0.1\n")
    assert "unknown key 'sampler.learning_rate'" in msg and "'optimizer.learning_rate'" in msg


def test_unknown_top_level_key():
    msg = error_of("sed = 1\n")
    assert "unknown key 'sed'" in msg and "'seed'" in msg
    assert "unknown key 'frobnicate'" in error_of("frobnicate = 1\n")


def test_unknown_section():
    msg = error_of("[samplr]\nstep = 1.0\n")
    assert "unknown section '[samplr]'" in msg and "'[sampler]'" in msg
    assert "unknown section '[zzz]'" in error_of("[zzz]\na = 1\n")


def test_nested_table_in_section_is_unknown_key():
    assert "unknown key 'sampler.extra'" in error_of("[sampler.extra]\na = 1\n")


# ---- files and syntax --------------------------------------------------------------------------------


def test_toml_syntax_error():
    msg = error_of("[sampler]\nstep = = 1\n", "bad.toml")
    assert "bad.toml: TOML syntax error" in msg and "line 2" in msg and "step = = 1" in msg


def test_duplicate_key_is_a_syntax_error():
    assert "TOML syntax error" in error_of("seed = 1\nseed = 2\n")


def test_missing_file(tmp_path):
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="no such file") as info:
        config.load(path)
    assert str(info.value) == f"{path}: no such file"


def test_directory_is_not_an_input(tmp_path):
    with pytest.raises(ConfigError, match="directory"):
        config.load(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions (not root)")
def test_unreadable_file(tmp_path):
    path = tmp_path / "secret.toml"
    path.write_text("seed = 1\n")
    path.chmod(0)
    try:
        with pytest.raises(ConfigError, match="cannot read") as info:
            config.load(path)
        assert str(info.value).startswith(str(path))
    finally:
        path.chmod(0o600)


def test_unreadable_file_any_user(tmp_path, monkeypatch):
    path = tmp_path / "x.toml"
    path.write_text("seed = 1\n")

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(config, "open", refuse, raising=False)
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == f"{path}: cannot read the file (permission denied)"


def test_binary_file(tmp_path):
    path = tmp_path / "bin.toml"
    path.write_bytes(b"seed = 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        config.load(path)


def test_error_from_file_names_the_file(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text("[sampler]\nstep = -0.5\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert str(info.value) == f"{path}: sampler.step = -0.5: must be in (0, 1e6]"
    assert info.value.key == "sampler.step" and info.value.source == str(path)


# ---- rules between options ---------------------------------------------------------------------------


def test_gibbs_needs_g_one_half():
    msg = error_of('[sampler]\nkind = "gibbs"\n[wavefunction]\ng = 1.0\n')
    assert "sampler.kind" in msg and "wavefunction.g" in msg and '"gibbs"' in msg and "1.0" in msg
    cfg = config.from_text('[sampler]\nkind = "gibbs"\n[wavefunction]\noptimize_sigma = true\n')
    assert cfg.get("wavefunction.optimize_sigma") is True


def test_one_dimensional_interacting_is_an_error():
    """A nodeless trial state in 1D has <1/|x_i - x_j|> = infinity: refused, with the reason."""
    msg = error_of("[system]\nparticles = 3\ndimensions = 1\ninteraction = true\nstatistics = \"boson\"\n")
    assert "system.dimensions = 1" in msg and "infinite" in msg
    cfg = config.from_text("[system]\nparticles = 3\ndimensions = 1\ninteraction = false\nstatistics = \"boson\"\n")
    assert cfg.get("system.dimensions") == 1
    assert config.from_text("[system]\nparticles = 1\ndimensions = 1\n").get("system.interaction") is True


@pytest.mark.parametrize("text,needle", [
    ("[system]\nomega = 0.01\n[wavefunction]\nsigma = 1e-200\n", "wavefunction.sigma = 1e-200"),
    ("[wavefunction]\nsigma = 1000.0\n", "trap lengths"),
    ("[sampler]\nkind = \"importance\"\ndt = 1e-320\n", "sampler.dt = 1e-320"),
    ("[sampler]\nkind = \"importance\"\ndt = 5000.0\n", "trap periods"),
    ("[sampler]\nstep = 1e-9\n", "sampler.step = 1e-9"),
    ("[production]\ndensity_rmax = 1e9\n", "production.density_rmax"),
])
def test_degenerate_scales_are_input_errors(text, needle):
    assert needle in error_of(text)


def test_statistics_and_factor_rules():
    # more than two fermions need determinants, which need closed shells and D >= 2
    msg = error_of("[system]\nparticles = 6\n", "f.toml")
    assert "wavefunction.slater" in msg and "fermion" in msg
    assert config.from_text("[system]\nparticles = 6\n[wavefunction]\nslater = true\n").get("wavefunction.slater")
    assert "closed shell" in error_of("[system]\nparticles = 4\n[wavefunction]\nslater = true\n", "f.toml")
    assert "closed shell" in error_of("[system]\nparticles = 6\ndimensions = 3\n[wavefunction]\nslater = true\n",
                                      "f.toml")
    assert config.from_text("[system]\nparticles = 8\ndimensions = 3\n[wavefunction]\nslater = true\n")
    assert "fermion" in error_of("[system]\nstatistics = \"boson\"\n[wavefunction]\nslater = true\n", "f.toml")
    assert "dimensions" in error_of("[system]\ndimensions = 1\n[wavefunction]\njastrow = \"pade\"\n", "f.toml")
    msg = error_of("[sampler]\nkind = \"gibbs\"\n[wavefunction]\njastrow = \"pade\"\n", "f.toml")
    assert "Gibbs" in msg and "Jastrow" in msg
    assert "jastrow" in error_of("[wavefunction]\njastrow = \"slater\"\n", "f.toml")


def test_check_ranks():
    cfg = config.from_text("[sampler]\nwalkers = 4\n", "w.toml")
    config.check_ranks(cfg.spec(), 1)
    config.check_ranks(cfg.spec(), 4)
    with pytest.raises(ConfigError) as info:
        config.check_ranks(cfg.spec(), 5, cfg.source)
    assert str(info.value).startswith("w.toml: sampler.walkers = 4:") and "5 MPI ranks" in str(info.value)
    with pytest.raises(ConfigError):
        config.check_ranks(cfg.spec(), 0)
    dmc = config.from_text("[sampler]\nwalkers = 4\n[dmc]\nsteps = 100\nwalkers = 2\n").spec()
    with pytest.raises(ConfigError, match="dmc.walkers = 2"):
        config.check_ranks(dmc, 3)


# ---- overrides ---------------------------------------------------------------------------------------


def test_with_overrides():
    base = config.from_text("[wavefunction]\nhidden = 2\n", "base.toml")
    cfg = base.with_overrides({"wavefunction.hidden": 3, "sampler.step": 2, "seed": 9})
    assert cfg.get("wavefunction.hidden") == 3 and cfg.get("sampler.step") == 2.0 and cfg.get("seed") == 9
    assert base.get("wavefunction.hidden") == 2
    assert cfg.source == "base.toml"


@pytest.mark.parametrize("overrides, needle", [
    ({"wavefunction.hidden": 0}, "wavefunction.hidden = 0: must be between 1 and 100000"),
    ({"wavefunction.hidden": True}, "wavefunction.hidden = true"),
    ({"sampler.kind": "gibs"}, 'sampler.kind = "gibs"'),
    ({"sampler.stepp": 1.0}, "unknown key 'sampler.stepp' (did you mean 'sampler.step'?)"),
    ({"sampler": 1}, "'sampler' is a section"),
])
def test_with_overrides_validates(overrides, needle):
    base = config.from_text("", "base.toml")
    with pytest.raises(ConfigError) as info:
        base.with_overrides(overrides)
    assert needle in str(info.value) and str(info.value).startswith("base.toml")


def test_with_overrides_checks_rules():
    base = config.from_text('[sampler]\nkind = "gibbs"\n')
    with pytest.raises(ConfigError, match="wavefunction.g"):
        base.with_overrides({"wavefunction.g": 1.0})
    assert base.with_overrides({"sampler.kind": "metropolis", "wavefunction.g": 1.0}).get("wavefunction.g") == 1.0


# ---- resolved values ---------------------------------------------------------------------------------


def test_resolved_sigma():
    half = config.from_text("[system]\nomega = 4\n[wavefunction]\ng = 0.5\n")
    one = config.from_text("[system]\nomega = 4\n[wavefunction]\ng = 1\n")
    assert half.spec().sigma == pytest.approx(math.sqrt(1 / (2 * 4)))
    assert one.spec().sigma == pytest.approx(math.sqrt(1 / 4))
    assert config.Spec.from_dict(one.to_dict()).sigma == pytest.approx(0.5)
    assert config.from_text("[wavefunction]\nsigma = 0.3\n").spec().sigma == 0.3


def test_resolved_sigma_matches_wavefunction_default():
    wavefunction = pytest.importorskip("vmc.model.wavefunction")
    for g in (0.5, 1.0):
        cfg = config.from_text(f"[system]\nomega = 2.5\n[wavefunction]\ng = {g}\n")
        assert cfg.spec().sigma == pytest.approx(wavefunction.default_sigma(2.5, g))


def test_resolved_density_rmax():
    assert config.from_text("[system]\nomega = 4\n").spec().density_rmax == pytest.approx(2.5)
    assert config.from_text("[production]\ndensity_rmax = 3\n").spec().density_rmax == 3.0


# ---- sweeps ------------------------------------------------------------------------------------------


def test_sweep_grid():
    cfg = config.from_text('[sweep]\n"wavefunction.hidden" = [1, 2]\n"sampler.dt" = [0.01, 0.1]\n')
    points = cfg.sweep_points()
    assert [label for label, _ in points] == [
        "wavefunction.hidden=1,sampler.dt=0.01", "wavefunction.hidden=1,sampler.dt=0.1",
        "wavefunction.hidden=2,sampler.dt=0.01", "wavefunction.hidden=2,sampler.dt=0.1"]
    assert [(p.get("wavefunction.hidden"), p.get("sampler.dt")) for _, p in points] == \
        [(1, 0.01), (1, 0.1), (2, 0.01), (2, 0.1)]
    assert all(p.sweep == {} and p.sweep_points() == [("", p)] for _, p in points)
    assert cfg.sweep == {"wavefunction.hidden": [1, 2], "sampler.dt": [0.01, 0.1]}


def test_sweep_nested_table_form_and_type_conversion():
    cfg = config.from_text("[sweep.wavefunction]\nhidden = [1, 2]\n[sweep.sampler]\nstep = [1, 2.5]\n")
    assert cfg.sweep == {"wavefunction.hidden": [1, 2], "sampler.step": [1.0, 2.5]}
    assert len(cfg.sweep_points()) == 4
    same = config.from_text('[sweep]\n"wavefunction.hidden" = [1, 2]\nsampler.step = [1.0, 2.5]\n')
    assert same == cfg


def test_sweep_zip():
    cfg = config.from_text('[sweep]\nzip = true\n"wavefunction.hidden" = [1, 2, 3]\n"seed" = [7, 8, 9]\n')
    points = cfg.sweep_points()
    assert [label for label, _ in points] == ["wavefunction.hidden=1,seed=7", "wavefunction.hidden=2,seed=8",
                                              "wavefunction.hidden=3,seed=9"]
    assert [(p.get("wavefunction.hidden"), p.get("seed")) for _, p in points] == [(1, 7), (2, 8), (3, 9)]
    assert cfg.sweep_zip


def test_sweep_zip_needs_equal_lengths():
    msg = error_of('[sweep]\nzip = true\n"wavefunction.hidden" = [1, 2, 3]\n"sampler.dt" = [0.1, 0.2]\n')
    assert "zip" in msg and "wavefunction.hidden has 3" in msg and "sampler.dt has 2" in msg


def test_sweep_label_formats():
    cfg = config.from_text('[sweep]\n"sampler.kind" = ["metropolis", "gibbs"]\n"system.interaction" = [false]\n')
    assert [label for label, _ in cfg.sweep_points()] == [
        "sampler.kind=metropolis,system.interaction=false", "sampler.kind=gibbs,system.interaction=false"]


@pytest.mark.parametrize("text, needles", [
    ('[sweep]\n"wavefunction.hiden" = [1, 2]\n', ["wavefunction.hiden", "did you mean 'wavefunction.hidden'"]),
    ("[sweep.wavefunction]\nhiden = [1, 2]\n", ["wavefunction.hiden", "did you mean 'wavefunction.hidden'"]),
    ('[sweep]\n"output" = ["a.h5", "b.h5"]\n', ["'output' cannot be swept"]),
    ('[sweep]\n"wavefunction.hidden" = []\n', ["sweep.wavefunction.hidden = []", "non-empty list"]),
    ('[sweep]\n"wavefunction.hidden" = 3\n', ["sweep.wavefunction.hidden = 3", "non-empty list"]),
    ("[sweep]\nzip = 1\n", ["sweep.zip = 1", "true or false"]),
    ("sweep = 1\n", ["sweep = 1", "must be a table"]),
    ('[sweep]\n"wavefunction.hidden" = [1, 2]\n[sweep.wavefunction]\nhidden = [3]\n', ["given twice"]),
    ('[sweep]\n"wavefunction.hidden" = [1, 1]\n', ["wavefunction.hidden=1 appears twice"]),
])
def test_invalid_sweep_key_or_table(text, needles):
    msg = error_of(text)
    for needle in needles:
        assert needle in msg


def test_invalid_sweep_value_is_named():
    msg = error_of('[sweep]\n"wavefunction.hidden" = [1, 0]\n')
    assert "sweep.wavefunction.hidden = 0: must be between 1 and 100000" in msg
    msg = error_of('[sweep]\n"sampler.step" = [1.0, true]\n')
    assert "sweep.sampler.step = true" in msg
    msg = error_of('[sweep]\n"sampler.kind" = ["gibbs", "gibs"]\n')
    assert 'sweep.sampler.kind = "gibs"' in msg


def test_sweep_points_checked_against_rules():
    msg = error_of('[sampler]\nkind = "gibbs"\n[sweep]\n"wavefunction.g" = [0.5, 1.0]\n')
    assert "sweep point wavefunction.g=1.0" in msg and "sampler.kind" in msg and "wavefunction.g" in msg


def test_sweep_too_many_points():
    lists = "\n".join(f'"{key}" = {list(range(1, 23))}' for key in
                      ("wavefunction.hidden", "sampler.walkers", "sampler.steps"))
    assert "at most" in error_of(f"[sweep]\n{lists}\n")


def test_override_fixes_a_swept_key():
    cfg = config.from_text('[sweep]\n"wavefunction.hidden" = [1, 2]\n"sampler.dt" = [0.1, 0.2]\n')
    fixed = cfg.with_overrides({"wavefunction.hidden": 5})
    assert fixed.sweep == {"sampler.dt": [0.1, 0.2]}
    assert [p.get("wavefunction.hidden") for _, p in fixed.sweep_points()] == [5, 5]
    single = fixed.with_overrides({"sampler.dt": 0.3})
    assert single.sweep_points() == [("", single)]


# ---- documentation and input files -------------------------------------------------------------------


def test_readme_sections_are_generated():
    readme = docs_script("readme")
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    for name, body in readme.sections().items():
        assert readme.section(text, name) == body, f"README {name} is stale: run `python docs/readme.py README.md`"


def test_reference_lists_every_option():
    md = config.reference_markdown()
    for opt in config.OPTIONS:
        assert f"| `{opt.key}` |" in md
    assert "[sweep]" in md


def test_markdown_command_prints_reference():
    out = subprocess.run([sys.executable, "-m", "vmc.input.config", "--markdown"], capture_output=True, text=True,
                         cwd=ROOT, check=True).stdout
    assert out == config.reference_markdown()


def test_template_is_a_valid_input_with_every_default():
    raw = tomllib.loads(config.template_toml())
    assert config.from_dict(raw) == config.defaults()
    assert config.from_dict(raw).to_dict() == raw


def test_check_command(tmp_path):
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("seed = 1\n")
    bad.write_text("[sampler]\nstep = -1\n")
    run = subprocess.run([sys.executable, "-m", "vmc.input.config", "--check", str(good), str(bad)],
                         capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 2
    assert "good.toml: ok" in run.stdout
    assert run.stderr.strip() == f"{bad}: sampler.step = -1: must be in (0, 1e6]"


@pytest.mark.parametrize("path", INPUT_FILES, ids=[str(p.relative_to(ROOT)) for p in INPUT_FILES])
def test_shipped_input_files_are_valid(path):
    cfg = config.load(path)
    points = cfg.sweep_points()
    assert points and all(isinstance(p, config.Config) for _, p in points)
    for _, point in points:
        config.from_dict(json.loads(point.to_json()), str(path))


def test_shipped_input_files_checked_even_if_none():
    """Every present input file is covered by the parametrized test above (possibly none)."""
    present = {p.resolve() for p in ROOT.glob("inputs/*/*.toml")} | {p.resolve() for p in ROOT.glob("inputs/*.toml")}
    assert present == {p.resolve() for p in INPUT_FILES}
    assert len(present) >= 6 + 7 + 10   # inputs/, inputs/studies/, inputs/dots/


@pytest.mark.parametrize("P,D", [(30, 2), (42, 2), (56, 2), (72, 2), (40, 3), (70, 3)])
def test_every_closed_shell_up_to_the_bound_is_accepted(P, D):
    text = f"[system]\nparticles = {P}\ndimensions = {D}\n[wavefunction]\nslater = true\n"
    assert config.from_text(text).get("system.particles") == P


def test_closed_shell_message_lists_closed_shell_numbers():
    """The rule's message and README text are generated from `closed_shell_numbers` (not hand-written)."""
    from vmc.input.options import MAX_PARTICLES
    from vmc.model.factors.shells import closed_shell_numbers
    assert closed_shell_numbers(2, MAX_PARTICLES) == [2, 6, 12, 20, 30, 42, 56, 72]
    assert closed_shell_numbers(3, MAX_PARTICLES) == [2, 8, 20, 40, 70]
    msg = error_of("[system]\nparticles = 58\n[wavefunction]\nslater = true\n", "f.toml")
    assert "2, 6, 12, 20, 30, 42, 56, 72 (2D) or 2, 8, 20, 40, 70 (3D)" in msg
    assert "2, 6, 12, 20, 30, 42, 56, 72 (2D) or 2, 8, 20, 40, 70 (3D)" in config.reference_markdown()


# ---- removed options ----------------------------------------------------------------------------------


def test_removed_option_at_its_old_default_is_dropped():
    """A configuration stored by an older version (JSON in the output file, read back by `--resume`) that
    still has wavefunction.orbital_omega = 0.0 loads as if the key were absent."""
    import json
    stored = config.defaults().to_dict()
    stored["wavefunction"]["orbital_omega"] = 0.0
    cfg = config.from_dict(json.loads(json.dumps(stored)), "old.h5")
    assert cfg == config.defaults()
    assert "orbital_omega" not in cfg.to_dict()["wavefunction"]
    stored["wavefunction"]["orbital_omega"] = 0                        # an integer 0 is the same number
    assert config.from_dict(stored, "old.h5") == config.defaults()


@pytest.mark.parametrize("value", [0.8, True, "0.0"])
def test_removed_option_at_another_value_is_an_error(value):
    stored = config.defaults().to_dict()
    stored["wavefunction"]["orbital_omega"] = value
    with pytest.raises(config.ConfigError) as exc:
        config.from_dict(stored, "old.h5")
    msg = str(exc.value)
    assert msg.startswith("old.h5: wavefunction.orbital_omega = ") and "removed" in msg
    assert "does not depend on the orbitals' frequency" in msg


def test_removed_option_elsewhere_names_the_reason():
    with pytest.raises(config.ConfigError, match="'wavefunction.orbital_omega' was removed \\(the closed-shell"):
        config.defaults().with_overrides({"wavefunction.orbital_omega": 0.0})
    msg = error_of('[sweep]\n"wavefunction.orbital_omega" = [0.5, 1.0]\n', "f.toml")
    assert "sweep: 'wavefunction.orbital_omega' was removed" in msg
    assert "`wavefunction.orbital_omega` (old default `0.0`)" in config.reference_markdown()


# ---- typed specifications ----------------------------------------------------------------------------


def test_spec_carries_every_option_typed_frozen_and_picklable():
    import dataclasses
    cfg = config.from_text("seed = 5\n[sampler]\nwalkers = 4\nstep = 2\n[dmc]\ntime_step = 0.02\n")
    spec = cfg.spec()
    for o in config.OPTIONS:
        assert spec.value(o.key) == cfg.get(o.key) and type(spec.value(o.key)) is o.type, o.key
    assert (spec.seed, spec.sampler.walkers, spec.sampler.step, spec.dmc.time_step) == (5, 4, 2.0, 0.02)
    assert spec.to_dict() == cfg.to_dict()
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.sampler.walkers = 8
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_spec_of_a_stored_configuration_older_or_newer_than_the_table():
    stored = config.from_text("[wavefunction]\nhidden = 3\nslater = true\n[system]\nparticles = 6\n").to_dict()
    del stored["wavefunction"]["backflow"], stored["dmc"]           # written before these options existed
    stored["wavefunction"]["orbital_omega"] = 0.0                   # a removed option
    spec = config.Spec.from_dict(stored)
    assert (spec.system.particles, spec.wavefunction.hidden, spec.wavefunction.slater) == (6, 3, True)
    assert spec.wavefunction.backflow == "none" and spec.dmc == config.Spec().dmc
    assert spec.with_section("system", interaction=False).system.interaction is False
    assert spec.system.interaction is True                          # with_section makes a copy
