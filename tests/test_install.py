"""The package as users install it: a wheel built from the tracked files alone, installed (not editable) into a
fresh virtual environment with its pinned dependencies, run from another directory under mpiexec.

An editable install (what `make` does for development) reads the source tree and hides files the wheel
lacks: a wheel once shipped without `vmc/model/factors/` and every run ended in ModuleNotFoundError.
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


UNTRACKED = (".git", ".venv", "venv", "runs", "build", "dist", "__pycache__", ".pytest_cache", "*.egg-info", "*.h5")


def tracked_files() -> list[str]:
    """The files of a clean clone: git's tracked files, or (a copy without .git, as `make mutants` makes) every
    file but the environment, outputs and caches."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True)
        return [p for p in out.stdout.decode().split("\0") if p and (ROOT / p).is_file()]
    except (OSError, subprocess.CalledProcessError):
        skip = shutil.ignore_patterns(*UNTRACKED)
        files = []
        for path in sorted(ROOT.rglob("*")):
            rel = path.relative_to(ROOT)
            if path.is_file() and not any(skip(str(p.parent), [p.name]) for p in [rel, *rel.parents][:-1]):
                files.append(str(rel))
        return files


def test_wheel_from_clean_tree_installs_and_runs(tmp_path):
    files = tracked_files()
    src = tmp_path / "src"
    for name in files:
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, src / name)
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dist), str(src)],
                   check=True, capture_output=True)
    wheel = next(dist.glob("vmc-*.whl"))
    shipped = set(subprocess.run([sys.executable, "-m", "zipfile", "-l", str(wheel)], capture_output=True,
                                 text=True, check=True).stdout.split())
    modules = {name for name in files if name.startswith("vmc/") and name.endswith(".py")}
    assert modules and modules <= shipped, f"missing from the wheel: {sorted(modules - shipped)}"

    env = tmp_path / "env"
    clean = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    subprocess.run([str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(wheel)], check=True, capture_output=True, env=clean)
    version = subprocess.run([str(env / "bin" / "vmc"), "--version"], capture_output=True, text=True, check=True,
                             env=clean)
    from vmc.version import __version__
    assert version.stdout.strip() == f"vmc {__version__}"

    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([str(env / "bin" / "python"), "-c",
                            "import vmc.model.factors.slater as m; print(m.__file__)"],
                           cwd=work, capture_output=True, text=True, check=True, env=clean).stdout.strip()
    assert Path(where).is_relative_to(env), f"vmc imported from {where}, not from the installed wheel"
    (work / "tiny.toml").write_text(
        "[sampler]\nwalkers = 4\nsteps = 200\nburn_in = 100\n[optimizer]\niterations = 3\n"
        "[production]\nsteps = 1000\nburn_in = 100\n")
    run = subprocess.run([str(env / "bin" / "mpiexec"), "-n", "2", str(env / "bin" / "vmc"), "run", "tiny.toml",
                          "-o", "tiny.h5", "--quiet"], cwd=work, capture_output=True, text=True, timeout=600,
                         env=clean)
    assert run.returncode == 0, run.stderr
    assert "E = " in run.stdout and (work / "tiny.h5").is_file()
    info = subprocess.run([str(env / "bin" / "vmc"), "analyze", "tiny.h5", "--json"], cwd=work,
                          capture_output=True, text=True, check=True, env=clean)
    assert json.loads(info.stdout)["n_chains"] == 4
